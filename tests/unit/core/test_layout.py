"""The archive layout: ``investigator/vault/layout.py`` owns every path under an archive root.

Three things are checked:

* every path the :class:`Layout` names is under its root and fits one of the areas (and, for a
  file, one of the entries) that ``Layout.areas()`` declares -- so the enumeration a backup reads
  and the methods the code calls cannot drift apart;
* a small archive used the way ``investigator demo`` uses one (ingest, people and policy, enrolment,
  a request, an approval and a grant, a login, the demo files, tags, a key rotation, a revocation
  and a bundle the circuit breaker holds) holds no file outside a declared entry; only the demo's
  report notebook (``reports/``, a papermill run) is left to the path-level check;
* no module of the package but the layout joins a path onto an archive root (the source check
  below, with :data:`ALLOWLIST` naming the modules still to be converted).
"""

from __future__ import annotations

import ast
import inspect
import warnings
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from support import PASSPHRASE, TEST_KDF_N, event_frame, message_frame
from investigator.authority.directory import DirectoryStore, Signer
from investigator.authority.grants import revoke_grant
from investigator.authority.identity import unlock_person_key
from investigator.custody.file import unlock_archive
from investigator.custody.rotation import rotate
from investigator.demo.people import DEMO_ONLY_PASSPHRASE, demo_authority
from investigator.demo.run import DEMO_OPERATOR, demo_session, mark_demo_archive
from investigator.errors import ConfigError, IntegrityError
from investigator.access import exportcheck
from investigator.reports.bundles import export_bundle
from investigator.vault import layout as layout_module
from investigator.vault.ingest import ingest_frames
from investigator.vault.layout import SCRATCH, TEMPORARY, BatchFolder, Layout
from investigator.vault.tagstore import TagStore

PACKAGE = Path(__file__).resolve().parents[3] / "investigator"
NOW = datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc)  # a week after the demo grant's window

# Sample arguments for every parameter a Layout method takes (a new parameter must be added here).
SAMPLE_ARGS: dict[str, object] = {
    "seq": 7, "version": 3, "number": 2, "kind": "messages", "partition": "2026-11-18", "chunk": "140000",
    "part": "meta", "batch_id": "0f" * 16, "name": "sunli", "sid": "ab" * 16, "request_id": "REQ-20261118-1a2b3c4d",
    "grant_id": "G-0123456789abcdef", "case": "C-1 / 投诉", "bundle_id": "B-0123456789abcdef",
    "period": "2026Q1", "hold_id": "HOLD-20261128-1a2b3c4d", "record_id": "LOCK-20261128-1a2b3c4d",
}
# Layout members that do not name a path.
NOT_PATHS = {"root", "generation", "with_generation", "areas", "tracked", "area_path", "area_of", "entry_of", "contains", "relative", "resolve",
             "state_files"}  # state_files: the files that exist now, by state-head component


def named_paths(layout: Layout) -> Iterator[tuple[str, Path, bool]]:
    """(member, path, is_folder) for every path a Layout member names, with :data:`SAMPLE_ARGS`."""
    for member, value in inspect.getmembers(Layout):
        if member.startswith("_") or member in NOT_PATHS:
            continue
        if isinstance(value, property):
            result = getattr(layout, member)
        else:
            method = getattr(layout, member)
            missing = [p for p in inspect.signature(method).parameters if p not in SAMPLE_ARGS]
            assert not missing, f"Layout.{member}: add sample values for {missing} to SAMPLE_ARGS"
            result = method(**{p: SAMPLE_ARGS[p] for p in inspect.signature(method).parameters})
        results = result if isinstance(result, tuple) else (result,)
        for item in results:
            if isinstance(item, BatchFolder):
                yield f"{member}().folder", item.folder, True
                yield f"{member}().manifest", item.manifest, False
                yield f"{member}().index", item.index, False
                yield f"{member}().data_key", item.data_key("events", "2026-11-18"), False
                yield f"{member}().chunk_part", item.chunk_part("messages", "2026-11-18", "140000", "content"), False
            else:
                assert isinstance(item, Path), f"Layout.{member} returns {type(item).__name__}, not a Path"
                yield member, item, member.endswith("_dir") or member.endswith("_dirs")


# --- (a) the layout and its areas ------------------------------------------------------------------

def test_every_layout_path_is_under_the_root_and_in_a_declared_area(tmp_path):
    layout = Layout(tmp_path / "archive")
    seen = list(named_paths(layout))
    assert len(seen) > 40
    for member, path, folder in seen:
        assert layout.contains(path), f"Layout.{member} = {path} is not under the root"
        assert path.resolve().is_relative_to(layout.root.resolve()), member
        area = layout.area_of(path)
        assert area is not None, f"Layout.{member} ({layout.relative(path)}) is in no declared area"
        if not folder:
            entry = layout.entry_of(path)
            assert entry is not None and entry is not TEMPORARY, \
                f"Layout.{member} ({layout.relative(path)}) fits no entry of area {area.name!r}"


def test_the_paths_are_the_format_s_paths(tmp_path):
    """Byte-for-byte the names of docs/archive-format.md (the known-answer archive depends on them)."""
    layout = Layout(tmp_path)
    rel = layout.relative
    assert rel(layout.config) == "archive.toml"
    assert rel(layout.key_file) == "keys/master.json"
    assert rel(layout.signing_public_key) == "keys/archive-signing.pub"
    assert [rel(p) for p in layout.fixed_wrapped_keys] == ["keys/index-key.json", "keys/totp-key.json"]
    assert rel(layout.rewrapped_key("messages", "2026-11-18")) == "keys/rewrapped/messages/2026-11-18.json"
    assert rel(layout.manifest(1)) == "batches/00000001/manifest.json"
    batch = layout.batch(12)
    assert rel(batch.index) == "batches/00000012/index.chk"
    assert rel(batch.data_key("events", "2026-11-18")) == "batches/00000012/keys/events/2026-11-18.json"
    assert rel(batch.chunk_part("messages", "2026-11-18", "140000", "meta")) == \
        "batches/00000012/messages/2026-11-18/140000.meta.chk"
    assert rel(layout.staged_batch("ab" * 16).manifest) == f"staging/{'ab' * 16}/manifest.json"
    assert rel(layout.write_lock) == "locks/write.lock"
    assert [rel(p) for p in (layout.audit_log, layout.audit_checkpoints, layout.audit_lock)] == \
        ["audit/log.jsonl", "audit/checkpoints.jsonl", "audit/.lock"]
    assert rel(layout.directory_version(3)) == "org/directory/000003.json"
    assert rel(layout.policy_text(1)) == "org/policy/000001.toml"
    assert rel(layout.policy_signature(1)) == "org/policy/000001.sig.json"
    assert rel(layout.totp_state("sunli")) == "org/totp/sunli.json" and rel(layout.totp_lock) == "org/totp/.lock"
    assert rel(layout.session("ab")) == "org/sessions/ab.json"
    assert rel(layout.request_file("REQ-1")) == "org/requests/REQ-1/request.json"
    assert rel(layout.approval("REQ-1", 1, "zhouzong")) == "org/requests/REQ-1/approvals/01-zhouzong.json"
    assert rel(layout.request_grant("REQ-1")) == "org/requests/REQ-1/grant"
    assert rel(layout.grant("G-1")) == "org/grants/G-1.json"
    assert rel(layout.revocations) == "org/revocations.jsonl"
    assert rel(layout.case_tags("DEMO 2026/1")) == "cases/DEMO_2026_1/tags.jsonl"
    assert rel(layout.case_searches("DEMO 2026/1")) == "cases/DEMO_2026_1/searches.jsonl"
    assert rel(layout.held_bundle("B-1")) == "exports/held/B-1.held"
    assert rel(layout.legacy_held_bundle("B-1")) == "exports/held/B-1.zip"
    assert [rel(p) for p in (layout.demo_marker, layout.demo_session, layout.demo_keys_dir,
                             layout.demo_reports_dir)] == \
        ["DEMO-ARCHIVE-NOT-FOR-REAL-DATA.txt", "DEMO-SESSION.txt", "demo-keys", "reports"]


def test_names_that_would_leave_the_root_are_refused(tmp_path):
    layout = Layout(tmp_path)
    for bad in ("../x", "a/b", "..", ".", "", "a\\b"):
        with pytest.raises(ConfigError):
            layout.grant(bad)
    with pytest.raises(ConfigError):
        layout.totp_state("../../etc/passwd")
    for bad in ("../archive.toml", "/etc/passwd", "batches/../../x", ""):
        with pytest.raises(IntegrityError):
            layout.resolve(bad)
    assert layout.resolve("batches/00000001/index.chk") == tmp_path / "batches" / "00000001" / "index.chk"
    assert layout.area_of(tmp_path.parent / "elsewhere") is None and not layout.contains(tmp_path)


def test_the_areas_enumerate_the_archive_for_a_backup():
    areas = Layout.areas()
    names = [a.name for a in areas]
    assert len(names) == len(set(names))
    assert set(names) >= {"archive.toml", "keys", "batches", "audit", "org", "cases", "exports", "staging", "locks"}
    for area in areas:
        assert area.holds and area.entries
        for entry in area.entries:
            assert entry.pattern == area.name or entry.pattern.startswith(area.name + "/"), entry
            assert entry.changes in {layout_module.WRITE_ONCE, layout_module.APPEND_ONLY, layout_module.REPLACED,
                                     SCRATCH}
    tracked = {a.name for a in Layout.tracked()}
    assert "staging" not in tracked and "locks" not in tracked and {"batches", "audit", "org"} <= tracked
    by_name = {a.name: a for a in areas}
    assert by_name["batches"].changes == layout_module.WRITE_ONCE
    assert by_name["audit"].changes == layout_module.APPEND_ONLY  # its lock file is scratch
    assert by_name["cases"].changes == layout_module.APPEND_ONLY
    assert by_name["keys"].changes == layout_module.MIXED and by_name["org"].changes == layout_module.MIXED
    assert {a.name for a in areas if a.demo_only} == {"DEMO-ARCHIVE-NOT-FOR-REAL-DATA.txt", "DEMO-SESSION.txt",
                                                      "demo-keys", "reports"}


def test_a_demo_style_archive_holds_no_undeclared_file(make_archive, monkeypatch):
    archive, keys = make_archive()
    layout = archive.layout
    ingest_frames(archive, messages=message_frame(40), events=event_frame(5), keys=keys, actor="tester",
                  sources=[{"name": "t.jsonl", "sha256": "0" * 64, "size": 1, "format": "jsonl"}], skipped=[])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo = demo_authority(archive, keys, now=NOW - timedelta(minutes=2), kdf_n=TEST_KDF_N)
    assert demo.key_dir == layout.demo_keys_dir
    mark_demo_archive(archive)
    session = demo_session(archive.root, now=NOW, keys=keys)
    TagStore(archive, case="DEMO case/1", actor=DEMO_OPERATOR).add(["m1"], "evidence", note="n", now=NOW)
    operator_key = unlock_person_key(archive, DEMO_OPERATOR, demo.operator_passphrase, key_dir=demo.key_dir)
    # the embedded key service's [breaker.categories] (what holds a bundle is its verdict, not the client's)
    monkeypatch.setattr(exportcheck, "policy_categories", lambda policy: {"greeting": ["hello"]})
    held = export_bundle(archive, grant=demo.grant_id, person=DEMO_OPERATOR, signer=operator_key,
                         passphrase=PASSPHRASE, session=session, out=Path(layout.root.parent / "bundle.zip"), now=NOW)
    assert held.held and held.path == layout.held_bundle(held.bundle_id)
    rotate(archive, unlock_archive(archive, PASSPHRASE), actor="tester", now=NOW)
    admin = DirectoryStore(archive).load().admins()[0].id
    admin_key = unlock_person_key(archive, admin, DEMO_ONLY_PASSPHRASE.format(person=admin), key_dir=demo.key_dir)
    revoke_grant(archive, demo.grant_id, signer=Signer(admin, admin_key), reason="test", now=NOW)

    files = sorted(p for p in layout.root.rglob("*") if p.is_file())
    undeclared = [layout.relative(p) for p in files if layout.entry_of(p) in (None, TEMPORARY)]
    assert not undeclared, f"files in no declared entry of Layout.areas(): {undeclared}"
    # everything this use writes is there, so the check above had something to check
    written = {layout.relative(p) for p in files}
    for path in (layout.config, layout.key_file, layout.signing_public_key, layout.index_key, layout.totp_key,
                 layout.manifest(1), layout.audit_log, layout.audit_checkpoints,
                 layout.audit_lock, layout.write_lock, layout.directory_version(1), layout.policy_text(1),
                 layout.policy_signature(1), layout.totp_state(DEMO_OPERATOR), layout.totp_lock,
                 layout.grant(demo.grant_id), layout.revocations, layout.case_tags("DEMO case/1"),
                 layout.case_lock("DEMO case/1"), layout.held_bundle(held.bundle_id), layout.demo_marker,
                 layout.demo_session, layout.demo_keys_dir / f"{DEMO_OPERATOR}.key"):
        assert layout.relative(path) in written, layout.relative(path)
    areas_used = {layout.area_of(p).name for p in files}  # type: ignore[union-attr]
    assert areas_used >= {"archive.toml", "keys", "batches", "audit", "org", "cases", "exports", "locks",
                          "DEMO-ARCHIVE-NOT-FOR-REAL-DATA.txt", "DEMO-SESSION.txt", "demo-keys"}
    # a format-2 batch: one file per chunk, the dedup index folded in (no index.chk)
    entry = archive.chunk_entries("messages")[0]
    assert entry.format == 2 and layout.relative(layout.batch(1).chunk_file(entry.kind, entry.partition, entry.chunk)) in written
    assert layout.relative(layout.batch(1).index) not in written
    assert any(w.startswith("keys/rewrapped/") for w in written)
    assert any(w.startswith("org/sessions/") for w in written)
    assert any("/approvals/" in w for w in written) and any(w.endswith("/grant") for w in written)


# --- (b) nobody else joins a path onto an archive root ----------------------------------------------

# Modules not yet converted to the Layout: {path: reason}. Only modules whose owners were busy with
# other work may stand here (access/, cli/, widgets/, reports/ but bundles.py); each entry must
# still offend, so a converted module has to leave the list. Empty: no such module joins today.
ALLOWLIST: dict[str, str] = {}
CONVERTED = ("investigator/vault/", "investigator/custody/", "investigator/authority/", "investigator/demo/run.py",
             "investigator/demo/cases.py", "investigator/demo/people.py", "investigator/reports/bundles.py")
LAYOUT_MODULE = "investigator/vault/layout.py"
# Names that hold an archive root by convention (``root``, ``archive_path`` ...), besides any ``<x>.root``.
ROOT_NAMES = frozenset({"root", "archive_root", "archive_path", "archive_dir"})


def _is_root(node: ast.expr) -> bool:
    """``x.root``, a root-named variable, or ``Path(...)`` / ``pathlib.Path(...)`` of one."""
    if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        func = node.func
        if (isinstance(func, ast.Name) and func.id == "Path") or \
                (isinstance(func, ast.Attribute) and func.attr == "Path"):
            return _is_root(node.args[0])
    if isinstance(node, ast.Attribute):
        return node.attr == "root"
    return isinstance(node, ast.Name) and node.id in ROOT_NAMES


def root_joins(source: str) -> list[int]:
    """Lines of ``source`` that join a path onto an archive root.

    A grep for ``.root /``, ``root / "``, ``archive.root /`` or ``opened.root /`` finds docstrings and
    comments too, and misses ``Path(archive.root) / ...``; so the source is parsed and these count:
    ``<root> / x``, ``<root>.joinpath(...)``, ``os.path.join(<root>, ...)`` and an f-string
    ``f"{<root>}/..."``, where ``<root>`` is any ``<expr>.root`` attribute, a variable named as in
    :data:`ROOT_NAMES`, or ``Path(...)`` of either. Strings, docstrings and comments never count.
    """
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and _is_root(node.left):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "joinpath" and _is_root(node.func.value):
                lines.append(node.lineno)
            elif node.func.attr == "join" and isinstance(node.func.value, ast.Attribute) \
                    and node.func.value.attr == "path" and node.args and _is_root(node.args[0]):
                lines.append(node.lineno)
        elif isinstance(node, ast.JoinedStr):
            for value, after in zip(node.values, node.values[1:]):
                if isinstance(value, ast.FormattedValue) and _is_root(value.value) \
                        and isinstance(after, ast.Constant) and str(after.value).startswith("/"):
                    lines.append(node.lineno)
    return sorted(set(lines))


def offenders(files: Mapping[str, str]) -> dict[str, list[int]]:
    """``{module path: lines}`` of every module but the layout that joins a path onto an archive root."""
    found = {path: root_joins(source) for path, source in sorted(files.items()) if path != LAYOUT_MODULE}
    return {path: lines for path, lines in found.items() if lines}


def _package_files() -> dict[str, str]:
    return {p.relative_to(PACKAGE.parent).as_posix(): p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py")}


def test_only_the_layout_joins_paths_onto_an_archive_root():
    found = offenders(_package_files())
    new = {path: lines for path, lines in found.items() if path not in ALLOWLIST}
    assert not new, ("join paths onto an archive root through investigator/vault/layout.py (archive.layout.<name>, "
                     "or Layout(root) for a folder not opened as an archive), not by hand: "
                     + "; ".join(f"{p} lines {ls}" for p, ls in new.items()))


def test_the_allowlist_is_exact_and_names_no_converted_module():
    found = offenders(_package_files())
    for path, reason in ALLOWLIST.items():
        assert (PACKAGE.parent / path).is_file(), f"ALLOWLIST: {path} does not exist"
        assert not path.startswith(CONVERTED), f"ALLOWLIST: {path} was converted to the Layout; it may not return"
        assert reason.strip(), f"ALLOWLIST: {path} has no reason"
        assert path in found, f"ALLOWLIST: {path} no longer joins paths onto an archive root; remove it"


def test_the_source_check_finds_planted_joins_and_ignores_text():
    planted = '''"""Docstring: archive.root / "org" and root / "keys" are only text here."""
import os
from pathlib import Path
# a comment: opened.root / "batches"
a = archive.root / "org"
b = Path(archive.root) / "keys" / "master.json"
c = root / "audit"
d = opened.root.joinpath("cases")
e = os.path.join(archive_path, "exports")
f = f"{archive.root}/staging"
g = tmp_path / "audit"
h = self.folder / "log.jsonl"
i = archive.layout.grant("G-1")
j = f"{archive.root}: not an archive"
'''
    assert root_joins(planted) == [5, 6, 7, 8, 9, 10]
    assert offenders({LAYOUT_MODULE: planted, "investigator/cli/x.py": planted}) == \
        {"investigator/cli/x.py": [5, 6, 7, 8, 9, 10]}
