"""The archive's key chain: signed key transitions rooted in the genesis key, and the verifiers that use it.

A migration between custodies needs a PKCS#11 token or OpenBao (tests/unit/custody/test_migration.py);
here a transition is appended by hand with in-memory keys, which is all the chain itself sees.
"""

from __future__ import annotations

import json

import pytest

from investigator import _crypto
from investigator.errors import IntegrityError
from investigator.schema import canonical_json
from investigator.vault.ingest import ingest_frames
from investigator.vault.keychain import KeyChain, record_line, transition_body
from investigator.vault.layout import Layout
from investigator.vault.manifest import Manifest
from investigator.vault.store import Archive
from investigator.vault.verify import verify_archive
from support import message_frame


def _record(chain: KeyChain, old: _crypto.SigningKey, new: _crypto.SigningKey, *, custody=None, **overrides):
    body = transition_body(archive_id=chain.archive_id, seq=len(chain.records) + 1, prev=chain.next_prev,
                           old=old.public, new=new.public, old_backend="file", new_backend="file",
                           custody=custody or {"backend": "file"}, time="2026-11-29T10:00:00Z", reason="test")
    body.update(overrides)
    signed = canonical_json(body)
    return {"body": body, "signatures": {"old": old.sign(signed), "new": new.sign(signed)}}


def _append(path, record) -> None:
    with open(path, "ab") as out:
        out.write(record_line(record))


@pytest.fixture
def keys3():
    return [_crypto.SigningKey.generate() for _ in range(3)]


def test_a_chain_of_two_transitions_accepts_every_key_and_names_the_current(tmp_path, keys3):
    path = tmp_path / "transitions.jsonl"
    genesis, second, third = keys3
    chain = KeyChain.load(path, genesis=genesis.public, archive_id="a")
    assert chain.keys == (genesis.public,) and chain.custody is None
    _append(path, _record(chain, genesis, second))
    chain = KeyChain.load(path, genesis=genesis.public, archive_id="a")
    _append(path, _record(chain, second, third, custody={"backend": "openbao", "generation": "3"}))
    chain = KeyChain.load(path, genesis=genesis.public, archive_id="a")
    assert [k.key_id for k in chain.keys] == [k.public.key_id for k in keys3]
    assert chain.current == third.public and chain.genesis == genesis.public
    assert chain.fingerprint == genesis.public.key_id  # what a later pin by fingerprint names
    assert chain.custody == {"backend": "openbao", "generation": "3"}
    for key in keys3:
        assert chain.verify(key.sign(b"data"), b"data") == key.public.key_id
        assert chain.accepts(key.public.key_id)
    stranger = _crypto.SigningKey.generate()
    assert not chain.is_valid(stranger.sign(b"data"), b"data")
    with pytest.raises(IntegrityError, match="any of the archive's keys"):
        chain.verify(stranger.sign(b"data"), b"data")
    with pytest.raises(IntegrityError, match="not one of the archive's keys"):
        chain.verify(stranger.sign(b"data"), b"data", key_id=stranger.public.key_id)


def _broken(tmp_path, keys3, damage):
    """A two-record chain with ``damage(records) -> lines`` applied; the IntegrityError it raises."""
    path = tmp_path / f"{damage.__name__}.jsonl"
    genesis, second, third = keys3
    chain = KeyChain.load(path, genesis=genesis.public, archive_id="a")
    first = _record(chain, genesis, second)
    _append(path, first)
    chain = KeyChain.load(path, genesis=genesis.public, archive_id="a")
    records = [first, _record(chain, second, third)]
    path.write_bytes(b"".join(damage(records)))
    with pytest.raises(IntegrityError) as caught:
        KeyChain.load(path, genesis=genesis.public, archive_id="a")
    return str(caught.value)


def test_a_broken_chain_is_an_integrity_error_naming_the_file_and_record(tmp_path, keys3):
    def bad_signature(records):
        records[1]["signatures"]["new"] = records[1]["signatures"]["old"]
        return [record_line(r) for r in records]

    def edited(records):
        records[1]["body"]["reason"] = "edited afterwards"
        return [record_line(r) for r in records]

    def gap(records):
        return [record_line(records[1])]

    def torn(records):
        return [record_line(records[0]), record_line(records[1])[:-10]]

    message = _broken(tmp_path, keys3, bad_signature)
    assert "keys/transitions.jsonl record 2" in message and "new key's signature" in message
    assert "keys/transitions.jsonl record 2" in _broken(tmp_path, keys3, edited)
    assert "record 1" in _broken(tmp_path, keys3, gap)  # the second record alone: numbered 2, expected 1
    assert "incomplete" in _broken(tmp_path, keys3, torn)


def test_a_chain_that_does_not_start_at_the_genesis_key_has_an_unknown_root(tmp_path, keys3):
    path = tmp_path / "transitions.jsonl"
    genesis, second, third = keys3
    other = KeyChain.of(second.public, archive_id="a")
    _append(path, _record(other, second, third))  # well signed, but rooted in a key archive.toml never named
    with pytest.raises(IntegrityError, match="record 1.*unknown root"):
        KeyChain.load(path, genesis=genesis.public, archive_id="a")
    with pytest.raises(IntegrityError, match="another archive"):
        KeyChain.load(path, genesis=second.public, archive_id="b")


def test_after_a_transition_old_and_new_signatures_verify_everywhere_and_the_custody_switches(make_archive):
    """Manifests, checkpoints and grants-style documents signed before (genesis) and after (new key) both verify."""
    archive, keys = make_archive()
    ingest_frames(archive, messages=message_frame(20), events=None, keys=keys, actor="t", sources=[], skipped=[])
    chain = archive.signing_keys()
    assert chain.keys == (archive.signing_public,)
    new = _crypto.SigningKey.generate()
    generation = {"backend": "file", "generation": "2"}
    record = _record(chain, keys.signing, new, custody=generation)
    _append(archive.layout.transitions, record)

    reopened = Archive.open(archive.root)
    assert reopened.config.custody == generation  # the last transition's [custody] is the one in force
    assert reopened.layout.generation == "2"
    assert reopened.layout.relative(reopened.layout.index_key) == "keys/custody/2/index-key.json"
    assert reopened.signing_public == new.public  # signs with the new key from now on
    assert reopened.signing_keys().genesis.b64() == reopened.config.signing_public_key  # genesis kept
    reopened.audit.checkpoint(new, archive_id=archive.archive_id)
    manifest = Manifest.load(reopened.layout.manifest(1))
    assert manifest.key_id == keys.signing.public.key_id  # signed by the genesis key
    manifest.verify_signature(reopened.signing_keys())
    assert len(reopened.manifests()) == 1
    report = verify_archive(reopened, keys=None)
    assert report.ok, report.problems
    assert reopened.audit.verify(reopened.signing_keys().by_id()).ok

    # a record edited after the fact stops the archive from opening, naming the file and record
    lines = archive.layout.transitions.read_bytes().splitlines()
    tampered = json.loads(lines[0])
    tampered["body"]["custody"] = {"backend": "openbao", "generation": "2"}
    archive.layout.transitions.write_bytes(record_line(tampered))
    with pytest.raises(IntegrityError, match="keys/transitions.jsonl record 1"):
        Archive.open(archive.root)


def test_every_generation_path_is_declared(tmp_path):
    layout = Layout(tmp_path, "7")
    for path in (layout.key_file, layout.index_key, layout.totp_key, layout.rewrapped_key("messages", "2026-11-18"),
                 layout.consent_key("CONSENT-1"), layout.transitions, layout.migration_journal):
        entry = layout.entry_of(path)
        assert entry is not None and entry.pattern != "**/.*.tmp", layout.relative(path)
    assert layout.relative(layout.rewrapped_key("messages", "2026-11-18")) == \
        "keys/custody/7/rewrapped/messages/2026-11-18.json"
    assert Layout(tmp_path, "1") == Layout(tmp_path)  # the first generation is keys/ itself
