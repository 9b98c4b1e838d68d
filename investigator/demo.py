"""The demo: the whole path on the embedded key service, from sample exports to a verified archive.

    >>> from investigator.demo import run_demo
    >>> result = run_demo(Path("demo-archive"))   # doctest: +SKIP
    >>> result.info["messages"] > 0                # doctest: +SKIP
    True

Uses a DEMO-ONLY passphrase (printed, and written beside the archive) so it runs
unattended: never use it, or an archive made by the demo, for real records.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .archive import Archive
from .errors import ArchiveError

DEMO_PASSPHRASE = "demo-only-passphrase-仅供演示"  # DEMO ONLY: public, never for real data
DEMO_MARKER = "DEMO-ARCHIVE-NOT-FOR-REAL-DATA.txt"
REPO_SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"
# Files in data_samples/ that are not exports.
NOT_EXPORTS = {"README.md", "people.csv", "planted.json"}


@dataclass
class DemoResult:
    archive: Path
    batches: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    verified: bool = False
    problems: list[str] = field(default_factory=list)


def sample_exports(samples: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Each export file under ``samples`` with the import options it needs, in a stable order."""
    out: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(p for p in samples.rglob("*") if p.is_file()):
        rel = path.relative_to(samples)
        if path.name in NOT_EXPORTS or rel.parts[0] in NOT_EXPORTS or "room" in path.name.lower():
            continue
        options: dict[str, Any] = {}
        rooms = [p for p in path.parent.glob("*room*") if p.is_file()]
        if rooms:
            options["room_names"] = str(rooms[0])
        out.append((path, options))
    return out


def ensure_samples(samples: Path | None, workdir: Path) -> Path:
    """The sample folder to use: the given one, the repository's, or a freshly generated set."""
    if samples is not None:
        return samples
    if REPO_SAMPLES.is_dir() and any(REPO_SAMPLES.iterdir()):
        return REPO_SAMPLES
    from .samples import write_sample_set

    target = workdir / "generated-samples"
    write_sample_set(target)
    return target


def run_demo(out: Path, *, samples: Path | None = None, echo: Callable[[str], None] = lambda _: None,
             kdf_n: int | None = None) -> DemoResult:
    """Build a demo archive at ``out`` from sample exports, verify it, and summarize.

    Replaces ``out`` only if it is an earlier demo archive (it carries the demo
    marker file); raises ArchiveError rather than touch anything else.
    """
    from .importers import ImportOptions

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not (out / DEMO_MARKER).exists():
            raise ArchiveError(f"{out}: exists and is not a demo archive; refusing to replace it",
                               hint="pick another folder with --out")
        shutil.rmtree(out)
    source = ensure_samples(samples, out.parent)
    echo(f"samples: {source}")
    kwargs = {"kdf_n": kdf_n} if kdf_n else {}
    archive = Archive.create(out, passphrase=DEMO_PASSPHRASE, actor="demo-admin", **kwargs)
    (out / DEMO_MARKER).write_text(
        "This archive was made by `investigator demo` with a public demo-only passphrase:\n"
        f"{DEMO_PASSPHRASE}\nNever put real records into it.\n", encoding="utf-8")
    keys = archive.unlock(DEMO_PASSPHRASE, actor="demo-admin")
    result = DemoResult(archive=out)
    for path, extra in sample_exports(source):
        options = ImportOptions(tz=archive.config.timezone, lenient=False, **extra)
        batch = archive.ingest([path], keys=keys, actor="demo-operator", options=options)
        row = {"file": str(path.relative_to(source)), "batch": batch.batch_seq, "messages": batch.messages_added,
               "events": batch.events_added, "duplicates": batch.duplicates, "skipped": batch.skipped}
        result.batches.append(row)
        echo(f"ingested {row['file']}: {row['messages']} messages, {row['events']} events"
             + (f", {row['skipped']} skipped lines" if row["skipped"] else ""))
    report = archive.verify(keys=keys, actor="demo-admin")
    result.verified, result.problems = report.ok, report.problems
    result.info = archive.info()
    echo(f"verified: {'intact' if report.ok else 'PROBLEMS'} ({report.chunks_decrypted} chunks, "
         f"{report.records} records, {report.audit_entries} audit entries)")
    return result
