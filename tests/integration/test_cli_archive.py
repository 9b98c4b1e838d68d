"""The archive commands end to end through the real CLI: init, ingest, info, verify, audit; bad input."""

import json
import os
import select
import subprocess
import sys

import pytest

from support import DATA_SAMPLES, archive_snapshot

PASS = "cli-test-passphrase"


def run(*args, passphrase=PASS, check=True):
    env = {**os.environ, "INVESTIGATOR_PASSPHRASE": passphrase}
    out = subprocess.run([sys.executable, "-m", "investigator", *map(str, args)], env=env, capture_output=True,
                         text=True, timeout=300)
    if check and out.returncode:
        raise AssertionError(f"{args}: exit {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


@pytest.fixture
def archive(tmp_path):
    run("init", tmp_path / "a", "--kdf-cost", "14", "--tz", "Asia/Shanghai")
    return tmp_path / "a"


def test_init_ingest_info_verify_audit(archive):
    first = run("ingest", archive, DATA_SAMPLES / "normalized" / "messages.jsonl", "--json")
    added = json.loads(first.stdout)
    assert added["messages_added"] == 3000 and added["batch_seq"] == 1
    again = json.loads(run("ingest", archive, DATA_SAMPLES / "normalized" / "messages.csv", "--json").stdout)
    assert again["batch_seq"] is None and again["duplicates"] == 3000  # the same messages, as CSV
    info = json.loads(run("info", archive, "--json").stdout)
    assert {"messages", "events", "partitions", "first_ts", "last_ts"} <= set(info) and info["messages"] == 3000
    assert "加班" not in run("info", archive, "--json").stdout  # counts only
    assert "intact" in run("verify", archive).stdout
    assert "intact" in run("verify", archive, "--offline", passphrase="").stdout
    assert "intact" in run("audit", "verify", archive).stdout
    entries = json.loads(run("audit", "show", archive, "--json", "--limit", "0").stdout)
    actions = [e["action"] for e in entries]
    assert actions[:3] == ["init", "unlock", "ingest"] and "verify" in actions
    # every unlock of the master key is audited with who and which command (separation of duties)
    unlocks = [e for e in entries if e["action"] == "unlock"]
    assert unlocks[0]["details"]["purpose"] == "investigator ingest" and unlocks[0]["outcome"] == "ok"
    assert any(e["details"]["purpose"] == "investigator verify" for e in unlocks)


def test_tampering_fails_verify_with_the_file_named(archive):
    run("ingest", archive, DATA_SAMPLES / "events" / "events.jsonl")
    victim = sorted(archive.glob("batches/00000001/events/*/*.chk"))[3]
    data = bytearray(victim.read_bytes())
    data[40] ^= 0xFF
    victim.write_bytes(bytes(data))
    out = run("verify", archive, check=False)
    assert out.returncode == 4 and victim.name in out.stderr
    log = archive / "audit" / "log.jsonl"
    log.write_text("\n".join(log.read_text().splitlines()[:-2]) + "\n")
    out = run("audit", "verify", archive, check=False)
    assert out.returncode == 4 and "truncated" in out.stderr


BAD = {
    "unreadable": (lambda p: p.write_bytes(b"\x00\x01garbage\xff" * 10), "bad.jsonl", "bad.jsonl"),
    "missing column": (lambda p: p.write_text("message_id,text\n1,hello\n", encoding="utf-8"), "bad.csv", "ts"),
    "invalid timestamp": (lambda p: p.write_text('{"message_id": "1", "ts": "yesterday", "text": "x"}\n',
                                                  encoding="utf-8"), "bad.jsonl", "line 1"),
    "non-utf8": (lambda p: p.write_bytes('{"message_id": "1", "ts": "2026-11-18T06:00:00Z", "text": "'.encode()
                                         + b"\xff\xfe\xfa" + b'"}\n'), "bad.jsonl", "UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_named_and_changes_nothing(archive, tmp_path, case):
    make, name, expected = BAD[case]
    run("ingest", archive, DATA_SAMPLES / "events" / "events.jsonl")
    before = archive_snapshot(archive)
    bad = tmp_path / name
    make(bad)
    fmt = "csv" if name.endswith(".csv") else "jsonl"
    out = run("ingest", archive, bad, "--format", fmt, check=False)
    assert out.returncode == 6, out.stderr
    assert name in out.stderr and expected in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert archive_snapshot(archive) == before
    last = json.loads(run("audit", "show", archive, "--json", "--limit", "1").stdout)[-1]
    assert (last["action"], last["outcome"]) == ("ingest", "error")


def test_wrong_passphrase_is_refused_cleanly(archive):
    before = archive_snapshot(archive)
    out = run("ingest", archive, DATA_SAMPLES / "events" / "events.jsonl", passphrase="Zebra-Secret-991", check=False)
    assert out.returncode == 5 and "passphrase does not unlock" in out.stderr
    assert "Zebra-Secret-991" not in out.stderr + out.stdout
    assert archive_snapshot(archive) == before


@pytest.mark.slow
def test_demo_command_runs_the_main_job(tmp_path):
    out = run("demo", "--out", tmp_path / "demo", "--json", passphrase="")
    result = json.loads(out.stdout)
    assert result["verified"] and result["info"]["messages"] > 5000
    again = run("demo", "--out", tmp_path / "demo", "--json", passphrase="")  # replaces its own earlier demo
    assert json.loads(again.stdout)["verified"]
    (tmp_path / "not-demo").mkdir()
    (tmp_path / "not-demo" / "keep.txt").write_text("mine")
    refused = run("demo", "--out", tmp_path / "not-demo", passphrase="", check=False)
    assert refused.returncode == 3 and (tmp_path / "not-demo" / "keep.txt").read_text() == "mine"


def test_saved_column_mapping_file(archive, tmp_path):
    export = tmp_path / "dingtalk.csv"
    export.write_text("消息ID,发送时间,发送人,内容\nd1,2026-11-18 14:20:00,张伟,加班费的事明天说\n", encoding="utf-8")
    mapping = tmp_path / "dingtalk.toml"
    mapping.write_text('message_id = "消息ID"\nts = "发送时间"\nsender_name = "发送人"\ntext = "内容"\n',
                       encoding="utf-8")
    out = json.loads(run("ingest", archive, export, "--format", "csv", "--map-file", mapping, "--json").stdout)
    assert out["messages_added"] == 1
    info = json.loads(run("info", archive, "--json").stdout)
    assert info["first_ts"] == "2026-11-18T06:20:00.000000Z"  # local Asia/Shanghai time -> UTC


def test_audit_show_refuses_a_negative_limit(archive):
    # '--limit -1' once sliced entries[1:]: every entry but the first, shown as if it were the whole log
    refused = run("audit", "show", archive, "--limit", "-1", check=False)
    assert refused.returncode == 2 and "--limit" in refused.stderr and not refused.stdout
    assert [e["action"] for e in json.loads(run("audit", "show", archive, "--json", "--limit", "1").stdout)] == ["init"]


def test_authlog_year_and_a_mapping_typo_refused_before_the_unlock(archive, tmp_path):
    # docs/formats.md shows 'ingest ... --format authlog --year 2024'; the option was missing (exit 2), so a
    # copied auth.log took its year from the copy's modification time
    log = tmp_path / "auth.log"
    log.write_bytes((DATA_SAMPLES / "events" / "auth.log").read_bytes())
    out = json.loads(run("ingest", archive, log, "--format", "authlog", "--year", "2024", "--json").stdout)
    assert out["events_added"] > 0
    assert json.loads(run("info", archive, "--json").stdout)["first_ts"].startswith("2024-11-")
    typo = run("ingest", archive, log, "--format", "csv", "--map", "ts", check=False)
    assert typo.returncode == 2 and "FIELD=COLUMN" in typo.stderr
    last = json.loads(run("audit", "show", archive, "--json", "--limit", "1").stdout)[-1]
    assert last["action"] != "unlock"  # refused before the passphrase was used


def test_a_gbk_mapping_file_is_read_like_the_export_it_maps(archive, tmp_path):
    # a DingTalk mapping saved by a Windows editor (GBK) ended in a UnicodeDecodeError traceback; the CSV export
    # itself may be GB18030 (docs/formats.md), so its mapping may be too
    export = tmp_path / "dingtalk.csv"
    export.write_bytes("消息ID,发送时间,发送人,内容\nd1,2026-11-18 14:20:00,张伟,加班费的事明天说\n".encode("gbk"))
    mapping = tmp_path / "dingtalk.json"
    mapping.write_bytes('{"message_id": "消息ID", "ts": "发送时间", "sender_name": "发送人", "text": "内容"}'
                        .encode("gbk"))
    out = json.loads(run("ingest", archive, export, "--format", "csv", "--map-file", mapping, "--json").stdout)
    assert out["messages_added"] == 1
    mapping.write_bytes(b'{"ts": "\xff\xff"}')
    refused = run("ingest", archive, export, "--format", "csv", "--map-file", mapping, check=False)
    assert refused.returncode == 6 and "dingtalk.json, byte" in refused.stderr and "Traceback" not in refused.stderr


def test_audit_show_names_the_actions_when_a_filter_matches_no_entry(archive):
    # 'audit show --action key_release' (for key.release) printed nothing, as if no key had ever been released
    out = run("audit", "show", archive, "--action", "key_release", "--json")
    assert json.loads(out.stdout) == []
    assert "no entry has --action 'key_release'; this log has: init" in out.stderr
    out = run("audit", "show", archive, "--actor", "nobody")
    assert not out.stdout and "no entry has --actor 'nobody'" in out.stderr
    assert "note:" not in run("audit", "show", archive, "--action", "init").stderr


def test_a_second_writer_says_that_it_waits(archive):
    # a second ingest while another held the write lock waited in silence (22 s in the walk-through): it looked hung
    from investigator._fs import exclusive_lock

    with exclusive_lock(archive / "locks" / "write.lock"):
        proc = subprocess.Popen([sys.executable, "-m", "investigator", "ingest", str(archive),
                                 str(DATA_SAMPLES / "events" / "events.jsonl")],
                                env={**os.environ, "INVESTIGATOR_PASSPHRASE": PASS}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        said, _, _ = select.select([proc.stderr], [], [], 60)  # without the notice: nothing, for as long as it waits
        first = proc.stderr.readline() if said else ""
        assert "another writer holds this archive" in first and proc.poll() is None  # waiting, and saying so
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "batch 1" in out, err


def test_init_refuses_a_short_archive_passphrase(tmp_path):
    # 'INVESTIGATOR_PASSPHRASE=short investigator init' made an archive whose key file (in the folder every client
    # reads) only a 5-character passphrase protected
    out = run("init", tmp_path / "weak", "--kdf-cost", "14", passphrase="short", check=False)
    assert out.returncode == 2 and "at least 12" in out.stderr and "short" not in out.stderr
    assert not (tmp_path / "weak").exists()


def test_an_export_without_records_is_called_so(archive, tmp_path):
    # a header-only export (an export tool that found nothing) printed 'nothing new: 0 records already in the archive'
    header = tmp_path / "header.csv"
    header.write_text("message_id,ts,sender_name,text\n", encoding="utf-8")
    out = run("ingest", archive, header, "--format", "csv")
    assert "the input holds no records" in out.stdout and "already in the archive" not in out.stdout
