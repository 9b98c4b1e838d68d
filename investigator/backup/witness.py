"""The S3 witness: each checkpoint an Object-Locked object (compliance mode) in a bucket the archive's host cannot
rewrite (issue #14, item 8; the protocol is :mod:`investigator.vault.witness`).

    >>> witness = s3_witness("s3://evidence-witness/archive-1")    # doctest: +SKIP
    >>> witness.submit(note, proof).status                          # doctest: +SKIP
    'accepted'

Every entry is written once with ``ObjectLockMode=COMPLIANCE`` and a
retain-until of :data:`RETAIN_DAYS` days: until then the server refuses to
delete the object version or shorten its retention, whoever asks. Names carry
the tree size and root, so an entry is never written twice; a put over an
existing name would only stack a new version on top of the locked one, and the
witness checks the name is free first. Importing this module registers the
``s3://`` scheme with the vault's witness seam (:func:`register_scheme`);
endpoint and credentials come from boto3's own environment
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``) and
never appear in a message.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from investigator.backup.s3 import S3Config, S3Target
from investigator.backup.target import TargetError
from investigator.vault.witness import Witness, WitnessError, register_scheme

RETAIN_DAYS = 3650  # ten years: longer than any retention the policy allows for the evidence itself


class S3WitnessStore:
    """A :class:`investigator.vault.witness.WitnessStore` over an Object-Locked S3 prefix."""

    def __init__(self, target: S3Target, *, retain_days: int = RETAIN_DAYS) -> None:
        self.target = target
        self.retain = timedelta(days=retain_days)
        self._prepared = False

    @property
    def location(self) -> str:
        return self.target.url

    def prepare(self) -> None:
        """Make the bucket with Object Lock when it does not exist (once per store). Raises WitnessError."""
        if not self._prepared:
            try:
                self.target.prepare()
            except TargetError as exc:
                raise WitnessError(f"witness {self.location}: {exc}") from exc
            self._prepared = True

    def put_new(self, name: str, data: bytes) -> bool:
        self.prepare()
        try:
            if self.target.size(name) is not None:
                return False
            # the put returns after the server stored the object under its lock
            self.target.put(name, data, retain_until=datetime.now(timezone.utc) + self.retain)
            return True
        except TargetError as exc:
            raise WitnessError(f"witness {self.location}: {exc}") from exc

    def get(self, name: str) -> bytes:
        try:
            return self.target.get(name)
        except TargetError as exc:
            raise WitnessError(f"witness {self.location}: {exc}") from exc

    def names(self, prefix: str) -> list[str]:
        try:
            return sorted(key[len(prefix):] for key, _ in self.target.list(prefix)
                          if "/" not in key[len(prefix):])
        except TargetError as exc:
            raise WitnessError(f"witness {self.location}: {exc}") from exc


def s3_witness(url: str, config: S3Config | None = None, *, retain_days: int = RETAIN_DAYS) -> Witness:
    """The witness at ``s3://bucket/prefix`` (``config``: endpoint and credentials; default boto3's environment)."""
    return Witness(S3WitnessStore(S3Target.from_url(url, config or S3Config()), retain_days=retain_days))


register_scheme("s3", s3_witness)
