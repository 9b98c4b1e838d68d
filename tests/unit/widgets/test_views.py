"""TimelineView, ActivityHeatmap, ContactGraph, TagPanel, OpenCaseForm, TagStore on the demo case."""

from __future__ import annotations

import json
from datetime import timedelta

import polars as pl
import pytest
import traitlets

from investigator import analysis as A
from investigator.errors import IntegrityError
from investigator.widgets import ActivityHeatmap, ContactGraph, OpenCaseForm, SearchPanel, TagPanel, TimelineView


def _kinds(fig) -> list[str]:
    return [t.meta["kind"] for t in fig.data]


def test_timeline_traces_follow_the_case(demo_case, demo_messages):
    events = demo_case.events()
    view = TimelineView(demo_case, messages=demo_messages, events=events, agents=["zhangwei"], lang="en",
                        gap=timedelta(minutes=10))
    kinds = _kinds(view.figure)
    assert kinds.count("message") == 1 and "gap" in kinds and "delay" in kinds
    assert len(view.figure.data[0].x) == demo_messages.height
    event_points = sum(len(t.x) for t in view.figure.data if t.meta["kind"] == "event")
    assert event_points == events.height
    quiet = A.silences(demo_messages.with_columns(pl.lit(1).alias("all")), timedelta(minutes=10), by="all")
    assert quiet.height > 0
    gap = next(t for t in view.figure.data if t.meta["kind"] == "gap")
    assert gap.meta["count"] == quiet.height == len(view.figure.layout.shapes)
    # one lane per person: 张伟's WeCom, WeChat and Slack accounts share a lane
    lanes = set(view.figure.data[0].y)
    assert "张伟" in lanes and not any("zhangwei" in lane or lane.startswith("张伟 (") for lane in lanes)
    # every message lane is a person's name or an unknown account's "name (platform)"; the agent's
    # reply delays run between person lanes
    delay = next(t for t in view.figure.data if t.meta["kind"] == "delay")
    assert "张伟" in set(delay.y)
    # selecting a point opens its context / its event
    snippet = view.select("p-c1-complaint")
    assert "p-c1-complaint" in snippet["message_id"].to_list() and "data-message-id='p-c1-complaint'" in view.detail.value
    view.select("p-c1-alert")
    assert "delivery_delay_alert" in view.detail.value and "Asia/Shanghai" in view.detail.value
    # fewer messages -> fewer points; hits highlighted
    view.update(demo_messages.head(5))
    assert len(view.figure.data[0].x) == 5
    hits = A.search(demo_messages, "投诉")
    view.show_hits(hits)
    assert sum(1 for s in view.figure.data[0].marker.size if s > 8) == hits.height


def test_timeline_updates_in_place_and_only_when_results_change(demo_case, demo_messages):
    view = TimelineView(demo_case, messages=demo_messages, events=demo_case.events(), agents=["zhangwei"],
                        lang="en", gap=timedelta(minutes=10))
    shown = view.figure
    assert view.live.builds == 1 and view.holder.children == (shown,)
    hits = A.search(demo_messages, "投诉")
    view.show_hits(hits)
    # the same FigureWidget, restyled in one batch: the browser keeps its view
    assert view.figure is shown and view.live.updates == 1 and view.live.builds == 1
    assert sum(1 for s in shown.data[0].marker.size if s > 8) == hits.height
    view.show_hits(A.search(demo_messages, "投诉"))  # the same hits again: nothing is sent
    assert view.live.updates == 1
    view.show_hits(demo_messages.head(0))
    assert view.live.updates == 2 and max(shown.data[0].marker.size) == 8
    # a click on a message point opens its context (the handler the FigureWidget calls)
    trace = shown.data[0]
    view.live._clicked(trace, type("Points", (), {"point_inds": [0]})(), None)
    assert f"data-message-id='{trace.customdata[0]}'" in view.detail.value


def test_timeline_linked_to_search(demo_case, demo_messages):
    panel = SearchPanel(demo_case, messages=demo_messages, lang="en")
    view = TimelineView(demo_case, messages=demo_messages, events=demo_case.events(), lang="en")
    panel.on_results(view.show_hits)
    panel.query.value = "投诉"
    assert sum(1 for s in view.figure.data[0].marker.size if s > 8) == panel.count_value


def test_heatmap_and_contacts(demo_case, demo_messages):
    heat = ActivityHeatmap(demo_case, messages=demo_messages, lang="en")
    assert sum(map(sum, heat.figure.data[0].z)) == demo_messages.height
    shown = heat.figure
    heat.update(demo_messages.head(3))
    assert sum(map(sum, heat.figure.data[0].z)) == 3
    assert heat.figure is shown and heat.live.updates == 1  # updated in place
    graph = ContactGraph(demo_case, messages=demo_messages, lang="en", max_nodes=500)
    edges = [e for t in graph.figure.data if t.meta["kind"] == "edge" for e in t.meta["edges"]]
    # one node per person: 张伟's accounts on several platforms are one node, so fewer edges than accounts make
    accounts = {a for a in demo_case.identities()["zhangwei"]}
    assert len(demo_messages.filter(pl.col("sender_id").is_in(list(accounts)))["source"].unique()) >= 3
    assert 0 < len(edges) < A.contact_edges(demo_messages).height
    labels = [x for t in graph.figure.data if t.meta["kind"] == "node" for x in t.text]
    assert labels.count("张伟") == 1 and len(labels) == len(set(labels))  # distinct labels per node
    keys = [k for t in graph.figure.data if t.meta["kind"] == "node" and t.meta["node_kind"] == "person"
            for k in t.customdata]
    assert "zhangwei" in keys and not (accounts - {"zhangwei"}) & set(keys)


def test_tag_panel_tags_audits_and_filters(fresh_case):
    panel = SearchPanel(fresh_case, lang="en")
    tags = TagPanel(fresh_case, source=panel, lang="en")
    panel.query.value = "投诉"
    chosen = panel.results["message_id"].head(2).to_list()
    panel.table.select(chosen)
    assert tags.selection.value.endswith(": 2")
    tags.note.value = "complaint thread"
    tags.add_button.click()
    tagged = tags.tagged()
    assert sorted(tagged["message_id"]) == sorted(chosen)
    audit = [e for e in fresh_case.archive.audit.entries() if e.action == "tag"]
    assert [e.target for e in audit] == chosen and all(e.actor == "sunli" for e in audit)
    assert all("complaint thread" not in json.dumps(e.details, ensure_ascii=False) for e in audit)
    tags.tag_selected("key", message_ids=chosen[:1])
    tags.filter.value = "key"
    assert tags.tagged()["message_id"].to_list() == chosen[:1]
    tags.filter.value = ""
    tags.untag_selected("evidence", message_ids=chosen[:1])
    store = fresh_case.tags()
    assert sorted(store.to_frame().filter(pl.col("tag") == "evidence")["message_id"]) == chosen[1:]
    assert store.history().height == 4  # the removal is recorded, nothing erased
    tags.tag.value = "Bad Tag!"
    tags.add_button.click()
    assert "Error" in tags.status.value


def test_tagstore_never_touches_originals_and_detects_damage(fresh_case):
    root = fresh_case.archive.root
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and "batches" in p.parts}
    store = fresh_case.tags()
    store.add(["p-c1-complaint"], "evidence", note="x")
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and "batches" in p.parts} == before
    assert store.path.parent.parent.name == "cases"
    with open(store.path, "ab") as handle:
        handle.write(b"not json\n")
    with pytest.raises(IntegrityError):
        store.tagset()


def test_a_case_s_tags_and_saved_searches_are_headed_at_once_so_cutting_them_is_caught(fresh_case):
    """Each change through a case is covered by the next signed state head when it is made (Case.changed), not
    at the next decision: cutting it afterwards fails the read and verify (issue #13, item 2)."""
    from click.testing import CliRunner

    from investigator.cli import main
    from investigator.vault.statehead import read_heads
    from investigator.widgets.saved import SavedSearches

    archive = fresh_case.archive
    headed = len(read_heads(archive.layout, archive_id=archive.archive_id).heads)
    store = fresh_case.tags()
    store.add(["p-c1-complaint"], "evidence", note="x")
    store.add(["p-c1-complaint"], "key")
    saved = SavedSearches(fresh_case)
    saved.save("complaints", {"query": "投诉", "mode": "exact"})
    newest = read_heads(archive.layout, archive_id=archive.archive_id).heads
    assert len(newest) == headed + 3  # one head per change, each pinned by its checkpoint
    assert newest[-1].components["searches"]["count"] >= 1
    tags = store.path
    tags.write_bytes(tags.read_bytes().splitlines(keepends=True)[0])  # the second tag cut
    with pytest.raises(IntegrityError, match="tags.jsonl: state head"):
        store.tagset()
    saved.path.write_bytes(b"")  # the saved search cut
    result = CliRunner().invoke(main, ["verify", str(archive.root), "--offline"])
    assert result.exit_code == 4, result.output
    assert "tags.jsonl: state head" in result.output and "searches" in result.output, result.output


def test_open_case_form(widget_archive):
    from investigator.demo import DEMO_PASSPHRASE, demo_grant, demo_session

    form = OpenCaseForm(archive=str(widget_archive), grant=demo_grant(widget_archive), person="sunli",
                        passphrase=DEMO_PASSPHRASE, lang="en")
    opened = []
    form.on_open(opened.append)
    form.totp.value = "000000"
    assert form.open_case() is None
    assert "Refused" in form.result.value and form.totp.value == ""
    form.session.value = demo_session(widget_archive)
    form.open_button.click()
    assert form.case is not None and opened == [form.case]
    assert "2026-11-18 14:00 – 2026-11-18 17:00 (Asia/Shanghai)" in form.result.value
    assert "metadata, content" in form.result.value
    form.grant.value = "G-doesnotexist"
    assert form.open_case() is None and "Refused" in form.result.value


def test_constructing_the_open_case_form_opens_nothing():
    calls = []
    form = OpenCaseForm(archive="an-archive", grant="G-x", person="sunli", lang="en",
                        opener=lambda archive, **options: calls.append(options))
    assert calls == [] and form.case is None and form.result.value == ""
    assert form.comm is not None  # ipywidgets' own Widget.open ran: the model exists for the browser
    form.open_button.click()
    assert len(calls) == 1


def test_no_widget_overrides_an_ipywidgets_method():
    """A widget method named like an ipywidgets one (open, close, send, ...) replaces what ipywidgets calls."""
    import ipywidgets

    import investigator.widgets as W

    base = {name for name in dir(ipywidgets.DOMWidget) if not name.startswith("_")}
    clashes = [f"{cls.__name__}.{name}" for cls in (getattr(W, n) for n in W.__all__) if isinstance(cls, type)
               for klass in cls.__mro__ if klass.__module__.startswith("investigator.")
               for name in vars(klass) if name in base and not isinstance(vars(klass)[name], traitlets.TraitType)]
    assert clashes == []


def test_open_case_form_in_key_server_mode_signs_with_the_person_key(widget_archive):
    """With a key server the form unlocks the person's own key and never passes an archive passphrase."""
    from investigator.demo import demo_grant
    from investigator.demo.people import DEMO_ONLY_PASSPHRASE
    from investigator.errors import KeyServiceError
    from investigator.authority.directory import DirectoryStore
    from investigator.vault.store import Archive

    calls = []

    def opener(archive, **options):  # stands where open_case would call the key server: record, then refuse
        calls.append(options)
        raise KeyServiceError("no key server in this test")

    form = OpenCaseForm(archive=str(widget_archive), grant=demo_grant(widget_archive), person="sunli",
                        keyserver="https://keys.example.invalid:8765", key_dir=str(widget_archive / "demo-keys"),
                        lang="en", opener=opener)
    assert form.passphrase.description == "Personal key passphrase"
    form.passphrase.value = DEMO_ONLY_PASSPHRASE.format(person="sunli")
    form.session.value = "a-session"
    assert form.open_case() is None and "no key server in this test" in form.result.value
    assert len(calls) == 1  # the constructor opened nothing; this is the one call
    options = calls[-1]
    assert "passphrase" not in options and options["keyserver"].startswith("https://keys.")
    # open_case unlocks the person's key from what the form passes (the real unlock, as open_case does it)
    from investigator.authority.identity import unlock_person_key
    key = unlock_person_key(Archive.open(widget_archive), "sunli", options["key_passphrase"], key_dir=options["key_dir"])
    directory_keys = [k.verify_key() for k in DirectoryStore(Archive.open(widget_archive)).load().find("sunli").keys]
    public = next(k for k in directory_keys if k.key_id == key.public.key_id)  # sunli's key in the directory
    public.verify(key.sign(b"request"), b"request")  # raises IntegrityError if it were not
    with pytest.raises(IntegrityError):
        public.verify(key.sign(b"request"), b"another request")
    assert form.passphrase.value == ""  # not kept in the form


def test_a_panel_that_fails_to_build_is_shown_in_the_form_not_only_logged(monkeypatch):
    # a button handler's exception reaches only JupyterLab's log console: the form must say it too
    import investigator.widgets.opencase as opencase

    class Opened:
        pass

    monkeypatch.setattr(opencase, "describe_case", lambda case, lang: "")  # a stand-in case has nothing to describe
    form = OpenCaseForm(archive="an-archive", grant="G-x", person="sunli", lang="en",
                        opener=lambda archive, **options: Opened())

    def build(case):
        raise ValueError("the timeline could not be drawn")

    form.on_open(build)
    with pytest.raises(ValueError):
        form.open_case()
    assert isinstance(form.case, Opened)  # the case is open; only the panels failed
    assert "Opened" in form.result.value
    assert "the panels could not be built" in form.result.value
    assert "ValueError: the timeline could not be drawn" in form.result.value
