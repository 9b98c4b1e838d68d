"""The policy-checked loader: exactly the granted window, scope and fields; every refusal audited."""

import re
from datetime import datetime, timedelta

import polars as pl
import pytest

from investigator import errors
from investigator.access.keyservice import ChunkRef, EmbeddedKeyService

from .conftest import EDGE_DAY, SHANGHAI


def test_window_edges_and_only_overlapping_chunks(world):
    grant = world.grant(start=EDGE_DAY, end=EDGE_DAY + timedelta(hours=1))
    service = EmbeddedKeyService(world.archive, world.keys)
    case = world.open(grant, key_service=service)
    frame = case.messages()
    edge = frame.filter(pl.col("source") == "edge")["message_id"].to_list()
    assert sorted(edge) == ["edge-inside", "edge-start"]  # start is in, end is out
    assert frame["ts"].min() >= EDGE_DAY and frame["ts"].max() < EDGE_DAY + timedelta(hours=1)
    # only the one chunk hour overlaps: 10:00 of 2026-11-20, in every batch that wrote into it
    assert case.stats.chunk_ids == {"messages/2026-11-20/100000"}
    entries = [e for e in world.archive.chunk_entries("messages") if e.chunk_id == "messages/2026-11-20/100000"]
    assert case.stats.chunks_decrypted == len(entries)
    # meta + content of one chunk hour (no attachments field), from each batch that wrote it (each has its own key)
    assert service.released == case.stats.keys_released == 2 * len(entries) == 4


def test_archive_zone_and_utc_windows_agree(world):
    utc = world.grant(start=EDGE_DAY, end=EDGE_DAY + timedelta(hours=1))
    local = world.grant(start=datetime(2026, 11, 20, 18, 0, tzinfo=SHANGHAI), end=datetime(2026, 11, 20, 19, 0, tzinfo=SHANGHAI))
    a, b = world.open(utc).messages(), world.open(local).messages()
    assert a.height > 2 and a["record_hash"].to_list() == b["record_hash"].to_list()


def test_rows_carry_provenance_and_frames_are_copies(world):
    case = world.open(world.demo_grant)
    frame = case.messages()
    # the search form of the text comes with every content load
    assert frame.filter(pl.col("text").is_not_null())["text_norm"].null_count() == 0
    assert {"chunk_id", "record_hash", "batch_seq", "leaf_index", "version"} <= set(frame.columns)
    assert frame["record_hash"].str.len_chars().unique().to_list() == [64]
    before = world.archive.info()
    frame.with_columns(pl.lit("x").alias("text"))
    assert world.archive.info() == before


def test_complaint_window_holds_the_planted_case(world):
    case = world.open(world.demo_grant)
    frame = case.messages()
    assert "p-c1-complaint" in frame["message_id"].to_list()
    local = frame["ts"].dt.convert_time_zone("Asia/Shanghai")
    assert local.min().hour >= 14 and local.max() < datetime(2026, 11, 18, 17, 0, tzinfo=SHANGHAI)
    events = case.events()
    assert "delivery_delay_alert" in events["event_type"].to_list()
    info = case.info()
    assert info["messages"] == frame.height and info["window"]["tz"] == "Asia/Shanghai"


def test_metadata_only_grant_has_no_text_and_no_content_keys(world):
    grant = world.grant(start=EDGE_DAY, end=EDGE_DAY + timedelta(hours=1), fields=("metadata",))
    service = EmbeddedKeyService(world.archive, world.keys)
    case = world.open(grant, key_service=service)
    frame = case.messages()
    assert frame.height > 0
    assert not {"text", "text_norm", "attachment_name", "attachment_sha256"} & set(frame.columns)
    released = [e for e in world.audit("key.release") if e.outcome == "allowed"][-1]
    assert released.details["parts"] == ["meta"]
    with pytest.raises(errors.ContentNotGranted):
        case.messages(columns=["ts", "text"])
    # asking the key service directly for the content part is refused and audited
    with pytest.raises(errors.PolicyDenied) as info:
        service.release(case.ticket, [ChunkRef("messages", "2026-11-20", "100000", "content")], now=world.clock)
    assert info.value.rule == "fields.parts"
    assert world.audit("key.release")[-1].outcome == "denied"


def test_a_key_outside_the_window_is_refused_and_audited(world):
    grant = world.grant(start=EDGE_DAY, end=EDGE_DAY + timedelta(hours=1))
    service = EmbeddedKeyService(world.archive, world.keys)
    case = world.open(grant, key_service=service)
    with pytest.raises(errors.PolicyDenied) as info:
        service.release(case.ticket, [ChunkRef("messages", "2026-11-20", "110000", "meta")], now=world.clock)
    assert info.value.rule == "grant.window"
    last = world.audit("key.release")[-1]
    assert last.outcome == "denied" and "outside the granted window" in last.details["reason"]
    assert service.released == 0


def test_scope_limits_rows_to_conversations(world):
    grant = world.grant(start=EDGE_DAY - timedelta(days=1), end=EDGE_DAY + timedelta(hours=1),
                        conversations=["edge-conv"])
    frame = world.open(grant).messages()
    assert set(frame["conversation_id"].to_list()) == {"edge-conv"}
    assert sorted(frame["message_id"].to_list()) == ["edge-before", "edge-inside", "edge-start"]


def test_lazy_path_equals_eager_and_pushes_filters(world):
    case = world.open(world.demo_grant)
    eager = case.messages()
    lazy = case.messages(lazy=True)
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect()["record_hash"].to_list() == eager["record_hash"].to_list()
    one = lazy.filter(pl.col("sender_id") == "zhangwei").select("message_id", "ts").collect()
    assert one["message_id"].to_list() == eager.filter(pl.col("sender_id") == "zhangwei")["message_id"].to_list()


def test_tampered_chunk_returns_nothing(world):
    grant = world.grant(start=EDGE_DAY, end=EDGE_DAY + timedelta(hours=1))
    case = world.open(grant)
    entry = [e for e in world.archive.chunk_entries("messages") if e.chunk_id == "messages/2026-11-20/100000"][0]
    path = world.archive.root / entry.part("content")[0]
    data = bytearray(path.read_bytes())
    data[-5] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(errors.IntegrityError, match=re.escape(entry.part("content")[0])):  # the file is named
        case.messages()


@pytest.mark.parametrize("attempt", ["expired", "edited", "revoked", "not_operator", "replayed", "no_identity",
                                     "wrong_code"])
def test_bypass_attempts_on_open_are_refused_and_audited(world, attempt):
    import json

    from investigator.authority.grants import find_grant, revoke_grant
    from investigator.authority.directory import Signer
    from investigator.access.case import open_case

    grant = world.grant(start=EDGE_DAY, end=EDGE_DAY + timedelta(hours=1))
    service = EmbeddedKeyService(world.archive, world.keys)
    when = world.tick()
    kwargs = dict(grant=grant, person="sunli", totp=world.code("sunli", when), key_service=service, now=when)
    expected: type[Exception] | tuple[type[Exception], ...] = errors.InvestigatorError
    if attempt == "expired":
        kwargs["now"] = when + timedelta(days=400)
        kwargs["totp"] = world.code("sunli", kwargs["now"])
        expected = errors.GrantExpired
    elif attempt == "edited":
        path = find_grant(world.archive, grant)
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["request"]["body"]["end"] = "2026-11-30T00:00:00.000000Z"
        path.write_text(json.dumps(doc), encoding="utf-8")
        # its signature fails; a grant a signed state head covers is refused before, as a changed decision file
        expected = (errors.GrantInvalid, errors.IntegrityError)
    elif attempt == "revoked":
        revoke_grant(world.archive, grant, signer=Signer("wugang", world.key("wugang")), reason="test", now=when)
        kwargs["now"] = when = world.tick()
        kwargs["totp"] = world.code("sunli", when)
        expected = errors.GrantExpired
    elif attempt == "not_operator":
        kwargs["person"] = "zhouzong"
        kwargs["totp"] = world.code("zhouzong", when)
        expected = errors.PolicyDenied
    elif attempt == "replayed":
        open_case(world.archive, **kwargs)
        expected = errors.IdentityCheckFailed
    elif attempt == "no_identity":
        kwargs["totp"] = None
        expected = errors.IdentityCheckFailed
    elif attempt == "wrong_code":
        kwargs["totp"] = "000000" if kwargs["totp"] != "000000" else "111111"
        expected = errors.IdentityCheckFailed
    before = len(world.audit())
    with pytest.raises(expected):
        open_case(world.archive, **kwargs)
    denied = [e for e in world.audit()[before:] if e.outcome == "denied"]
    assert denied, f"{attempt}: no denied audit entry"
    assert service.released == 0 or attempt == "replayed"


def test_dual_control_needs_a_monitor_for_sensitive_purposes(world):
    from investigator.authority.grants import approve, new_request
    from investigator.access.case import open_case

    when = world.tick()
    signed = new_request(world.archive, requester="qianjin", signing_key=world.key("qianjin"), case="T-DUAL",
                         purpose="legal_dispute", start=EDGE_DAY, end=EDGE_DAY + timedelta(hours=1),
                         fields=("metadata", "content"), reason="dual control test", now=when)
    approve(world.archive, world.keys, signed.id, approver="zhouzong", signing_key=world.key("zhouzong"),
            totp=world.code("zhouzong", when), now=when)
    result = approve(world.archive, world.keys, signed.id, approver="sunli", signing_key=world.key("sunli"),
                     totp=world.code("sunli", when), now=when)
    grant = result.grant_path.stem

    def attempt(**kw):
        at = world.tick()
        return open_case(world.archive, grant=grant, person="qianjin", totp=world.code("qianjin", at),
                         key_service=EmbeddedKeyService(world.archive, world.keys), now=at,
                         **{k: (v(at) if callable(v) else v) for k, v in kw.items()})

    with pytest.raises(errors.PolicyDenied) as info:
        attempt()
    assert info.value.rule == "dual_control.required"
    with pytest.raises(errors.PolicyDenied) as info:
        attempt(monitor="zhangwei", monitor_totp=lambda at: world.code("zhangwei", at))
    assert info.value.rule == "dual_control.monitor_role"
    with pytest.raises(errors.IdentityCheckFailed):
        attempt(monitor="zhengjie", monitor_totp="000000")
    case = attempt(monitor="zhengjie", monitor_totp=lambda at: world.code("zhengjie", at))
    assert case.messages().height > 0
    opened = [e for e in world.audit("case.open") if e.outcome == "allowed"][-1]
    assert opened.details["monitor"] == "zhengjie"
    assert [e.details["rule"] for e in world.audit("case.open") if e.outcome == "denied"][-2:] == [
        "dual_control.required", "dual_control.monitor_role"]


def test_loads_and_searches_are_audited_and_checkpointed(world):
    case = world.open(world.demo_grant)
    frame = case.messages()
    load = world.audit("load")[-1]
    assert (load.actor, load.details["rows"], load.details["content"]) == ("sunli", frame.height, True)
    case.record_search("投诉 OR 辱骂", mode="word", hits=3, searched=frame.height)
    search = world.audit("search")[-1]
    assert search.details == {"query": "投诉 OR 辱骂", "mode": "word", "hits": 3, "searched": frame.height}
    public = world.archive.signing_public
    report = world.archive.audit.verify({public.key_id: public})
    assert report.ok and report.counts["last_checkpoint_seq"] >= load.seq - 1  # the key release before the load is pinned


def test_unknown_kinds_and_damaged_partition_keys_are_refused_and_audited(world):
    import json

    grant = world.grant(start=EDGE_DAY, end=EDGE_DAY + timedelta(hours=1))
    service = EmbeddedKeyService(world.archive, world.keys)
    case = world.open(grant, key_service=service)
    with pytest.raises(errors.PolicyDenied) as info:
        service.release(case.ticket, [ChunkRef("bogus", "2026-11-20", "100000", "meta")], now=world.clock)
    assert info.value.rule == "chunk.unknown"
    # a wrapped partition key altered on disk: nothing is derived, and the refusal is audited
    path = world.archive.current_data_key_path("events", "2026-11-20")
    wrapped = json.loads(path.read_text())
    wrapped["wrapped"] = wrapped["wrapped"][:-8] + ("A" * 8 if not wrapped["wrapped"].endswith("A" * 8) else "B" * 8)
    path.write_text(json.dumps(wrapped))
    with pytest.raises(errors.IntegrityError):
        service.release(case.ticket, [ChunkRef("events", "2026-11-20", "100000", "meta")], now=world.clock)
    last = world.audit("key.release")[-1]
    assert (last.outcome, last.details["rule"]) == ("denied", "chunk.unknown")
    assert service.released == 0


class OrgLoads:
    """Counts directory and policy loads, apart from those inside the identity check (authority's own)."""

    def __init__(self, monkeypatch):
        from collections import Counter

        from investigator.access import keyservice
        from investigator.authority.directory import DirectoryStore
        from investigator.authority.policy import PolicyStore

        self.counts, self._identity = Counter(), 0
        for name, store in (("directory", DirectoryStore), ("policy", PolicyStore)):
            monkeypatch.setattr(store, "load", self._counting(name, store.load))
        check_identity = keyservice.check_identity

        def counted_check(*args, **kwargs):
            self._identity += 1
            try:
                return check_identity(*args, **kwargs)
            finally:
                self._identity -= 1

        monkeypatch.setattr(keyservice, "check_identity", counted_check)

    def _counting(self, name, load):
        def counted(store, *args, **kwargs):
            self.counts[name, "check_identity" if self._identity else "open"] += 1
            return load(store, *args, **kwargs)
        return counted

    def total(self, name):
        return sum(n for (what, _), n in self.counts.items() if what == name)


def open_with_monitor(world, monkeypatch):
    """Open a case with a monitor named (every check runs), counting the org loads of that one open_case."""
    from investigator.access.case import open_case

    grant = world.grant(start=EDGE_DAY, end=EDGE_DAY + timedelta(hours=1))
    loads = OrgLoads(monkeypatch)
    when = world.tick()
    case = open_case(world.archive, grant=grant, person="sunli", totp=world.code("sunli", when), monitor="zhengjie",
                     monitor_totp=world.code("zhengjie", when),
                     key_service=EmbeddedKeyService(world.archive, world.keys), now=when)
    assert case.ticket.grant_id == grant
    return loads


def test_opening_a_case_loads_the_directory_and_the_policy_once(world, monkeypatch):
    loads = open_with_monitor(world, monkeypatch)
    # grant verification, operator and dual-control checks share one load of each
    assert (loads.counts["directory", "open"], loads.counts["policy", "open"]) == (1, 1)


def test_opening_a_case_loads_the_directory_and_the_policy_once_in_all(world, monkeypatch):
    loads = open_with_monitor(world, monkeypatch)
    assert (loads.total("directory"), loads.total("policy")) == (1, 1)

