"""The committed sample set: current, parseable by the importers, planted cases intact in every format."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from investigator.demo.samples import ALL_FORMATS, write_sample_set
from investigator.demo.samples import planted

DATA = Path(__file__).resolve().parents[3] / "data_samples"
TZ = "Asia/Shanghai"

FILES = {
    "jsonl": ["normalized/messages.jsonl"], "csv": ["normalized/messages.csv"],
    "events-jsonl": ["events/events.jsonl"], "events-csv": ["events/events.csv"], "authlog": ["events/auth.log"],
    "slack": ["slack/slack_export.zip"], "telegram": ["telegram/result.json"], "whatsapp": ["whatsapp/*.txt"],
    "discord": ["discord/*.json"], "wecom": ["wecom/chatdata.jsonl"], "wechat-pywxdump": ["wechat/pywxdump/*.csv"],
    "wechat-wechatmsg": ["wechat/wechatmsg/*.csv"],
}
CHAT_FORMATS = [f for f in ALL_FORMATS if not f.startswith("events") and f != "authlog"]


def paths(fmt: str) -> list[Path]:
    out = [p for pattern in FILES[fmt] for p in sorted(DATA.glob(pattern))]
    assert out, f"no committed files for {fmt}"
    return out


def importer(fmt: str):  # type: ignore[no-untyped-def]
    importers = pytest.importorskip("investigator.importers", reason="importers not written yet")
    if fmt not in getattr(importers, "FORMATS", ()):
        pytest.skip(f"no importer for {fmt} yet")
    return importers


def read_all(fmt: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    importers = importer(fmt)
    options = importers.ImportOptions()
    if fmt == "wecom":
        options = importers.ImportOptions(room_names=str(DATA / "wecom" / "rooms.json"))
    if fmt == "authlog":
        options = importers.ImportOptions(tz="UTC", year=2026)  # planted.json: authlog_host_time_zone
    results = [importers.read_export(p, format=fmt, options=options) for p in paths(fmt)]
    return pl.concat([r.messages for r in results]), pl.concat([r.events for r in results])


def test_committed_set_is_current(tmp_path: Path) -> None:
    """data_samples/ is exactly what write_sample_set(Path("data_samples")) makes today."""
    written = write_sample_set(tmp_path)
    for files in written.values():
        for p in files:
            committed = DATA / p.relative_to(tmp_path)
            assert committed.exists(), f"{committed} missing: regenerate data_samples"
            assert committed.read_bytes() == p.read_bytes(), f"{committed} is stale: regenerate data_samples"


def test_readme_names_every_top_level_entry() -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for entry in DATA.iterdir():
        if entry.name != "README.md":
            assert entry.name in readme, entry.name


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_committed_sample_parses(fmt: str) -> None:
    messages, events = read_all(fmt)
    assert messages.height + events.height > 100


@pytest.mark.parametrize("fmt", CHAT_FORMATS)
def test_planted_cases_survive_each_format(fmt: str) -> None:
    messages, _ = read_all(fmt)
    local = messages.with_columns(local=pl.col("ts").dt.convert_time_zone(TZ).dt.replace_time_zone(None))
    complaint = local.filter(pl.col("text").str.contains("我要投诉!订单", literal=True))
    assert complaint["local"].dt.strftime("%Y-%m-%d %H:%M").to_list() == ["2026-11-18 14:35"]
    reply = local.filter(pl.col("text").str.contains("非常抱歉让您久等了", literal=True))
    assert reply["local"].dt.strftime("%H:%M").to_list() == ["16:35"]
    courier = local.filter(pl.col("text").str.starts_with("@李强"))
    assert courier["local"].dt.strftime("%H:%M").to_list() == ["14:20"]
    # The misconduct DM: 23 messages 08:30-09:15, from its two members only.
    dm = local.filter(
        pl.col("local").is_between(pl.datetime(2026, 11, 24, 8, 30), pl.datetime(2026, 11, 24, 9, 15, 59))
        & pl.col("conversation_id").is_in(
            local.filter(pl.col("text").str.contains("回扣到账", literal=True))["conversation_id"].to_list())
    )
    assert dm.height == 23
    assert local.filter(pl.col("text").str.contains("蠢货", literal=True)).height == 1


@pytest.mark.parametrize("fmt", [f for f in CHAT_FORMATS if f != "whatsapp"])
def test_planted_json_ids_match_importer_ids(fmt: str) -> None:
    messages, _ = read_all(fmt)
    desc = json.loads((DATA / "planted.json").read_text(encoding="utf-8"))
    wanted = {m["ids"][fmt] for m in desc["messages"].values() if fmt in m["ids"]}
    assert wanted and wanted <= set(messages["message_id"])


def test_authlog_has_three_abnormal_logins() -> None:
    lines = (DATA / "events" / "auth.log").read_text(encoding="utf-8").splitlines()
    accepted = [ln for ln in lines if f"Accepted password for liuyang from {planted.UNUSUAL_IP}" in ln]
    assert [ln[:15] for ln in accepted] == ["Nov 24 00:41:07", "Nov 24 00:52:19", "Nov 24 01:07:52"]  # UTC host
    assert all(" erp-01 sshd[" in ln for ln in accepted)


def test_authlog_importer_sees_the_abnormal_logins() -> None:
    _, events = read_all("authlog")
    hits = events.filter((pl.col("ip") == planted.UNUSUAL_IP) & (pl.col("event_type") == "login"))
    assert hits["ts"].dt.convert_time_zone(TZ).dt.strftime("%H:%M").to_list() == ["08:41", "08:52", "09:07"]


def test_wechatmsg_is_gb18030_with_crlf() -> None:
    raw = paths("wechat-wechatmsg")[0].read_bytes()
    assert b"\r\n" in raw and not raw.startswith(b"\xef\xbb\xbf")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert raw.decode("gb18030").startswith("localId,TalkerId,Type")


def test_whatsapp_files_look_like_the_phone_wrote_them() -> None:
    android = re.compile(r"^\d\d/\d\d/\d{4}, \d\d:\d\d - ")
    ios = re.compile(r"^\[\d\d/\d\d/\d\d, \d\d:\d\d:\d\d\] ")
    styles = set()
    for p in paths("whatsapp"):
        first = p.read_text(encoding="utf-8").splitlines()[0]
        styles.add("android" if android.match(first) else "ios" if ios.match(first) else "?")
    assert styles == {"android", "ios"}


def test_people_csv_covers_every_sender() -> None:
    people = pl.read_csv(DATA / "people.csv")
    messages = pl.read_ndjson(DATA / "normalized" / "messages.jsonl", infer_schema_length=None)
    assert set(messages["sender_id"]) <= set(people["id"])
    zhang = people.filter(pl.col("id") == "zhangwei").row(0, named=True)
    assert zhang["supervisor"] == "zhaomin" and "agent" in zhang["roles"].split(";")
    assert {"slack", "wecom", "wechat", "whatsapp", "telegram", "discord"} == {i.split(":")[0] for i in zhang["identities"].split(";")}
    roles = {r for rs in people["roles"].drop_nulls() for r in rs.split(";")}
    assert {"agent", "team_lead", "legal", "executive", "operator", "admin", "auditor"} <= roles
