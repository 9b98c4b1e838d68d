"""The audit log as a transparency log, attacked: `investigator audit verify` and `open` on copies of the demo archive.

The attacker can write the archive's files but holds no archive key. Each row of the first table tampers with
its own copy and must end in exit 4 with its specific reason and the first bad position; the untouched copy
passes. Those copies leave out ``batches/`` (63 MB of chunks that `audit verify` never reads). The second
table attacks what `open` relies on (issue #13, item 5): each copy links the batch files (never written) and
copies the rest; `open` must refuse with the specific reason, audited, and the untouched copy opens.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from investigator.authority.identity import unlock_person_key
from investigator.cli import main
from investigator.demo.cases import open_complaint_case
from investigator.demo.people import DEMO_ONLY_PASSPHRASE
from investigator.errors import IntegrityError
from investigator.vault import merkle
from investigator.vault.audited_state import HostRecord
from investigator.vault.checkpoint import Checkpoint, CheckpointRecord, origin_of, sign_checkpoint
from investigator.vault.store import Archive
from investigator.vault.tlog import entry_hash

pytestmark = pytest.mark.slow

PERSON = "sunli"


# --- what an attacker with write access does -----------------------------------------------------------------

def _entries(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "audit" / "log.jsonl").read_bytes().splitlines()]


def _checkpoint_lines(root: Path) -> list[bytes]:
    return (root / "audit" / "checkpoints.jsonl").read_bytes().splitlines(keepends=True)


def _sizes(root: Path) -> list[int]:
    return Archive.open(root).audit.checkpoint_sizes()


def _rewrite_log(root: Path, entries: list[dict], sizes: list[int]) -> None:
    """Renumber, relink and rehash ``entries`` (the chain recomputed), with checkpoint counts fitting ``sizes``."""
    prev = "0" * 64
    for position, entry in enumerate(entries, start=1):
        entry.update(seq=position, prev=prev, checkpoints=sum(1 for s in sizes if s <= position - 1))
        entry["hash"] = prev = entry_hash({k: v for k, v in entry.items() if k != "hash"})
    (root / "audit" / "log.jsonl").write_bytes(b"".join((json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n")
                                                        .encode() for e in entries))


def _forge_checkpoints(root: Path, sizes: list[int], signer) -> None:
    """A complete, well-formed checkpoint file over the log as it now is, signed by ``signer``."""
    archive_id = Archive.open(root).archive_id
    lines = (root / "audit" / "log.jsonl").read_bytes().splitlines(keepends=True)
    hashes = [json.loads(line)["hash"] for line in lines]
    leaves = [merkle.leaf_hash(bytes.fromhex(h)) for h in hashes]
    out, prev = [], None
    for index, size in enumerate(sizes, start=1):
        edge = merkle.CompactRange.of(leaves[:size])
        note = sign_checkpoint(Checkpoint(origin_of(archive_id), size, edge.root(), "2026-11-29T00:00:00.000000Z"),
                               signer)
        proof = merkle.consistency_proof_of_hashes(prev, leaves[:size]) if prev is not None else []
        out.append(CheckpointRecord(index, note, signer.public.key_id, prev, tuple(proof), tuple(edge.hashes),
                                    hashes[size - 1], sum(len(line) for line in lines[:size])).line())
        prev = size
    (root / "audit" / "checkpoints.jsonl").write_bytes(b"".join(out))


def _remove_of_person(root: Path, count: int) -> tuple[int, list[int]]:
    """Remove ``count`` of PERSON's entries and recompute the chain.

    Returns the first removed position and the checkpoint sizes mapped onto the shortened log (what the
    attacker's checkpoint counts in the entries fit).
    """
    entries = _entries(root)
    theirs = [e["seq"] for e in entries if e["actor"] == PERSON][:count]
    assert len(theirs) == count
    sizes = [s - sum(1 for t in theirs if t <= s) for s in _sizes(root)]
    _rewrite_log(root, [e for e in entries if e["seq"] not in theirs], sizes)
    return theirs[0], sizes


def _person_key(demo_archive: Path):
    return unlock_person_key(Archive.open(demo_archive), PERSON, DEMO_ONLY_PASSPHRASE.format(person=PERSON),
                             key_dir=demo_archive / "demo-keys")


# --- the table ---------------------------------------------------------------------------------------------------

def delete_checkpoint_file(root, demo):
    (root / "audit" / "checkpoints.jsonl").unlink()
    return "checkpoints.jsonl: missing or empty while the log holds", None


def remove_18_entries_of_a_person(root, demo):
    first, _ = _remove_of_person(root, 18)
    return "are not the ones this checkpoint signed (edited, removed, inserted or reordered)", first


def remove_18_and_resign_with_a_persons_key(root, demo):
    _, sizes = _remove_of_person(root, 18)
    _forge_checkpoints(root, sizes, _person_key(demo))  # a consistent forgery: only the signer gives it away
    return "not signed by the archive's key (it carries 1 signature(s) by other keys, ignored)", None


def truncate_the_covered_log(root, demo):
    entries = _entries(root)
    keep = _sizes(root)[-1] - 20
    _rewrite_log(root, entries[:keep], _sizes(root))
    return f"the log holds {keep} (entries removed or the log truncated)", keep + 1


def reorder_two_covered_entries(root, demo):
    entries = _entries(root)
    i, j = 30, 75
    entries[i], entries[j] = entries[j], entries[i]
    _rewrite_log(root, entries, _sizes(root))
    return "are not the ones this checkpoint signed", i + 1


def reorder_checkpoint_lines(root, demo):
    lines = _checkpoint_lines(root)
    lines[40], lines[41] = lines[41], lines[40]
    (root / "audit" / "checkpoints.jsonl").write_bytes(b"".join(lines))
    return "is checkpoint 42 of the file, found at line 41", None


def shorten_checkpoint_file(root, demo):
    lines = _checkpoint_lines(root)
    (root / "audit" / "checkpoints.jsonl").write_bytes(b"".join(lines[:-10]))
    return "checkpoint file shortened or rolled back", None


def edit_one_entry(root, demo):
    path = root / "audit" / "log.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    entry = json.loads(lines[49])
    entry["outcome"] = "denied"
    lines[49] = (json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n").encode()
    path.write_bytes(b"".join(lines))
    return "log.jsonl, line 50: entry hash does not match its content (entry edited)", 50


ATTACKS: list[Callable] = [delete_checkpoint_file, remove_18_entries_of_a_person,
                           remove_18_and_resign_with_a_persons_key, truncate_the_covered_log,
                           reorder_two_covered_entries, reorder_checkpoint_lines, shorten_checkpoint_file,
                           edit_one_entry]


def _copy(demo_archive: Path, target: Path) -> Path:
    shutil.copytree(demo_archive, target, ignore=shutil.ignore_patterns("batches"))
    return target


def _verify(root: Path, record_dir: Path, *extra: str):
    return CliRunner().invoke(main, ["audit", "verify", str(root), "--verified-dir", str(record_dir), *extra])


def test_the_untouched_copy_passes(demo_archive, tmp_path):
    root = _copy(demo_archive, tmp_path / "copy")
    result = _verify(root, tmp_path / "verified")
    assert result.exit_code == 0, result.output
    assert "intact" in result.output and "checkpoints (last covers entry" in result.output
    assert HostRecord(tmp_path / "verified").path(Archive.open(root)).exists()
    again = _verify(root, tmp_path / "verified")  # from this host's record: only what was appended since
    assert again.exit_code == 0 and "which this host verified on" in again.output, again.output


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.__name__)
def test_each_attack_is_caught_with_its_reason_and_first_bad_position(attack, demo_archive, tmp_path):
    root = _copy(demo_archive, tmp_path / "copy")
    reason, first_entry = attack(root, demo_archive)
    result = _verify(root, tmp_path / "verified")
    assert result.exit_code == 4, result.output
    assert reason in result.output, result.output
    assert "Traceback" not in result.output
    summary = result.output.strip().splitlines()[-1]
    assert re.search(r"first bad position: (log|checkpoints)\.jsonl line \d+", summary), summary
    if first_entry is not None:
        shown = int(re.search(r"log\.jsonl line (\d+)", summary).group(1))
        assert shown <= first_entry, summary  # never after the first entry the attacker touched
        match = re.search(r"the first change is among entries (\d+)\.\.(\d+)", result.output)
        if match:
            assert int(match.group(1)) <= first_entry <= int(match.group(2)), result.output


def test_a_persons_key_never_signs_a_checkpoint_even_over_an_untouched_log(demo_archive, tmp_path):
    """Before: `audit verify` accepted checkpoints signed by any enrolled person's key."""
    root = _copy(demo_archive, tmp_path / "copy")
    _forge_checkpoints(root, _sizes(root), _person_key(demo_archive))
    result = _verify(root, tmp_path / "verified", "--json")
    assert result.exit_code == 4
    report = json.loads(result.stdout)
    assert report["first_bad_checkpoint"] == 1
    assert all("not signed by the archive's key" in p for p in report["problems"][:1]), report["problems"]


def test_rolling_back_log_and_checkpoints_together_is_caught_by_this_hosts_record(demo_archive, tmp_path):
    root = _copy(demo_archive, tmp_path / "copy")
    record = tmp_path / "verified"
    assert _verify(root, record).exit_code == 0  # this host has seen the whole log
    sizes = _sizes(root)
    cut = sizes[49]  # back to checkpoint 50: an earlier state, consistent in itself
    lines = (root / "audit" / "log.jsonl").read_bytes().splitlines(keepends=True)
    (root / "audit" / "log.jsonl").write_bytes(b"".join(lines[:cut]))
    (root / "audit" / "checkpoints.jsonl").write_bytes(b"".join(_checkpoint_lines(root)[:50]))
    assert _verify(root, tmp_path / "elsewhere").exit_code == 0  # a host that never saw it cannot tell
    result = _verify(root, record)
    assert result.exit_code == 4, result.output
    assert f"holds 50 checkpoints; this host verified {len(sizes)}" in result.output
    assert f"holds {cut} entries; this host verified {len(lines)}" in result.output


def test_the_verified_dir_must_lie_outside_the_archive(demo_archive, tmp_path):
    root = _copy(demo_archive, tmp_path / "copy")
    result = _verify(root, root / "audit" / "verified")
    assert result.exit_code != 0 and "inside the archive" in result.output


# --- `open` fails closed (issue #13, item 5) --------------------------------------------------------------------

def _copy_for_open(demo_archive: Path, target: Path) -> Path:
    """A full copy whose batch files are hard links (open only reads them; the attacks only delete them)."""
    def link_batches(src: str, dst: str) -> None:
        if "batches" in Path(src).relative_to(demo_archive).parts:
            Path(dst).hardlink_to(src)
        else:
            shutil.copy2(src, dst)

    shutil.copytree(demo_archive, target, copy_function=link_batches)
    return target


def _last_ingest(root: Path) -> dict:
    return [e for e in _entries(root) if e["action"] == "ingest"][-1]


def open_without_checkpoint_file(root, demo):
    (root / "audit" / "checkpoints.jsonl").unlink()
    return "checkpoints.jsonl: missing or empty while the log holds"


def open_after_removing_18_entries(root, demo):
    _remove_of_person(root, 18)
    return "are not the ones this checkpoint signed"


def open_with_checkpoints_resigned_by_a_person(root, demo):
    _, sizes = _remove_of_person(root, 18)
    _forge_checkpoints(root, sizes, _person_key(demo))
    return "not signed by the archive's key"


def open_after_deleting_the_last_batch_its_entry_and_later_checkpoints(root, demo):
    """A consistent earlier state: only this host's record of what it verified tells."""
    last = _last_ingest(root)
    shutil.rmtree(root / "batches" / f"{last['details']['batch']:08d}")
    keep = last["seq"] - 1
    lines = (root / "audit" / "log.jsonl").read_bytes().splitlines(keepends=True)
    (root / "audit" / "log.jsonl").write_bytes(b"".join(lines[:keep]))
    checkpoints = [line for line, size in zip(_checkpoint_lines(root), _sizes(root)) if size <= keep]
    (root / "audit" / "checkpoints.jsonl").write_bytes(b"".join(checkpoints))
    return "(checkpoints removed or rolled back)"  # and the log holds fewer entries than this host verified


def open_after_deleting_only_the_last_batch(root, demo):
    last = _last_ingest(root)
    shutil.rmtree(root / "batches" / f"{last['details']['batch']:08d}")
    return (f"batches/{last['details']['batch']:08d}: recorded by the ingest entry at audit/log.jsonl line "
            f"{last['seq']}, but no committed batch has that manifest")


OPEN_ATTACKS: list[Callable] = [open_without_checkpoint_file, open_after_removing_18_entries,
                                open_with_checkpoints_resigned_by_a_person,
                                open_after_deleting_the_last_batch_its_entry_and_later_checkpoints,
                                open_after_deleting_only_the_last_batch]


def test_the_untouched_copy_opens(demo_archive, tmp_path, verified_dir):
    root = _copy_for_open(demo_archive, tmp_path / "copy")
    case = open_complaint_case(root)
    assert case.messages(progress=False).height > 0
    assert HostRecord(verified_dir).path(Archive.open(root)).exists()  # the next open resumes from here
    assert open_complaint_case(root).messages(progress=False).height == case.messages(progress=False).height


@pytest.mark.parametrize("attack", OPEN_ATTACKS, ids=lambda a: a.__name__)
def test_open_refuses_an_archive_whose_audited_state_does_not_check_out(attack, demo_archive, tmp_path, verified_dir):
    root = _copy_for_open(demo_archive, tmp_path / "copy")
    assert _verify(root, verified_dir).exit_code == 0  # this host has verified the untouched copy
    reason = attack(root, demo_archive)
    with pytest.raises(IntegrityError) as refused:
        open_complaint_case(root)
    assert reason in str(refused.value), str(refused.value)
    assert "refusing to open" in str(refused.value)
    denied = _entries(root)[-1]  # audited, with the reason
    assert (denied["action"], denied["outcome"], denied["details"]["rule"]) == \
        ("case.open", "denied", "archive.audited_state"), denied
    assert reason in denied["details"]["reason"]


def test_a_copy_in_another_folder_is_another_place_a_rollback_in_place_is_caught(demo_archive, tmp_path,
                                                                                 verified_dir):
    """The host record is per archive id and folder: copies evolve apart legitimately; the same place may not go back."""
    first = _copy(demo_archive, tmp_path / "first")
    second = _copy(demo_archive, tmp_path / "second")
    assert _verify(first, verified_dir).exit_code == 0
    Archive.open(first).audit.append("tester", "test.entry")  # the copies now differ (not yet checkpointed)
    assert _verify(first, verified_dir).exit_code == 0
    assert _verify(second, verified_dir).exit_code == 0  # another place: its own record, verified in full
    lines = (first / "audit" / "log.jsonl").read_bytes().splitlines(keepends=True)
    (first / "audit" / "log.jsonl").write_bytes(b"".join(lines[:-1]))  # the uncovered tail, removed in place
    result = _verify(first, verified_dir)
    assert result.exit_code == 4 and "this host verified" in result.output, result.output
