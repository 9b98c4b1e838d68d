"""An S3 backup target with Object Lock (compliance mode), through boto3.

    >>> config = S3Config(endpoint="http://127.0.0.1:8333", access_key_id="...", secret_access_key="...")  # doctest: +SKIP
    >>> target = S3Target.from_url("s3://evidence-backup/archive-1", config)                                # doctest: +SKIP

The bucket must have Object Lock enabled (it is made with it when missing, which S3 allows only at
creation). Every object is written with ``ObjectLockMode=COMPLIANCE`` and the retain-until of its
tier: until then the server refuses to delete the object version or shorten its retention, whoever
asks. An overwrite of the same key makes a new version and leaves the locked one in place, so a
tampered newest version shows in ``backup verify --read-data`` and the locked original is still
there. Production uses a real Object Lock service (AWS S3, MinIO in compliance mode ...); the
tests use SeaweedFS on loopback.

The endpoint and credentials come from the edge (the CLI reads ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``); nothing here reads the environment, and the
secret is kept out of every repr and message.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from investigator.backup.target import TargetError, TargetUnreachable, check_key
from investigator.errors import ConfigError


@dataclass(frozen=True)
class S3Config:
    """Endpoint and credentials of an S3 service (the secret never appears in a repr)."""

    endpoint: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    region: str = "us-east-1"
    # a server that accepts connections but no longer answers (stopped, overloaded, a half-open link) must
    # fail a call within about a minute: botocore's own 60 s read timeout times 4 attempts (3 retries) held
    # a backup run, and would hold every checkpoint of a key server with an S3 witness, for minutes per call
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    attempts: int = 2


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) or type(exc).__name__


class S3Target:
    """``s3://bucket/prefix``: objects under ``prefix/`` in ``bucket``, locked in compliance mode."""

    def __init__(self, bucket: str, prefix: str, config: S3Config, *, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.config = config
        self._client = client

    def __repr__(self) -> str:
        return f"S3Target({self.url!r})"

    @classmethod
    def from_url(cls, url: str, config: S3Config) -> "S3Target":
        """Parse ``s3://bucket[/prefix]``. Raises ConfigError for anything else."""
        if not url.startswith("s3://"):
            raise ConfigError(f"{url!r} is not an s3://bucket/prefix URL")
        bucket, _, prefix = url[len("s3://"):].partition("/")
        if not bucket:
            raise ConfigError(f"{url!r} names no bucket (expected s3://bucket/prefix)")
        return cls(bucket, prefix, config)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def enforces_lock(self) -> bool:
        return True

    @property
    def client(self) -> Any:
        """The boto3 client (made on first use)."""
        if self._client is None:
            self._client = boto3.client(
                "s3", endpoint_url=self.config.endpoint, aws_access_key_id=self.config.access_key_id,
                aws_secret_access_key=self.config.secret_access_key, region_name=self.config.region,
                config=Config(s3={"addressing_style": "path"}, connect_timeout=self.config.connect_timeout,
                              read_timeout=self.config.read_timeout,
                              retries={"total_max_attempts": self.config.attempts, "mode": "standard"},
                              request_checksum_calculation="when_required",
                              response_checksum_validation="when_required"))
        return self._client

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, key: str) -> str:
        return f"{self.url}/{key}"

    def prepare(self) -> None:
        """Make the bucket with Object Lock when it does not exist. Raises TargetError."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            self._check_lock()
            return
        except ClientError as exc:
            if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise TargetError(f"bucket not reachable ({_error_code(exc)})", path=self.url) from exc
        except BotoCoreError as exc:
            raise TargetError(f"S3 endpoint not reachable ({type(exc).__name__})", path=self.url,
                              hint="is AWS_ENDPOINT_URL right and the server up?") from exc
        try:
            self.client.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True)
        except (ClientError, BotoCoreError) as exc:
            raise TargetError(f"cannot create the bucket with Object Lock ({_error_code(exc)})",
                              path=self.url) from exc

    def _check_lock(self) -> None:
        """Refuse an existing bucket made without Object Lock: every locked put would fail on it, one object in.

        Credentials that may not read the bucket's lock configuration (AccessDenied) pass: the puts then
        tell, as before.
        """
        try:
            answer = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as exc:
            if _error_code(exc) != "ObjectLockConfigurationNotFoundError":
                return
            answer = {}
        if (answer.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") != "Enabled":
            raise TargetError(f"bucket {self.bucket!r} has no Object Lock, which every object here needs (compliance "
                              "mode); S3 turns it on only when a bucket is made", path=self.url,
                              hint="name a bucket that does not exist yet (it is made with Object Lock) or one "
                                   "made with it (aws s3api create-bucket ... --object-lock-enabled-for-bucket)")

    def put(self, key: str, data: bytes, *, retain_until: datetime | None = None) -> None:
        extra: dict[str, Any] = {}
        if retain_until is not None:
            extra = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": retain_until}
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()  # Object Lock wants it
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentMD5=md5, **extra)
        except (ClientError, BotoCoreError) as exc:
            raise TargetError(f"cannot write ({_error_code(exc)})", path=self._where(key)) from exc

    def get(self, key: str) -> bytes:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return bytes(answer["Body"].read())
        except ClientError as exc:
            code = _error_code(exc)
            what = "missing" if code in ("NoSuchKey", "404") else f"unreadable ({code})"
            raise TargetError(what, path=self._where(key)) from exc
        except BotoCoreError as exc:  # no answer (connection, timeout): the server, not this object
            raise TargetUnreachable(f"unreadable ({type(exc).__name__}: the S3 endpoint does not answer)",
                                    path=self._where(key)) from exc

    def size(self, key: str) -> int | None:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])
        except ClientError:
            return None

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        cut = len(self.prefix) + 1 if self.prefix else 0
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    yield str(item["Key"])[cut:], int(item["Size"])
        except (ClientError, BotoCoreError) as exc:
            raise TargetError(f"cannot list ({_error_code(exc)})", path=self._where(prefix)) from exc

    def recover(self, key: str, sha256: str) -> bytes | None:
        """The newest earlier version of ``key`` with SHA-256 ``sha256``: Object Lock kept it under a newer one."""
        try:
            answer = self.client.list_object_versions(Bucket=self.bucket, Prefix=self._key(key))
            versions = sorted((v for v in answer.get("Versions", []) if v["Key"] == self._key(key)),
                              key=lambda v: v["LastModified"], reverse=True)
            for version in versions:
                data = bytes(self.client.get_object(Bucket=self.bucket, Key=self._key(key),
                                                    VersionId=version["VersionId"])["Body"].read())
                if hashlib.sha256(data).hexdigest() == sha256:
                    return data
        except (ClientError, BotoCoreError):
            return None
        return None

    def retain(self, key: str, until: datetime) -> None:
        try:
            current = self.client.get_object_retention(Bucket=self.bucket, Key=self._key(key))
            if current.get("Retention", {}).get("RetainUntilDate") and current["Retention"]["RetainUntilDate"] >= until:
                return  # compliance mode never shortens; an emergency copy may already be kept longer
        except ClientError:
            pass  # no retention yet
        try:
            self.client.put_object_retention(Bucket=self.bucket, Key=self._key(key),
                                             Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until})
        except (ClientError, BotoCoreError) as exc:
            raise TargetError(f"cannot extend the retention ({_error_code(exc)})", path=self._where(key)) from exc

    def legal_hold(self, key: str, on: bool) -> None:
        try:
            self.client.put_object_legal_hold(Bucket=self.bucket, Key=self._key(key),
                                              LegalHold={"Status": "ON" if on else "OFF"})
        except (ClientError, BotoCoreError) as exc:
            raise TargetError(f"cannot set the legal hold ({_error_code(exc)})", path=self._where(key)) from exc

    def delete(self, key: str) -> None:
        """Delete every version of ``key`` (a plain delete would only stack a delete marker). The server
        refuses a version whose retain-until is not reached or that is under a legal hold: TargetError."""
        try:
            answer = self.client.list_object_versions(Bucket=self.bucket, Prefix=self._key(key))
            versions = [v for v in answer.get("Versions", []) + answer.get("DeleteMarkers", [])
                        if v["Key"] == self._key(key)]
            for version in versions:
                self.client.delete_object(Bucket=self.bucket, Key=self._key(key), VersionId=version["VersionId"])
        except (ClientError, BotoCoreError) as exc:
            raise TargetError(f"deletion refused ({_error_code(exc)})", path=self._where(key)) from exc
