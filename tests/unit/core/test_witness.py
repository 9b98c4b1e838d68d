"""Witnesses outside the archive (issue #13, item 3): the directory witness's protocol, the list in the signed
policy, what happens at checkpoint time when a witness is away or refuses, and what check_witnesses reports.

Real archives (low KDF cost), real signatures, real folders; no mocks."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from investigator.authority.directory import DirectoryStore, Signer
from investigator.authority.policy import Policy, PolicyStore, check_policy_text, default_policy_text
from investigator.errors import AuditError, ConfigError
from investigator.vault import merkle
from investigator.vault.checkpoint import Checkpoint, SignedNote, sign_checkpoint
from investigator.vault.witness import (DirectoryStore as WitnessFolder, Witness, check_witnesses, log_leaves,
                                        open_witness, proof_source)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def policy_with(witnesses: list[str]) -> str:
    return default_policy_text() + "\n[audit]\nwitnesses = " + json.dumps(witnesses) + "\n"


def install_witnesses(archive, keys, witnesses: list[str]) -> None:
    PolicyStore(archive).install(policy_with(witnesses), signer=Signer.archive(keys.signing),
                                 directory=DirectoryStore(archive).load(), now=NOW, note="witnesses")


def grow(archive, keys, n: int) -> dict:
    """``n`` more entries and a checkpoint (which goes to the archive's witnesses)."""
    for i in range(n):
        archive.audit.append("tester", "note", f"t{i}", {"i": i})
    return archive.audit.checkpoint(keys.signing, archive_id=archive.archive_id)


def note_of(line: dict) -> str:
    return line["note"]


def size_of(note: str) -> int:
    return Checkpoint.parse(SignedNote.parse(note).text).size


def actions(archive) -> list[str]:
    return [e.action for e in archive.audit.entries()]


# --- the protocol on one folder ---------------------------------------------------------------------------

def test_accepts_extends_holds_and_refuses_a_fork_keeping_it_as_evidence(make_archive, tmp_path):
    archive, keys = make_archive()
    folder = tmp_path / "witness"
    folder.mkdir()
    witness = open_witness(str(folder))
    audit = archive.audit
    first = grow(archive, keys, 2)
    answer = witness.submit(note_of(first), proof_source(audit, None, size_of(note_of(first))))
    assert answer.status == "accepted"
    # a later checkpoint: the proof from the held tree verifies, so it is accepted
    second = grow(archive, keys, 3)
    assert witness.submit(note_of(second), proof_source(audit, None, size_of(note_of(second)))).status == "accepted"
    # the same again: held, nothing written
    before = sorted(p.name for p in folder.rglob("*.json"))
    assert witness.submit(note_of(second), proof_source(audit, None, size_of(note_of(second)))).status == "held"
    assert witness.submit(note_of(first), proof_source(audit, None, size_of(note_of(first)))).status == "held"
    assert sorted(p.name for p in folder.rglob("*.json")) == before
    origin = Checkpoint.parse(SignedNote.parse(note_of(second)).text).origin
    assert [e.size for e in witness.held(origin)] == [size_of(note_of(first)), size_of(note_of(second))]
    entry = witness.latest(origin)
    assert entry is not None and entry.state_head is None  # the state-head slot (item 2 not built yet)

    # a fork: a tree of the archive key that does not extend the held one (entries rewritten)
    leaves = log_leaves(audit)
    forged = leaves[:3] + [merkle.leaf_hash(b"another history")] * (len(leaves) + 2 - 3)
    fork = sign_checkpoint(Checkpoint(origin, len(forged), merkle.root_of_leaf_hashes(forged), "2026-11-28T13:00:00Z"),
                           keys.signing)
    answer = witness.submit(fork, lambda m: merkle.consistency_proof_of_hashes(m, forged))
    assert answer.status == "conflict" and "does not verify" in answer.reason
    # a smaller tree it never held: a rollback or a fork
    small = sign_checkpoint(Checkpoint(origin, 2, merkle.root_of_leaf_hashes(forged[:2]), "2026-11-28T13:00:00Z"),
                            keys.signing)
    assert witness.submit(small, lambda m: []).status == "conflict"
    # both kept as evidence, nothing held was replaced
    assert sorted(e.size for e in witness.conflicts(origin)) == [2, len(forged)]
    assert [e.size for e in witness.held(origin)] == [size_of(note_of(first)), size_of(note_of(second))]
    report = check_witnesses(audit, archive.signing_keys().keys, archive.archive_id, [witness])
    assert not report.ok and sum("refused a checkpoint" in p for p in report.problems) == 2, report.problems


def test_a_witness_folder_never_replaces_an_entry(tmp_path):
    store = WitnessFolder(tmp_path)
    assert store.put_new("a/checkpoints/x.json", b"first") is True
    assert store.put_new("a/checkpoints/x.json", b"second") is False
    assert store.get("a/checkpoints/x.json") == b"first"
    assert not [p for p in (tmp_path / "a" / "checkpoints").iterdir() if p.name.startswith(".partial")]
    assert os.stat(tmp_path / "a" / "checkpoints" / "x.json").st_mode & 0o222 == 0  # written read-only


def test_a_witness_that_is_behind_is_caught_up_with_a_proof_from_the_log(make_archive, tmp_path):
    archive, keys = make_archive()
    folder = tmp_path / "witness"
    folder.mkdir()
    witness = open_witness(str(folder))
    first = grow(archive, keys, 2)
    witness.submit(note_of(first), proof_source(archive.audit, None, size_of(note_of(first))))
    grow(archive, keys, 2)
    grow(archive, keys, 1)  # two checkpoints the witness never saw
    last = grow(archive, keys, 4)
    record_proof = proof_source(archive.audit, None, size_of(note_of(last)))
    assert witness.submit(note_of(last), record_proof).status == "accepted"


# --- the list is signed state; what happens at checkpoint time --------------------------------------------

def test_the_witness_list_is_part_of_the_signed_policy():
    assert check_policy_text(policy_with(["/mnt/other-disk/witness", "s3://bucket/prefix"])) == []
    assert Policy.from_toml(policy_with(["/w"])).witnesses == ("/w",)
    problems = check_policy_text(policy_with(["relative/folder", "ftp://x", "s3://", "/a", "/a"]))
    assert any("must be an absolute folder" in p for p in problems)
    assert any("only folders and s3://" in p for p in problems)
    assert any("names no bucket" in p for p in problems)
    assert any("listed twice" in p for p in problems)
    assert check_policy_text(default_policy_text() + "\n[audit]\nwitness = []\n") != []


def test_every_checkpoint_goes_to_the_witnesses_of_the_signed_policy(make_archive, tmp_path):
    archive, keys = make_archive()
    one, two = tmp_path / "disk1", tmp_path / "disk2"
    one.mkdir(), two.mkdir()
    install_witnesses(archive, keys, [str(one), str(two)])
    last = grow(archive, keys, 3)
    for folder in (one, two):
        held = open_witness(str(folder)).held(Checkpoint.parse(SignedNote.parse(last["note"]).text).origin)
        assert held[-1].size == size_of(last["note"]) == len(log_leaves(archive.audit))
    # archive.toml is not where the list lives: editing it changes nothing
    toml = archive.root / "archive.toml"
    toml.write_text(toml.read_text() + "\n# witnesses = []\n")
    assert "witnesses" not in archive.config.__dict__


def test_an_unreachable_witness_is_audited_the_decision_stands_and_the_next_checkpoint_catches_it_up(
        make_archive, tmp_path):
    archive, keys = make_archive()
    folder = tmp_path / "other-disk"  # not mounted (absent): the witness cannot be reached
    install_witnesses(archive, keys, [str(folder)])
    line = grow(archive, keys, 2)
    assert line is not None and "witness.failed" in actions(archive)
    failed = [e for e in archive.audit.entries() if e.action == "witness.failed"][-1]
    assert failed.outcome == "error" and failed.target == str(folder) and "not a folder" in failed.details["reason"]
    folder.mkdir()  # mounted again
    report = check_witnesses(archive.audit, archive.signing_keys().keys, archive.archive_id, [open_witness(str(folder))])
    assert report.ok and any("lacks the archive's newest" in w for w in report.warnings)  # reported, not ignored
    last = grow(archive, keys, 1)  # covers the witness.failed entries too
    report = check_witnesses(archive.audit, archive.signing_keys().keys, archive.archive_id, [open_witness(str(folder))])
    assert report.ok and not report.warnings, report
    assert open_witness(str(folder)).latest(Checkpoint.parse(SignedNote.parse(last["note"]).text).origin).size \
        == size_of(last["note"])
    assert archive.audit.verify(archive.signing_keys(), archive_id=archive.archive_id).ok


def test_a_witness_behind_is_reported_as_missing_entries(make_archive, tmp_path):
    archive, keys = make_archive()
    folder = tmp_path / "w"
    folder.mkdir()
    install_witnesses(archive, keys, [str(folder)])
    grow(archive, keys, 1)
    folder.rename(tmp_path / "away")
    grow(archive, keys, 1)
    grow(archive, keys, 1)
    (tmp_path / "away").rename(folder)
    report = check_witnesses(archive.audit, archive.signing_keys().keys, archive.archive_id, [Witness(
        WitnessFolder(folder))])
    assert report.ok and report.counts["missing_entries"] == 2, report
    assert any("lacks the archive's newest 2 checkpoint(s)" in w for w in report.warnings)


def test_a_witness_that_refuses_stops_the_caller_audited(make_archive, tmp_path):
    archive, keys = make_archive()
    folder = tmp_path / "w"
    folder.mkdir()
    install_witnesses(archive, keys, [str(folder)])
    grow(archive, keys, 2)
    saved = {p: p.read_bytes() for p in (archive.root / "audit").iterdir() if p.suffix == ".jsonl"}
    grow(archive, keys, 3)
    for path, data in saved.items():  # the archive's log rolled back; the witness holds the larger tree
        path.write_bytes(data)
    with pytest.raises(AuditError, match="a witness refused"):
        grow(archive, keys, 1)
    refused = [e for e in archive.audit.entries() if e.action == "witness.refused"]
    assert refused and refused[-1].outcome == "error"


def test_a_planted_witness_entry_not_signed_by_the_archive_fails(make_archive, tmp_path):
    archive, keys = make_archive()
    _other, other_keys = make_archive("other")
    folder = tmp_path / "w"
    folder.mkdir()
    install_witnesses(archive, keys, [str(folder)])
    line = grow(archive, keys, 1)
    cp = Checkpoint.parse(SignedNote.parse(line["note"]).text)
    forged = sign_checkpoint(Checkpoint(cp.origin, cp.size + 5, bytes(32), cp.time), other_keys.signing)
    Witness(WitnessFolder(folder)).submit(forged, lambda m: [])  # refused: no valid proof -> conflicts/
    name = next((folder / archive.archive_id / "conflicts").iterdir())
    target = folder / archive.archive_id / "checkpoints" / (name.name[:20 + 1 + 64] + ".json")  # size-root.json
    target.write_bytes(name.read_bytes())
    report = check_witnesses(archive.audit, archive.signing_keys().keys, archive.archive_id,
                             [open_witness(str(folder))])
    assert any("not signed by the archive's key" in p for p in report.problems), report.problems


def test_an_unknown_witness_scheme_is_a_config_error():
    with pytest.raises(ConfigError):
        open_witness("ftp://host/x")
    assert isinstance(open_witness("/tmp/x").store, WitnessFolder)
    assert Path(open_witness("~/w").location).is_absolute()


def test_a_folder_witness_entry_in_a_new_subfolder_survives_a_crash(tmp_path: Path, synced_dirs: list[Path]) -> None:
    # the entry's name is fsynced in its folder, and each new subfolder's name in its parent, top-down
    store = WitnessFolder(tmp_path)
    assert store.put_new("archive-1/checkpoints/000001.json", b"{}")
    assert synced_dirs == [tmp_path, tmp_path / "archive-1", tmp_path / "archive-1" / "checkpoints"]
    assert not store.put_new("archive-1/checkpoints/000001.json", b"{}")  # never replaced
