"""A demo organisation over a real archive (data_samples + edge rows), built once and copied per test."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from support import DATA_SAMPLES, PASSPHRASE, TEST_KDF_N
from investigator import _crypto, schema
from investigator.access.client_auth import RequestSigner
from investigator.vault.store import Archive
from investigator.authority.grants import approve, new_request
from investigator.demo.people import DEMO_ONLY_PASSPHRASE, DEMO_ONLY_TOTP_SECRETS, demo_authority
from investigator.authority.identity import unlock_person_key
from investigator.importers import ImportOptions
from investigator.vault.ingest import ingest_frames
from investigator.custody.file import create_archive
from investigator.custody.file import unlock_archive
from investigator.vault.ingest import ingest_paths

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc)
SHANGHAI = timezone(timedelta(hours=8))
EDGE_DAY = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)  # 18:00 in Shanghai


def edge_rows() -> pl.DataFrame:
    """Rows exactly at, just inside and exactly past the window [10:00, 11:00) UTC on 2026-11-20."""
    times = {"edge-start": EDGE_DAY, "edge-inside": EDGE_DAY + timedelta(minutes=59, seconds=59, microseconds=999999),
             "edge-end": EDGE_DAY + timedelta(hours=1), "edge-before": EDGE_DAY - timedelta(microseconds=1)}
    rows = [{"message_id": mid, "source": "edge", "conversation_id": "edge-conv", "conversation_type": "group",
             "ts": ts, "sender_id": "zhangwei", "sender_name": "张伟", "recipients": ["wangfang"], "msg_type": "text",
             "text": f"edge row {mid}"} for mid, ts in times.items()]
    return schema.conform(pl.DataFrame(rows, schema_overrides={"ts": schema.UTC_US}), "messages")


@pytest.fixture(scope="session")
def case_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("case-template")
    archive = create_archive(root / "archive", passphrase=PASSPHRASE, kdf_n=TEST_KDF_N, now=NOW - timedelta(days=2))
    keys = unlock_archive(archive, PASSPHRASE)
    options = ImportOptions(tz="Asia/Shanghai")
    ingest_paths(archive, [DATA_SAMPLES / "normalized" / "messages.jsonl", DATA_SAMPLES / "events" / "events.jsonl"],
                   keys=keys, actor="loader-test", options=options, now=NOW - timedelta(days=2))
    ingest_frames(archive, messages=edge_rows(), events=None, sources=[], skipped=[], keys=keys, actor="loader-test",
                  now=NOW - timedelta(days=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo = demo_authority(archive, keys, now=NOW - timedelta(minutes=30), key_dir=root / "archive" / "demo-keys")
    (root / "grant_id").write_text(demo.grant_id)
    return root


@dataclass
class World:
    archive: Archive
    keys: Any
    demo_grant: str
    clock: datetime = NOW

    def tick(self) -> datetime:
        """A fresh 30-second TOTP step for every identity check (codes are single-use)."""
        self.clock += timedelta(seconds=31)
        return self.clock

    def code(self, pid: str, when: datetime) -> str:
        return _crypto.totp(DEMO_ONLY_TOTP_SECRETS[pid], when.timestamp())

    def key(self, pid: str) -> _crypto.SigningKey:
        return unlock_person_key(self.archive, pid, DEMO_ONLY_PASSPHRASE.format(person=pid),
                                 key_dir=self.archive.root / "demo-keys")

    def grant(self, *, start: datetime, end: datetime, fields=("metadata", "content"), requester: str = "sunli",
              approver: str = "zhouzong", **kw: Any) -> str:
        """A new approved grant (sunli requests, zhouzong approves); returns the grant id."""
        when = self.tick()
        signed = new_request(self.archive, requester=requester, signing_key=self.key(requester), case="T-LOADER",
                             purpose=kw.pop("purpose", "internal_audit"), start=start, end=end, fields=fields,
                             reason="loader test", now=when, **kw)
        result = approve(self.archive, self.keys, signed.id, approver=approver, signing_key=self.key(approver),
                         totp=self.code(approver, when), now=when)
        assert result.grant_path is not None, result
        return result.grant_path.stem

    def open(self, grant: str, person: str = "sunli", **kw: Any):
        from investigator.access.keyservice import EmbeddedKeyService
        from investigator.access.case import open_case

        when = self.tick()
        service = kw.pop("key_service", None) or EmbeddedKeyService(self.archive, self.keys)
        totp = kw.pop("totp", None) or self.code(person, when)
        return open_case(self.archive, grant=grant, person=person, totp=totp, key_service=service, now=when, **kw)

    def audit(self, action: str | None = None) -> list:
        return [e for e in self.archive.audit.entries() if action is None or e.action == action]


@pytest.fixture
def world(case_template: Path, tmp_path: Path) -> World:
    shutil.copytree(case_template / "archive", tmp_path / "archive")
    archive = Archive.open(tmp_path / "archive")
    return World(archive, unlock_archive(archive, PASSPHRASE), (case_template / "grant_id").read_text())


# --- the key server as a real process ------------------------------------------------------------

@contextmanager
def keyserver_process(world: World, *args: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """``investigator keyserver`` on 127.0.0.1 (a free port) over the world's archive: (process, url)."""
    env = {**os.environ, "INVESTIGATOR_PASSPHRASE": PASSPHRASE}
    proc = subprocess.Popen([sys.executable, "-m", "investigator.cli", "keyserver", str(world.archive.root),
                             "--listen", "127.0.0.1:0", "--shared-totp-state", *args], env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        yield proc, f"http://127.0.0.1:{match.group(1)}"
    finally:
        proc.send_signal(signal.SIGTERM) if proc.poll() is None else None
        proc.wait(timeout=60)  # a loaded machine can take more than 10 s to let the server finish


@pytest.fixture
def server(world):
    with keyserver_process(world, "--rate", "50") as running:
        yield running


def now_code(world: World, person: str = "sunli") -> str:
    # the server judges by its own clock: codes for the real time
    return world.code(person, datetime.now(timezone.utc))


def signer(world: World, person: str = "sunli") -> RequestSigner:
    return RequestSigner(person, world.key(person))


def post(url: str, path: str, body: Any = None, *, sign: RequestSigner | None = None, archive_id: str = "",
         data: bytes | None = None, signed_data: bytes | None = None, signed_path: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """POST ``body`` (or raw ``data``), signed by ``sign`` over ``signed_data``/``signed_path`` (default: what is sent)."""
    data = data if data is not None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json"}
    if sign is not None:
        sent.update(sign.headers(archive_id=archive_id, method="POST", path=signed_path or path,
                                 body=data if signed_data is None else signed_data))
    sent.update(headers or {})
    request = urllib.request.Request(url + path, data=data, method="POST", headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
