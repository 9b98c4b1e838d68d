"""Importer throughput: Slack folder export and WhatsApp text export, against orjson alone.

    python benchmarks/bench_importers.py --messages 200000

Generates (in a temp dir) a Slack-shaped export of N messages (a folder of day
files over a few channels) and a WhatsApp .txt of N lines, then prints messages/s
for ``read_export`` and, for Slack, the ratio to ``orjson.loads`` of every day
file (the practical ceiling: reading JSON without building any records).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _jsonline import add_json_flag, emit, human_output  # noqa: E402
from investigator.importers import ImportOptions, read_export  # noqa: E402

WORDS = ("合同", "加班费", "meeting", "tomorrow", "ok", "发给法务了", "please", "check", "订单", "客户", "refund", "👍")


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 14)))


def make_slack(root: Path, n: int, per_day: int = 500) -> int:
    rng = random.Random(7)
    channels = [{"id": f"C{i:04d}", "name": f"chan-{i}", "members": ["U1", "U2", "U3"]} for i in range(8)]
    (root / "channels.json").write_bytes(orjson.dumps(channels))
    (root / "users.json").write_bytes(orjson.dumps([{"id": f"U{i}", "real_name": f"User {i}"} for i in range(1, 4)]))
    written = 0
    day = 0
    start = 1_600_000_000
    while written < n:
        for channel in channels:
            if written >= n:
                break
            count = min(per_day, n - written)
            base = start + day * 86_400
            messages = []
            for k in range(count):
                ts = f"{base + k * 10}.{rng.randint(0, 999_999):06d}"
                msg = {"type": "message", "user": f"U{rng.randint(1, 3)}", "text": _text(rng), "ts": ts,
                       "client_msg_id": f"{rng.getrandbits(64):016x}"}
                if k % 10 == 3:
                    msg["thread_ts"] = messages[0]["ts"]
                messages.append(msg)
            folder = root / channel["name"]
            folder.mkdir(exist_ok=True)
            date = time.strftime("%Y-%m-%d", time.gmtime(base))
            (folder / f"{date}.json").write_bytes(orjson.dumps(messages, option=orjson.OPT_INDENT_2))
            written += count
        day += 1
    return written


def make_whatsapp(path: Path, n: int) -> int:
    rng = random.Random(11)
    lines = []
    minute = 0
    for i in range(n):
        if i % 50 == 49:
            lines.append(_text(rng))  # a continuation line
            continue
        minute += rng.randint(0, 3)
        day, rem = divmod(minute, 1440)
        hour, mins = divmod(rem, 60)
        d = 1 + day % 28
        m = 1 + (day // 28) % 12
        y = 20 + day // 336
        lines.append(f"{d}/{m}/{y}, {hour:02d}:{mins:02d} - {rng.choice(('Alice', 'Bob', '张伟'))}: {_text(rng)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return n


class Timer:
    """Wall and CPU seconds of a block (CPU time is steadier on a shared, loaded machine;
    it includes polars' worker threads)."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def bench_slack(root: Path) -> tuple[int, Timer, Timer]:
    with Timer() as baseline:
        for day_file in root.glob("*/*.json"):
            orjson.loads(day_file.read_bytes())
    with Timer() as parsed:
        result = read_export(root, format="slack")
    return result.messages.height, parsed, baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages / lines to generate")
    add_json_flag(parser)
    args = parser.parse_args()
    with human_output(args):
        figures = run(args.messages)
    emit("importers", figures)


def run(messages: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "slack"
        root.mkdir()
        make_slack(root, messages)
        rows, parsed, baseline = bench_slack(root)
        print(f"slack: {rows} messages in {parsed.wall:.2f} s = {rows / parsed.wall:,.0f} messages/s; "
              f"orjson.loads alone {baseline.wall:.2f} s = {rows / baseline.wall:,.0f} messages/s; "
              f"ratio {baseline.wall / parsed.wall:.2f}x "
              f"(CPU: {parsed.cpu:.2f} s vs {baseline.cpu:.2f} s, {baseline.cpu / parsed.cpu:.2f}x)")
        slack = {"messages": rows, "wall_s": round(parsed.wall, 3), "cpu_s": round(parsed.cpu, 3),
                 "orjson_wall_s": round(baseline.wall, 3), "orjson_cpu_s": round(baseline.cpu, 3),
                 "vs_orjson": round(baseline.wall / parsed.wall, 3), "vs_orjson_cpu": round(baseline.cpu / parsed.cpu, 3)}
        chat = Path(tmp) / "WhatsApp Chat with Bench.txt"
        make_whatsapp(chat, messages)
        with Timer() as parsed:
            result = read_export(chat, format="whatsapp", options=ImportOptions(date_order="dmy"))
        with Timer() as split:
            chat.read_bytes().split(b"\n")
        rows = result.messages.height
        print(f"whatsapp: {messages} lines -> {rows} messages in {parsed.wall:.2f} s = "
              f"{rows / parsed.wall:,.0f} messages/s (CPU {parsed.cpu:.2f} s; "
              f"reading + splitting lines alone: {split.wall:.2f} s)")
        whatsapp = {"lines": messages, "messages": rows, "wall_s": round(parsed.wall, 3), "cpu_s": round(parsed.cpu, 3),
                    "split_lines_s": round(split.wall, 3)}
    return {"slack": slack, "whatsapp": whatsapp}

if __name__ == "__main__":
    main()
