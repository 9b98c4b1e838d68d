"""A demo organisation over a real archive (data_samples + edge rows), built once and copied per test."""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from support import DATA_SAMPLES, PASSPHRASE, TEST_KDF_N
from investigator import _crypto, schema
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
