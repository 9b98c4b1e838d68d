"""Check a target (restic's ``check`` is the anchor): structure always, every object's hash with read-data.

    >>> result = check_target(DirectoryTarget(Path("/mnt/cold")), read_data=1.0)   # doctest: +SKIP
    >>> result.ok, result.problems                                                  # doctest: +SKIP

Structure: every snapshot manifest parses, is signed by a key of the archive's chain (from the
genesis key it names and the snapshot's own ``keys/transitions.jsonl``; with ``pin`` that genesis
key must have the pinned fingerprint), all name the same archive and genesis key, their ``seq``
runs 1, 2, 3 ... and each ``parent`` is the SHA-256 of the manifest before it; every object a
snapshot names exists with the expected size; sealing records verify. With ``read_data`` (a
fraction: 1.0 for ``--read-data``, 0.1 for ``--read-data-subset 10%``) that share of the objects is
downloaded and hashed. Each problem names the object (and the archive file it holds). Nothing is
decrypted: a check needs no key.
"""

from __future__ import annotations

import random

from investigator import _crypto
from investigator.backup.retention import load_tombstones
from investigator.backup.run import SEALED_OVERHEAD, load_snapshots
from investigator.backup.seal import SEALS_PREFIX, verify_seal
from investigator.backup.snapshot import GENESIS, Snapshot, snapshot_chain
from investigator.backup.target import OBJECTS, Target, TargetError, TargetUnreachable, object_key
from investigator.errors import IntegrityError
from investigator.schema import canonical_json
from investigator.verification import Verification
from investigator.vault.verify import key_fingerprint

def check_target(target: Target, *, read_data: float = 0.0, pin: str | None = None,
                 rng: random.Random | None = None) -> Verification:
    """Check ``target``; never raises for what it finds (see the module docstring)."""
    result = Verification(f"backup {target.url}")
    try:
        snapshots, bad = load_snapshots(target)
        objects = dict(target.list(f"{OBJECTS}/"))
    except TargetError as exc:
        result.problem(str(exc))
        return result
    for key in bad:
        result.problem(f"{key}: not a valid snapshot manifest")
    if not snapshots and not bad:
        result.problem(f"{target.url}: no snapshot found")
    tombstones = load_tombstones(target)
    first = snapshots[0] if snapshots else None
    previous: Snapshot | None = None
    wanted: dict[str, tuple[int, str]] = {}  # object key -> (size, archive path)
    for snap in snapshots:
        where = snap.key
        result.count("snapshots")
        if first is not None and (snap.body["archive_id"], snap.body["genesis_key"]) != (
                first.body["archive_id"], first.body["genesis_key"]):
            result.problem(f"{where}: another archive or genesis key than {first.key}")
        expected_parent = previous.digest if previous else GENESIS
        expected_seq = previous.seq + 1 if previous else 1
        while snap.seq > expected_seq and expected_seq in tombstones:  # forgotten by retention: a signed tombstone
            tomb = tombstones[expected_seq]
            try:
                body = tomb["body"]
                if body.get("parent") != expected_parent or body.get("archive_id") != snap.body["archive_id"]:
                    raise IntegrityError("does not continue the chain", path=f"forgotten/seq {expected_seq}")
                snapshot_chain(target, snap).verify(str(tomb["signature"]), canonical_json(body),
                                                    what=f"forgotten/seq {expected_seq}", key_id=str(tomb["key_id"]))
            except (IntegrityError, KeyError, TypeError) as exc:
                result.problem(f"tombstone of snapshot seq {expected_seq}: does not verify ({exc})")
                break
            result.count("forgotten")
            expected_parent, expected_seq = str(body["digest"]), expected_seq + 1
        if snap.seq != expected_seq:
            result.problem(f"{where}: seq {snap.seq}, expected {expected_seq} (a snapshot missing or inserted)")
        if snap.parent != expected_parent:
            result.problem(f"{where}: parent {snap.parent[:16]}... is not the previous manifest's SHA-256 "
                           f"{expected_parent[:16]}... (chain broken)")
        try:
            chain = snapshot_chain(target, snap)
            if pin is not None and key_fingerprint(chain.keys[0]) != pin:
                result.problem(f"{where}: the archive's genesis key is not the pinned one")
            snap.verify_signature(chain, what=where)
        except IntegrityError as exc:
            result.problem(f"{where}: signature does not verify ({exc})")
        for entry in snap.files:
            key = object_key(entry.object)
            size = entry.size + (SEALED_OVERHEAD if entry.sealed else 0)
            wanted.setdefault(key, (size, entry.path))
        previous = snap
    for key, (size, path) in sorted(wanted.items()):
        result.count("objects")
        if key not in objects:
            result.problem(f"object {key} ({path}): missing")
        elif objects[key] != size:
            result.problem(f"object {key} ({path}): {objects[key]} bytes, expected {size}")
    stray = sorted(set(objects) - set(wanted))
    if stray:
        result.warn(f"{len(stray)} object(s) no snapshot names (an interrupted run), e.g. {stray[0]}")
    if read_data > 0:
        keys = sorted(k for k in wanted if k in objects)
        if read_data < 1.0:
            picker = rng or random.SystemRandom()
            keys = sorted(picker.sample(keys, max(1, round(len(keys) * read_data)))) if keys else []
        for number, key in enumerate(keys):
            result.count("objects_read")
            try:
                data = target.get(key)
            except TargetUnreachable as exc:  # each further read would wait out the same timeouts: stop here
                result.problem(f"object {key} ({wanted[key][1]}): {exc}; the target stopped answering, "
                               f"{len(keys) - number - 1} more object(s) not read: run the check again")
                return result
            except TargetError as exc:
                result.problem(f"object {key} ({wanted[key][1]}): {exc}")
                continue
            got = _crypto.sha256_hex(data)
            if got != key.rsplit("/", 1)[1]:
                result.problem(f"object {key} ({wanted[key][1]}): content hash {got}, expected the name's "
                               f"(damaged: {len(data)} bytes read, {wanted[key][0]} expected)")
    by_id = {s.id: s for s in snapshots}
    try:
        seals = list(target.list(f"{SEALS_PREFIX}/"))
    except TargetError as exc:
        result.problem(str(exc))
        return result
    for key, _size in seals:
        result.count("seals")
        for problem in verify_seal(target, key, by_id):
            result.problem(problem)
    if result.ok:
        result.check(f"{result.counts.get('snapshots', 0)} snapshot(s), {result.counts.get('objects', 0)} objects"
                     + (f", {result.counts.get('objects_read', 0)} read and hashed" if read_data else ""))
    return result
