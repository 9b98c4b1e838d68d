"""dedupe at 1x / 4x / 16x rows: one message exported by several tools, merged column-wise.

    .venv/bin/python benchmarks/bench_dedupe.py               # 5,000 distinct messages x 4 exports at 1x
    .venv/bin/python benchmarks/bench_dedupe.py --base 1000 --exports 8 --repeat 1

Each distinct message is written by ``--exports`` sources (WeCom with milliseconds, Slack, Telegram,
WhatsApp with minutes ...), senders linked through a directory of 200 people, plus 10 % of the rows
repeated inside one export (which must stay separate). Prints seconds per scale, the ratio to 1x
(linear: 4 and 16) and one JSON line.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _jsonline import add_json_flag, emit, human_output  # noqa: E402
from investigator.analysis import dedupe  # noqa: E402

SOURCES = ("wecom", "slack", "telegram", "whatsapp", "discord", "wechat-pywxdump", "wechat-wechatmsg", "sample")
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def frame(n: int, exports: int) -> tuple[pl.DataFrame, dict[str, list[str]]]:
    people = {f"p{i}": [f"p{i}", f"人{i}", *(f"{s}:{s[:2]}{i}" for s in SOURCES)] for i in range(200)}
    rows = []
    for i in range(n):
        at = T0 + timedelta(seconds=37 * i, milliseconds=i % 1000)
        who = i % 200
        for source in SOURCES[:exports]:
            ts = at.replace(second=0, microsecond=0) if source in ("whatsapp", "wechat-pywxdump") else at
            rows.append({"message_id": f"{source}-{i}", "source": source, "source_file": f"{source}.export",
                         "ts": ts, "sender_id": f"{source[:2]}{who}", "sender_name": f"人{who}",
                         "text": f"message {i % 997} about order {i}", "record_hash": f"{source}-{i}"})
            if i % 10 == 0 and source == "wecom":
                rows.append({**rows[-1], "message_id": f"{source}-{i}-again", "record_hash": f"{source}-{i}-again"})
    out = pl.DataFrame(rows).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
    return out, {p: [a.split(":", 1)[-1] for a in accounts] for p, accounts in people.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=5000)
    parser.add_argument("--exports", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    add_json_flag(parser)
    args = parser.parse_args()
    with human_output(args):
        results = run(args)
    emit("dedupe", {"exports": args.exports, "base": args.base, "results": results,
                    "growth_16x": round(results[16]["seconds"] / results[1]["seconds"], 2)})


def run(args: argparse.Namespace) -> dict:
    results = {}
    for scale in (1, 4, 16):
        messages, identities = frame(args.base * scale, args.exports)
        best = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            distinct = dedupe(messages, identities=identities)
            best = min(best, time.perf_counter() - started)
        expected = args.base * scale + len(range(0, args.base * scale, 10))
        assert distinct.height == expected, (distinct.height, expected)
        results[scale] = {"rows": messages.height, "distinct": distinct.height, "seconds": round(best, 4)}
    print(f"{'scale':>5} {'rows':>9} {'distinct':>9} {'seconds':>8} {'ratio':>6}")
    for scale, r in results.items():
        print(f"{scale:>5} {r['rows']:>9} {r['distinct']:>9} {r['seconds']:>8.3f} "
              f"{r['seconds'] / results[1]['seconds']:>6.1f}")
    return results


if __name__ == "__main__":
    main()
