"""Make the committed known-answer archive (format version 1). Run once; never regenerate for a release.

    .venv/bin/python tests/known_answer/make_v1_archive.py

The archive under tests/known_answer/v1-archive/ must keep verifying, with the
same record hashes and Merkle roots, in every later version of investigator
(tests/known_answer/test_known_answer.py). If a format change breaks it, that
is a new format version with a reader for version 1 — not a new fixture.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from investigator import schema
from investigator.vault.ingest import ingest_frames
from investigator.custody.file import create_archive
from investigator.custody.file import unlock_archive

HERE = Path(__file__).resolve().parent
PASSPHRASE = "known-answer-v1"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def messages() -> pl.DataFrame:
    rows = [
        {"message_id": "ka-1", "source": "jsonl", "conversation_id": "c-1", "conversation_name": "客服-王芳",
         "conversation_type": "direct", "ts": datetime(2026, 11, 18, 6, 20, tzinfo=timezone.utc), "sender_id": "zhangwei",
         "sender_name": "张伟", "recipients": ["wangfang"], "msg_type": "text", "text": "您好，您的订单已经安排配送。"},
        {"message_id": "ka-2", "source": "jsonl", "conversation_id": "c-1", "conversation_name": "客服-王芳",
         "conversation_type": "direct", "ts": datetime(2026, 11, 18, 6, 35, 0, 123456, tzinfo=timezone.utc),
         "sender_id": "wangfang", "sender_name": "王芳", "recipients": ["zhangwei"], "msg_type": "text",
         "text": "我要投诉！\n已经晚了一个小时了 \"quote\" \\ back"},
        {"message_id": "ka-3", "source": "jsonl", "conversation_id": "c-1", "conversation_type": "direct",
         "ts": datetime(2026, 11, 18, 7, 1, tzinfo=timezone.utc), "sender_id": "zhangwei", "msg_type": "file",
         "attachment_name": "赔偿方案.pdf", "attachment_size": 20480,
         "attachment_sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    ]
    return schema.conform(pl.DataFrame(rows, schema_overrides={"ts": schema.UTC_US}), "messages")


def events() -> pl.DataFrame:
    rows = [{"event_id": "ka-e1", "source": "events-jsonl", "ts": datetime(2026, 11, 18, 6, 40, tzinfo=timezone.utc),
             "actor": "system", "event_type": "delivery_delay_alert", "host": "ops-01", "details": '{"order":"A1"}'}]
    return schema.conform(pl.DataFrame(rows, schema_overrides={"ts": schema.UTC_US}), "events")


def main() -> None:
    target = HERE / "v1-archive"
    if target.exists():
        shutil.rmtree(target)
    archive = create_archive(target, passphrase=PASSPHRASE, kdf_n=2**14, actor="known-answer", now=NOW)
    keys = unlock_archive(archive, PASSPHRASE)
    ingest_frames(archive, messages=messages(), events=events(), keys=keys, actor="known-answer", now=NOW,
                  sources=[{"name": "known.jsonl", "sha256": "0" * 64, "size": 0, "format": "jsonl"}], skipped=[])
    for lock in (target / "locks", target / "staging"):
        shutil.rmtree(lock, ignore_errors=True)
    (target / "audit" / ".lock").unlink(missing_ok=True)
    manifest = archive.manifests()[0]
    expected = {"merkle_root": manifest.body["merkle"]["root"], "manifest_sha256": manifest.digest,
                "record_hashes": {mid: h for mid, h in zip(messages()["message_id"], schema.record_hashes(messages(), "messages"))},
                "info": {k: v for k, v in archive.info().items() if k != "archive_id"}}
    (HERE / "v1-expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(expected, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
