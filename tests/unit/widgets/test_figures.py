"""figures.py: frames in, plotly figures out, traces as the analysis functions say."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from investigator import analysis as A
from investigator.analysis.people import People
from investigator.widgets import figures as F
from investigator.settings import Settings
from investigator.widgets.i18n import label, resolve_lang

UTC = timezone.utc


def _messages() -> pl.DataFrame:
    t0 = datetime(2026, 11, 18, 6, 20, tzinfo=UTC)  # 14:20 in Shanghai
    rows = [("m1", t0, "zhangwei", "张伟", ["liqiang"], "c1", "快递到哪了"),
            ("m2", t0 + timedelta(minutes=15), "wangfang", "王芳", ["zhangwei"], "c2", "我要投诉"),
            ("m3", t0 + timedelta(minutes=135), "zhangwei", "张伟", ["wangfang"], "c2", "抱歉, 投诉已收到"),
            ("m4", t0 + timedelta(minutes=140), "wangfang", "王芳", [], "c3", "好的")]
    return pl.DataFrame([{"message_id": m, "ts": ts, "sender_id": s, "sender_name": n, "recipients": r,
                          "conversation_id": c, "conversation_name": c, "msg_type": "text", "text": t}
                         for m, ts, s, n, r, c, t in rows])


def _events() -> pl.DataFrame:
    t0 = datetime(2026, 11, 18, 6, 40, tzinfo=UTC)
    return pl.DataFrame({"event_id": ["e1", "e2"], "ts": [t0, t0 + timedelta(minutes=5)],
                         "actor": ["system", "zhangwei"], "event_type": ["alert", "login"],
                         "host": [None, "erp-01"], "ip": [None, "10.0.0.1"], "outcome": [None, "success"],
                         "details": ["{}", "{}"]})


def _kinds(fig) -> list[str]:
    return [t.meta["kind"] for t in fig.data]


def test_timeline_lanes_events_gaps_and_delays():
    msgs, events = _messages(), _events()
    gaps = A.silences(msgs, timedelta(minutes=60), by="sender_id")
    delays = A.first_replies(msgs, agents=["zhangwei"])
    fig = F.timeline_figure(msgs, events, gaps=gaps, delays=delays, lang="en", highlight=["m2"])
    assert _kinds(fig) == ["message", "event", "event", "gap", "delay"]
    message = fig.data[0]
    assert list(message.customdata) == ["m1", "m2", "m3", "m4"]
    assert list(message.marker.size) == [8, 14, 8, 8]
    # wall-clock times in the archive's zone, the zone named on the axis
    assert message.x[0] == "2026-11-18T14:20:00"
    assert fig.layout.xaxis.title.text == "Time (Asia/Shanghai)"
    assert {t.meta["event_type"] for t in fig.data if t.meta["kind"] == "event"} == {"alert", "login"}
    assert set(fig.layout.yaxis.categoryarray) == {"张伟", "王芳", "system", "zhangwei"}
    delay = fig.data[-1]
    assert "delay 120 min" in delay.text[0]
    # every gap is a full-height shaded rectangle, set in one layout update; no annotation per item
    gap = fig.data[3]
    assert gap.meta["count"] == gaps.height == len(fig.layout.shapes) and fig.layout.annotations == ()
    shape = fig.layout.shapes[0]
    assert shape.yref == "paper" and shape.x0 < shape.x1 and shape.x0 == gap.x[0]
    # each delay is one segment, a dot at the reply
    assert list(delay.marker.size) == [0, 7, 0] * delay.meta["count"]


def test_timeline_empty_and_max_lanes():
    fig = F.timeline_figure(_messages().head(0), None, lang="en")
    assert fig.data == () and fig.layout.annotations[0].text == "No data"
    fig = F.timeline_figure(_messages(), None, max_lanes=1)
    assert set(fig.data[0].y) == {"张伟"}  # the busiest lane first


def test_heatmap_counts_follow_analysis():
    msgs = _messages()
    fig = F.activity_heatmap_figure(msgs, lang="en")
    grid = A.activity_heatmap(msgs)
    assert sum(map(sum, fig.data[0].z)) == grid["count"].sum() == 4
    assert fig.data[0].z[2][14] == 2  # Wednesday 14:xx Shanghai
    assert list(fig.data[0].y)[0] == "Mon"
    assert F.activity_heatmap_figure(msgs, lang="zh-CN").data[0].y[0] == "周一"


def test_contact_graph_edges_follow_contact_edges():
    msgs = _messages()
    fig = F.contact_graph_figure(msgs, names={"zhangwei": "张伟"})
    edges = {(s, t): n for tr in fig.data if tr.meta["kind"] == "edge" for s, t, n in tr.meta["edges"]}
    assert sum(1 for tr in fig.data if tr.meta["kind"] == "edge") <= F.EDGE_CLASSES
    expected = {(s, t): n for s, t, _k, n in A.contact_edges(msgs).iter_rows()}
    assert edges == expected
    nodes = [t for t in fig.data if t.meta["kind"] == "node"]
    assert {t.meta["node_kind"] for t in nodes} == {"person", "conversation"}
    assert "张伟" in nodes[0].text


@pytest.mark.parametrize("by,expected", [("sender", {"王芳": 1, "张伟": 1}), ("day", {"2026-11-18": 2}),
                                         ("term", {"投诉": 2})])
def test_hit_counts(by, expected):
    hits = A.search(_messages(), "投诉")
    fig = F.hit_counts_figure(hits, by=by, lang="en")
    assert dict(zip(fig.data[0].y, fig.data[0].x)) == expected


def test_hit_counts_rejects_unknown_grouping():
    with pytest.raises(ValueError):
        F.hit_counts_figure(_messages(), by="colour")


def test_labels_default_to_chinese(monkeypatch):
    monkeypatch.delenv("INVESTIGATOR_LANG", raising=False)
    assert resolve_lang() == "zh-CN" and label("messages") == "消息"
    # the language comes from the edge (open_case / the CLI read INVESTIGATOR_LANG), never from here
    monkeypatch.setenv("INVESTIGATOR_LANG", "en")
    assert label("messages") == "消息"
    assert label("messages", Settings.from_environ({"INVESTIGATOR_LANG": "en"}).lang) == "Messages"
    assert label("messages", "zh") == "消息"


def test_person_lanes_merge_accounts():
    lanes = F.person_lanes({"zhangwei": ["zhangwei", "张伟", "wxid_zhangwei"]})
    assert lanes["wxid_zhangwei"] == lanes["zhangwei"] == "张伟 (zhangwei)"
    fig = F.timeline_figure(_messages(), _events(), lanes=lanes)
    assert "张伟 (zhangwei)" in fig.data[0].y and "zhangwei" not in fig.data[2].y


def test_timeline_above_max_points_is_a_density_with_the_hits_on_top():
    t0 = datetime(2026, 11, 18, 1, 0, tzinfo=UTC)
    rows = 600
    msgs = pl.DataFrame({"message_id": [f"m{i}" for i in range(rows)],
                         "ts": [t0 + timedelta(seconds=20 * i) for i in range(rows)],
                         "sender_id": ["a" if i % 3 else "b" for i in range(rows)],
                         "sender_name": ["a" if i % 3 else "b" for i in range(rows)],
                         "conversation_id": ["c"] * rows, "msg_type": ["text"] * rows, "text": ["x"] * rows})
    fig = F.timeline_figure(msgs, tz="UTC", highlight=["m5", "m500"], max_points=100, lang="en")
    density, hits = fig.data
    assert density.meta["kind"] == "density" and hits.meta["kind"] == "message"
    assert len(density.x) <= 100 and density.meta["bin"] == "5m"  # 1-minute bins would make 2 x 200 cells
    assert sum(int(t.split()[0]) for t in density.text) == rows  # every message counted once
    assert sorted(hits.customdata) == ["m5", "m500"]
    assert {"m0", "m1"} <= set(density.customdata)  # a click on a cell opens its first message
    # the same frame under the threshold: one point per message
    assert len(F.timeline_figure(msgs, tz="UTC", max_points=rows).data[0].x) == rows
    # more hits than points: the hits become a density too
    many = F.timeline_figure(msgs, tz="UTC", highlight=msgs["message_id"].to_list(), max_points=100)
    assert [t.meta["kind"] for t in many.data] == ["density", "hit_density"]
    assert all(len(t.x) <= 100 for t in many.data)


def test_figures_grow_linearly_in_items_not_in_layout():
    """400 gaps: one legend trace, one delay trace, the rectangles set at once, no annotation per item."""
    msgs = _messages()
    t0 = datetime(2026, 11, 18, 0, 0, tzinfo=UTC)
    gaps = pl.DataFrame({"start": [t0 + timedelta(hours=i) for i in range(400)],
                         "end": [t0 + timedelta(hours=i, minutes=40) for i in range(400)],
                         "minutes": [40.0] * 400})
    fig = F.timeline_figure(msgs, gaps=gaps, delays=A.first_replies(msgs, agents=["zhangwei"]))
    assert [t.meta["kind"] for t in fig.data].count("gap") == 1 and fig.data[-2].meta["count"] == 400
    assert len(fig.layout.shapes) == 400 and len(fig.layout.annotations) == 0


# --- people, not accounts -------------------------------------------------------------------------------------

IDENTITIES = {"zhangwei": ["zhangwei", "张伟", "wxid_zhangwei", "U0ZHANGWEI"],
              "liqiang": ["liqiang", "李强", "wxid_liqiang"]}


def _accounts() -> pl.DataFrame:
    """张伟 writes from WeCom, WeChat and Slack; 王芳 is on no directory (WeChat); two strangers share a name."""
    t0 = datetime(2026, 11, 18, 6, 0, tzinfo=UTC)
    rows = [("a1", "wecom", "zhangwei", "张伟", ["liqiang"], "c-wecom", None, "投诉 已收到"),
            ("a2", "wechat-pywxdump", "wxid_zhangwei", "张伟 (微信)", ["wxid_liqiang"], "c-wx", "客服群", "投诉 处理中"),
            ("a3", "slack", "U0ZHANGWEI", "zhang.wei", [], "C01", "#support", "投诉 closed"),
            ("a4", "wechat-pywxdump", "wxid_wf", "王芳", ["wxid_zhangwei"], "c-wx", "客服群", "我要投诉"),
            ("a5", "whatsapp", "+86 1", "Tom", [], "c-wa", "", "投诉 1"),
            ("a6", "whatsapp", "+86 2", "Tom", [], "c-wa", "", "投诉 2"),
            ("a7", "wechat-pywxdump", "wxid_zhangwei", "张伟 (微信)", ["wxid_wf"], "c-wx", "客服群", "好的")]
    return pl.DataFrame([{"message_id": m, "source": src, "ts": t0 + timedelta(minutes=10 * i), "sender_id": sid,
                          "sender_name": name, "recipients": rec, "conversation_id": cid, "conversation_name": cname,
                          "msg_type": "text", "text": text}
                         for i, (m, src, sid, name, rec, cid, cname, text) in enumerate(rows)])


def _bars(fig) -> dict[str, int]:
    return dict(zip(fig.data[0].y, fig.data[0].x))


def test_hit_counts_one_bar_per_person_unknown_with_platform_distinct_labels():
    hits = A.search(_accounts(), "投诉")
    bars = _bars(F.hit_counts_figure(hits, by="sender", people=IDENTITIES, lang="en"))
    # 张伟's three accounts on three platforms: one bar with the person's name
    assert bars["张伟"] == 3 and not any("zhangwei" in k.lower() or "U0" in k for k in bars)
    assert bars["王芳 (wechat)"] == 1  # unknown account: display name and platform
    # two different WhatsApp accounts both called Tom: two bars, never one merged, never the same label
    toms = {k: v for k, v in bars.items() if k.startswith("Tom (whatsapp)")}
    assert len(toms) == 2 and set(toms.values()) == {1} and sum(bars.values()) == hits.height
    # the same from a People (names from the directory) and from a frame already resolved
    people = People.from_identities(IDENTITIES, names={"zhangwei": "张伟"})
    assert _bars(F.hit_counts_figure(hits, people=people)) == bars
    assert _bars(F.hit_counts_figure(people.resolve(hits))) == bars
    # without identities each account is its own bar, still named with its platform
    alone = _bars(F.hit_counts_figure(hits, lang="en"))
    assert alone["张伟 (wecom)"] == alone["张伟 (微信) (wechat)"] == alone["zhang.wei (slack)"] == 1


def test_hit_counts_by_conversation_name_instead_of_id():
    bars = _bars(F.hit_counts_figure(A.search(_accounts(), "投诉"), by="conversation", lang="en"))
    # names where they exist; the id where the name is missing or blank
    assert bars == {"客服群": 2, "#support": 1, "c-wecom": 1, "c-wa": 2}


def test_contact_graph_one_node_per_person_distinct_labels():
    fig = F.contact_graph_figure(_accounts(), people=IDENTITIES, lang="en")
    nodes = [t for t in fig.data if t.meta["kind"] == "node"]
    keys = [k for t in nodes for k in t.customdata]
    labels = [x for t in nodes for x in t.text]
    people_labels = [x for t in nodes if t.meta["node_kind"] == "person" for x in t.text]
    assert people_labels.count("张伟") == 1 and "李强" in people_labels  # recipients resolved too
    assert "王芳 (wechat)" in people_labels
    assert not {"wxid_zhangwei", "U0ZHANGWEI", "wxid_liqiang"} & set(keys)
    assert len(labels) == len(set(labels)) == len(keys)  # no two nodes carry the same label
    edges = {(s, t): n for tr in fig.data if tr.meta["kind"] == "edge" for s, t, n in tr.meta["edges"]}
    assert edges[("zhangwei", "liqiang")] == 2  # WeCom and WeChat messages to 李强's two accounts: one edge
    assert edges[("wechat:wxid_wf", "zhangwei")] == edges[("zhangwei", "wechat:wxid_wf")] == 1
    # conversation nodes are named where a name exists
    conversations = [x for t in nodes if t.meta["node_kind"] == "conversation" for x in t.text]
    assert "#support" in conversations and "C01" not in conversations
    # a person node sitting opposite another has its label on its own side, not stacked at the centre
    assert all(pos != "top center" or abs(x) < 0.5 for t in nodes for pos, x in zip(t.textposition, t.x))


def test_timeline_one_lane_per_person():
    msgs = _accounts()
    events = pl.DataFrame({"event_id": ["e1"], "ts": [datetime(2026, 11, 18, 6, 5, tzinfo=UTC)],
                           "actor": ["wxid_zhangwei"], "event_type": ["login"], "host": ["erp"], "ip": [None],
                           "outcome": ["success"], "details": ["{}"]})
    delays = A.first_replies(msgs, agents=["zhangwei"], identities=IDENTITIES)
    fig = F.timeline_figure(msgs, events, people=IDENTITIES, delays=delays, lang="en")
    lanes = set(fig.layout.yaxis.categoryarray)
    assert "张伟" in lanes and "王芳 (wechat)" in lanes
    assert not lanes & {"zhangwei", "wxid_zhangwei", "U0ZHANGWEI", "zhang.wei", "张伟 (微信)"}
    assert len([lane for lane in lanes if lane.startswith("Tom (whatsapp)")]) == 2  # two strangers, two lanes
    message = fig.data[0]
    assert [y for y, m in zip(message.y, message.customdata) if m in ("a1", "a2", "a3")] == ["张伟"] * 3
    event = next(t for t in fig.data if t.meta["kind"] == "event")
    assert list(event.y) == ["张伟"]  # the actor's account joins the person's lane
    delay = next(t for t in fig.data if t.meta["kind"] == "delay")
    assert delay.meta["count"] == 1 and {"王芳 (wechat)", "张伟"} == set(delay.y) - {None}
