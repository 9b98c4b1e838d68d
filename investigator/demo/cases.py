"""DEMO ONLY: the planted cases of the demo archive as grants and opened cases, for notebooks and templates.

    >>> from investigator.demo.cases import open_complaint_case, open_misconduct_case, open_review_case
    >>> case = open_misconduct_case("demo-archive")     # doctest: +SKIP
    >>> case.info()["window"]                           # doctest: +SKIP

The demo archive (``investigator demo``) carries two approved grants: one for the complaint of
2026-11-18 14:00-17:00 (what the demo's report runs on) and a review grant for the whole month
(:data:`~investigator.demo.people.REVIEW_CASE`, :func:`open_review_case`), which holds both planted
cases and every planted 加班费 message. The narrow misconduct case of 2026-11-24 08:30-09:15 lies
outside the complaint grant, so
:func:`misconduct_grant` files a request as 孙丽 (sunli) and has her supervisor 周总 (zhouzong)
approve it — through the public grant API, with the DEMO-ONLY secrets of
:data:`investigator.authority.grants.DEMO_ONLY_TOTP_SECRETS`, exactly as an investigator and an approver would
with their own keys and authenticator apps. The grant is created only when absent, so a notebook can
run again. Never use any of this for real records: anyone can compute these codes.
"""

from __future__ import annotations

import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from investigator.vault.layout import Layout
from investigator.vault.store import Archive
from investigator.errors import ArchiveError, IdentityCheckFailed
from investigator.custody.file import unlock_archive
from investigator.authority.grants import Grant, approve, new_request, request_status
from investigator.demo.people import DEMO_ONLY_PASSPHRASE, REVIEW_CASE, demo_totp
from investigator.authority.identity import unlock_person_key
from investigator.demo.run import DEMO_OPERATOR, DEMO_PASSPHRASE, demo_session
from investigator.access.case import open_case

COMPLAINT_CASE = "DEMO-2026-11-18-complaint"
MISCONDUCT_CASE = "DEMO-2026-11-24-misconduct"
# 2026-11-24 08:00-10:00 in the archive's zone: the 23 key messages (08:30-09:15) and the three
# abnormal logins (08:41, 08:52, 09:07) with some context either side.
MISCONDUCT_WINDOW = ((2026, 11, 24, 8, 0), (2026, 11, 24, 10, 0))
REQUESTER = "sunli"
APPROVER = "zhouzong"


def _grants(root: Path) -> list[Any]:
    return [Grant.from_file(p) for p in sorted(Layout(root).grants_dir.glob("*.json"))]


def find_case_grant(archive_path: Path | str, case: str, *, now: datetime | None = None) -> str | None:
    """The id of the newest unexpired grant for ``case`` in the archive, or None."""
    when = now or datetime.now(timezone.utc)
    found = [g for g in _grants(Path(archive_path)) if g.case == case and g.expiry > when]
    return max(found, key=lambda g: g.issued).id if found else None


def complaint_grant(archive_path: Path | str) -> str:
    """DEMO ONLY: the complaint grant made by ``investigator demo``. Raises ArchiveError when absent."""
    grant = find_case_grant(archive_path, COMPLAINT_CASE)
    if grant is None:
        raise ArchiveError(f"{archive_path}: no demo complaint grant; run 'investigator demo' first")
    return grant


def misconduct_grant(archive_path: Path | str, *, now: datetime | None = None) -> str:
    """DEMO ONLY: an approved grant for the misconduct window, created (requested + approved) if absent.

    TOTP codes are single-use per 30-second step: when the approver's code of this step was already
    used (the demo was built a moment ago), the code of the next step is used (within the policy's
    skew), and failing that the call waits for a fresh step. Raises PolicyDenied, IdentityCheckFailed
    or GrantInvalid as the grant API does.
    """

    root = Path(archive_path)
    existing = find_case_grant(root, MISCONDUCT_CASE, now=now)
    if existing:
        return existing
    warnings.warn("DEMO ONLY: creating the misconduct grant with public demo secrets", UserWarning, stacklevel=2)
    archive = Archive.open(root)
    keys = unlock_archive(archive, DEMO_PASSPHRASE, actor=REQUESTER, purpose="demo cases")
    key_dir = archive.layout.demo_keys_dir
    zone = archive.config.zone
    (y0, m0, d0, h0, n0), (y1, m1, d1, h1, n1) = MISCONDUCT_WINDOW
    when = now or datetime.now(timezone.utc)
    requester_key = unlock_person_key(archive, REQUESTER, DEMO_ONLY_PASSPHRASE.format(person=REQUESTER),
                                      key_dir=key_dir)
    signed = new_request(archive, requester=REQUESTER, signing_key=requester_key, case=MISCONDUCT_CASE,
                         purpose="internal_audit", start=datetime(y0, m0, d0, h0, n0, tzinfo=zone),
                         end=datetime(y1, m1, d1, h1, n1, tzinfo=zone), fields=("metadata", "content"),
                         reason="DEMO: suspected kickbacks and record tampering by 刘洋 (liuyang), 2026-11-24",
                         legal_basis="DEMO: 内部调查制度", now=when)
    approver_key = unlock_person_key(archive, APPROVER, DEMO_ONLY_PASSPHRASE.format(person=APPROVER),
                                     key_dir=key_dir)
    last_error: IdentityCheckFailed | None = None
    for attempt in range(3):
        if attempt == 2:  # both codes of this step and the next were used: wait for a fresh step
            time.sleep(31 - (time.time() % 30))
            when = datetime.now(timezone.utc) if now is None else when
        code = demo_totp(APPROVER, when + timedelta(seconds=30 if attempt == 1 else 0))
        try:
            result = approve(archive, keys, signed.id, approver=APPROVER, signing_key=approver_key, totp=code,
                             now=when, note="DEMO approval")
        except IdentityCheckFailed as exc:
            last_error = exc
            if request_status(archive, signed.id) != "pending":
                raise
            continue
        if result.grant_path is None:
            raise ArchiveError(f"the demo misconduct request {signed.id} was not granted")
        return result.grant_path.stem
    assert last_error is not None
    raise last_error


def review_grant(archive_path: Path | str) -> str:
    """DEMO ONLY: the month-wide review grant made by ``investigator demo``. Raises ArchiveError when absent."""
    grant = find_case_grant(archive_path, REVIEW_CASE)
    if grant is None:
        raise ArchiveError(f"{archive_path}: no demo review grant; run 'investigator demo' first")
    return grant


def open_review_case(archive_path: Path | str, *, now: datetime | None = None) -> Any:
    """DEMO ONLY: open the month-wide review grant (both planted cases, 加班费) as sunli with the demo session."""
    return _open(archive_path, review_grant(archive_path), now)


def open_complaint_case(archive_path: Path | str, *, now: datetime | None = None) -> Any:
    """DEMO ONLY: open the complaint grant as sunli with the demo session."""
    return _open(archive_path, complaint_grant(archive_path), now)


def open_misconduct_case(archive_path: Path | str, *, now: datetime | None = None) -> Any:
    """DEMO ONLY: open (creating if needed) the misconduct grant as sunli with the demo session."""
    return _open(archive_path, misconduct_grant(archive_path, now=now), now)


def _open(archive_path: Path | str, grant: str, now: datetime | None) -> Any:

    session = demo_session(archive_path, now=now)
    return open_case(archive_path, grant=grant, person=DEMO_OPERATOR, session=session, passphrase=DEMO_PASSPHRASE,
                     now=now)
