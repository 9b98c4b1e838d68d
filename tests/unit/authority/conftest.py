"""Factories for the authority tests: a demo organisation (people, keys, TOTP, policy, one grant).

The organisation is built once per session with :func:`investigator.authority.grants.demo_authority`
(DEMO-ONLY secrets, low scrypt cost) and copied for every test, so each test
can change it freely and the suite stays fast.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from investigator import _crypto
from investigator.vault.store import Archive
from investigator.authority.directory import DirectoryStore, Signer
from investigator.authority.grants import approve, new_request
from investigator.demo.people import DEMO_ONLY_PASSPHRASE, DEMO_ONLY_TOTP_SECRETS, demo_authority
from investigator.authority.identity import unlock_person_key
from investigator.custody.file import create_archive
from investigator.custody.file import unlock_archive

PASSPHRASE = "authority-test-passphrase"
# Saturday 2026-11-28 12:00 in Asia/Shanghai: the week began Monday 23rd, the month on the 1st.
NOW = datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc)
SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture(scope="session")
def org_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("org-template")
    archive = create_archive(root / "archive", passphrase=PASSPHRASE, kdf_n=2**14, now=NOW - timedelta(days=1))
    keys = unlock_archive(archive, PASSPHRASE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo = demo_authority(archive, keys, now=NOW - timedelta(minutes=2), key_dir=root / "archive" / "demo-keys")
    (root / "grant_id").write_text(demo.grant_id)
    return root


@dataclass
class Org:
    """One test's copy of the demo organisation, with helpers to act as its people."""

    archive: Archive
    keys: Any
    grant_id: str
    now: datetime = NOW

    @property
    def key_dir(self) -> Path:
        return self.archive.root / "demo-keys"

    @property
    def grant_path(self) -> Path:
        return self.archive.root / "org" / "grants" / f"{self.grant_id}.json"

    def key(self, pid: str) -> _crypto.SigningKey:
        return unlock_person_key(self.archive, pid, DEMO_ONLY_PASSPHRASE.format(person=pid), key_dir=self.key_dir)

    def signer(self, pid: str) -> Signer:
        return Signer(pid, self.key(pid))

    def code(self, pid: str, when: datetime) -> str:
        return _crypto.totp(DEMO_ONLY_TOTP_SECRETS[pid], when.timestamp())

    def directory(self):
        return DirectoryStore(self.archive).load()

    def request(self, pid: str, *, when: datetime | None = None, key: _crypto.SigningKey | None = None, **kw: Any):
        args: dict[str, Any] = dict(case="T-1", purpose="internal_audit", fields=("metadata", "content"),
                                    reason="test", start=datetime(2026, 11, 24, 8, 30, tzinfo=SHANGHAI),
                                    end=datetime(2026, 11, 24, 9, 15, tzinfo=SHANGHAI))
        args.update(kw)
        return new_request(self.archive, requester=pid, signing_key=key or self.key(pid), now=when or self.now,
                           **args)

    def approve(self, request_id: str, pid: str, *, when: datetime | None = None, totp: str | None = None,
                key: _crypto.SigningKey | None = None, **kw: Any):
        when = when or self.now
        return approve(self.archive, self.keys, request_id, approver=pid, signing_key=key or self.key(pid),
                       totp=totp if totp is not None else self.code(pid, when), now=when, **kw)

    def audit(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.archive.audit.entries()]

    def grant_doc(self) -> dict[str, Any]:
        return json.loads(self.grant_path.read_text(encoding="utf-8"))

    def write_grant_doc(self, doc: dict[str, Any]) -> None:
        self.grant_path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


@pytest.fixture
def org(org_template: Path, tmp_path: Path) -> Org:
    shutil.copytree(org_template / "archive", tmp_path / "archive")
    archive = Archive.open(tmp_path / "archive")
    return Org(archive, unlock_archive(archive, PASSPHRASE), (org_template / "grant_id").read_text())
