"""The demo: the whole path on the embedded key service, from sample exports to a verified archive.

    >>> from investigator.demo.run import run_demo
    >>> result = run_demo(Path("demo-archive"))   # doctest: +SKIP
    >>> result.info["messages"] > 0                # doctest: +SKIP
    True

Uses a DEMO-ONLY passphrase (printed, and written beside the archive) so it runs
unattended: never use it, or an archive made by the demo, for real records.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from investigator import _crypto
from investigator.vault.layout import DEMO_MARKER_NAME, DEMO_SESSION_NAME, Layout
from investigator.vault.store import Archive
from investigator.errors import ArchiveError, IdentityCheckFailed
from investigator.custody.file import create_archive
from investigator.custody.file import unlock_archive
from investigator.vault.ingest import ingest_paths
from investigator.vault.verify import verify_archive
from investigator.demo.samples import write_sample_set
from investigator.importers import ImportOptions
from investigator.demo.people import DEMO_KDF_N, demo_authority
from investigator.errors import InvestigatorError
from investigator.authority.identity import unlock_person_key
from investigator.reports.run import run_report
from investigator.reports.seal import verify_report
from investigator.demo.people import demo_totp
from investigator.authority.identity import check_session, login
from investigator.authority.grants import Grant
from investigator.access.case import open_case

DEMO_PASSPHRASE = "demo-only-passphrase-仅供演示"  # DEMO ONLY: public, never for real data
DEMO_MARKER = DEMO_MARKER_NAME  # marks a demo archive (Layout.demo_marker)
DEMO_SESSION = DEMO_SESSION_NAME  # the demo operator's session token (Layout.demo_session; demo only)
DEMO_OPERATOR = "sunli"
REPO_SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"
# Files in data_samples/ that are not exports.
NOT_EXPORTS = {"README.md", "people.csv", "planted.json"}


@dataclass
class DemoResult:
    archive: Path
    grant_id: str = ""
    review_grant_id: str = ""  # the month-wide grant: both planted cases and the 加班费 messages
    operator: str = ""
    case_info: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None
    report_html: Path | None = None
    report_verified: bool = False
    report_problems: list[str] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    verified: bool = False
    problems: list[str] = field(default_factory=list)


def sample_exports(samples: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Each export file under ``samples`` with the import options it needs, in a stable order."""
    out: list[tuple[Path, dict[str, Any]]] = []
    host_zone = None
    planted = samples / "planted.json"
    if planted.exists():
        # the sample auth.log was written by hosts on this zone (syslog has no offset)
        host_zone = json.loads(planted.read_text(encoding="utf-8")).get("authlog_host_time_zone")
    for path in sorted(p for p in samples.rglob("*") if p.is_file()):
        rel = path.relative_to(samples)
        if path.name in NOT_EXPORTS or rel.parts[0] in NOT_EXPORTS or "room" in path.name.lower():
            continue
        options: dict[str, Any] = {}
        rooms = [p for p in path.parent.glob("*room*") if p.is_file()]
        if rooms:
            options["room_names"] = str(rooms[0])
        if host_zone and path.name.startswith("auth.log"):
            options["tz"] = host_zone
        out.append((path, options))
    return out


def ensure_samples(samples: Path | None, workdir: Path) -> Path:
    """The sample folder to use: the given one, the repository's, or a freshly generated set."""
    if samples is not None:
        return samples
    if REPO_SAMPLES.is_dir() and any(REPO_SAMPLES.iterdir()):
        return REPO_SAMPLES

    target = workdir / "generated-samples"
    write_sample_set(target)
    return target


def run_demo(out: Path, *, samples: Path | None = None, echo: Callable[[str], None] = lambda _: None,
             kdf_n: int | None = None) -> DemoResult:
    """Build a demo archive at ``out`` from sample exports, verify it, and summarize.

    Replaces ``out`` only if it is an earlier demo archive (it carries the demo
    marker file); raises ArchiveError rather than touch anything else.
    """

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not Layout(out).demo_marker.exists():
            raise ArchiveError(f"{out}: exists and is not a demo archive; refusing to replace it",
                               hint="pick another folder with --out")
        shutil.rmtree(out)
    source = ensure_samples(samples, out.parent)
    echo(f"samples: {source}")
    archive = create_archive(out, passphrase=DEMO_PASSPHRASE, actor="demo-admin", kdf_n=kdf_n or _crypto.SCRYPT_N)
    mark_demo_archive(archive)
    keys = unlock_archive(archive, DEMO_PASSPHRASE, actor="demo-admin", purpose="demo")
    result = DemoResult(archive=out)
    for path, extra in sample_exports(source):
        options = ImportOptions(**{"tz": archive.config.timezone, "lenient": False, **extra})
        batch = ingest_paths(archive, [path], keys=keys, actor="demo-operator", options=options)
        row = {"file": str(path.relative_to(source)), "batch": batch.batch_seq, "messages": batch.messages_added,
               "events": batch.events_added, "duplicates": batch.duplicates, "skipped": batch.skipped}
        result.batches.append(row)
        echo(f"ingested {row['file']}: {row['messages']} messages, {row['events']} events"
             + (f", {row['skipped']} skipped lines" if row["skipped"] else ""))
    report = verify_archive(archive, keys=keys, actor="demo-admin")
    result.verified, result.problems = report.ok, report.problems
    result.info = archive.info()
    echo(f"verified: {'intact' if report.ok else 'PROBLEMS'} ({report.counts['chunks_decrypted']} chunks, "
         f"{report.counts['records']} records, {report.counts['audit_entries']} audit entries)")
    if not report.ok:
        return result
    now = datetime.now(timezone.utc)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the demo says so itself, once, below
        authority = demo_authority(archive, keys, now=now, kdf_n=kdf_n or DEMO_KDF_N)
    result.grant_id, result.operator = authority.grant_id, authority.operator_id
    result.review_grant_id = authority.review_grant_id
    echo(f"authority: {len(authority.enrolled)} demo people enrolled (DEMO-ONLY secrets); grant {authority.grant_id} "
         f"for {authority.operator_id}, approved by the supervisor")
    echo(f"  review grant {authority.review_grant_id}: the whole month 2026-11, both planted cases (complaint "
         f"2026-11-18, misconduct 2026-11-24); search it for 加班费")
    case = open_demo_case(out, now=now, keys=keys)
    result.case_info = case.info()
    echo(f"case opened by {case.person}: {result.case_info['messages']} messages and {result.case_info['events']} "
         f"events in {result.case_info['window']['start']} .. {result.case_info['window']['end']} (UTC)")
    demo_report(result, authority, echo=echo)
    return result


def mark_demo_archive(archive: Archive) -> None:
    """DEMO ONLY: write the marker file (with the public passphrase) that lets :func:`run_demo` replace the folder."""
    archive.layout.demo_marker.write_text(
        "This archive was made by `investigator demo` with a public demo-only passphrase:\n"
        f"{DEMO_PASSPHRASE}\nNever put real records into it.\n", encoding="utf-8")


def demo_report(result: DemoResult, authority: Any, *, echo: Callable[[str], None] = lambda _: None) -> None:
    """DEMO ONLY: run complaint_investigation as the demo operator, seal it, verify it (reports/ in the archive)."""
    import nbformat


    archive = Archive.open(result.archive)
    try:
        signer = unlock_person_key(archive, authority.operator_id, authority.operator_passphrase,
                                   key_dir=authority.key_dir)
        run = run_report("complaint_investigation", archive=archive, grant=authority.grant_id,
                         person=authority.operator_id, signer=signer, passphrase=DEMO_PASSPHRASE,
                         session=demo_session(result.archive), out_dir=archive.layout.demo_reports_dir)
        check = verify_report(nbformat.read(str(run.notebook), as_version=4), archive=archive,
                              actor=authority.operator_id)
    except InvestigatorError as exc:
        result.report_problems.append(str(exc))
        echo(f"report: FAILED ({exc})")
        return
    result.report, result.report_html = run.notebook, run.html
    result.report_verified, result.report_problems = check.ok, check.problems
    echo(f"report: complaint_investigation sealed ({run.digest[:19]}...) and "
         f"{'verified' if check.ok else 'NOT verified'}: {run.notebook}")
    echo(f"  reviewer copy: {run.html}")


def demo_session(archive_path: Path | str, *, now: datetime | None = None, keys: Any = None) -> str:
    """DEMO ONLY: the demo operator's session token, logging in again (demo TOTP secret) when expired."""

    when = now or datetime.now(timezone.utc)
    archive = Archive.open(Path(archive_path))
    path = archive.layout.demo_session
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        try:
            check_session(archive, token, DEMO_OPERATOR, now=when)
            return token
        except IdentityCheckFailed:  # expired, revoked or forged: log in again below
            pass
    keys = keys or unlock_archive(archive, DEMO_PASSPHRASE, actor=DEMO_OPERATOR, purpose="demo session")
    token = login(archive, keys, DEMO_OPERATOR, totp=demo_totp(DEMO_OPERATOR, when), now=when)
    path.write_text(token + "\n", encoding="utf-8")
    return token


DEMO_CASE = "DEMO-2026-11-18-complaint"


def demo_grant(archive_path: Path | str) -> str:
    """DEMO ONLY: the id of the demo archive's complaint grant (found by its case, not by file order)."""

    for path in sorted(Layout(Path(archive_path)).grants_dir.glob("*.json")):
        if Grant.from_file(path).case == DEMO_CASE:
            return path.stem
    raise ArchiveError(f"{archive_path}: no demo grant; run 'investigator demo' first")


def open_demo_case(archive_path: Path | str, *, now: datetime | None = None, keys: Any = None) -> Any:
    """DEMO ONLY: open the demo grant's case as the demo operator, with the demo session."""

    session = demo_session(archive_path, now=now, keys=keys)
    return open_case(archive_path, grant=demo_grant(archive_path), person=DEMO_OPERATOR, session=session,
                     passphrase=DEMO_PASSPHRASE, now=now)
