"""Benchmark: open a case and load a 30-day window vs. polars.read_parquet of the same rows.

    .venv/bin/python benchmarks/bench_loader.py --messages 5000000 --work /tmp/bench-loader

Builds (once, reused from --work) a year of generated messages (20,000
conversations) as an encrypted archive with demo people and grants, and the same
rows as plain zstd Parquet, one file per day. Then, each in a fresh subprocess
so peak memory is its own:

1. open_case (grant, identity, policy) + case.messages() for 30 days;
2. polars.read_parquet of the same 30 days of plain files, filtered to the window;
3. a selective lazy query (one sender, one keyword, 90 days) through case.messages(lazy=True);
4. its baseline for memory: the same query over one group of chunks (what the lazy path holds at
   once: its result + one group of LAZY_GROUP hourly chunks, a little more than a day's partition);
5. cost growth: open + load + a 20-keyword search over 30, 120 and 365 days.

Prints seconds, MB/s, peak RSS and the ratios, then one JSON line with every figure (``--json``:
that line alone on stdout); record them in docs/benchmarks.md. Aims (issue #18): load <= 1.3x
plain Parquet; open + load well under 5 s; the lazy query's peak RSS growth <= 2x of one group's;
load + search cost linear or better in the window.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _jsonline import add_json_flag, emit, human_output  # noqa: E402
from investigator.custody.file import create_archive  # noqa: E402
from investigator.custody.file import unlock_archive  # noqa: E402

PASS = "bench-passphrase"
START = datetime(2025, 12, 1, tzinfo=timezone.utc)
WINDOW = (datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 3, 31, tzinfo=timezone.utc))
LAZY_WINDOW = (datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 5, 30, tzinfo=timezone.utc))
NOW = datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc)
GROWTH = {"window30": WINDOW, "window120": (datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 5, 1, tzinfo=timezone.utc)),
          "window365": (START, datetime(2026, 11, 27, tzinfo=timezone.utc))}  # the year up to NOW (361 days)
TWENTY = ["加班费", "投诉", "回扣", "辱骂", "password", "vpn", "泄密", "密码", "删除日志", "改记录",
          "红包", "返点", "贿赂", "私下", "报销", "离职", "赔偿", "封口费", "转账", "违规"]


def rss_mb() -> float:
    """Peak resident memory of this process so far, in MB.

    VmHWM of /proc/self/status where there is one: ``ru_maxrss`` survives exec, so a measurement
    started by a parent that had just built a 5M-message frame would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(work: Path, n: int) -> None:
    import polars as pl

    from investigator import _crypto
    from investigator.authority.grants import approve, new_request
    from investigator.demo.people import DEMO_ONLY_PASSPHRASE, DEMO_ONLY_TOTP_SECRETS, demo_authority
    from investigator.authority.identity import unlock_person_key
    from investigator.vault.ingest import ingest_frames
    from investigator.demo.samples import generate_messages

    if (work / "ready.json").exists():
        return
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    frame = generate_messages(n, seed=5, start=START.date(), days=365, conversations=20000)
    print(f"generated {frame.height:,} messages in {time.perf_counter() - t0:.0f} s", flush=True)
    plain = work / "plain"
    keyed = frame.with_columns(pl.col("ts").dt.to_string("%Y-%m-%d").alias("_day"))
    for part in keyed.partition_by("_day"):
        part.drop("_day").write_parquet(plain / f"{part['_day'][0]}.parquet", compression="zstd", mkdir=True)
    archive = create_archive(work / "archive", passphrase=PASS, kdf_n=2**14, now=NOW - timedelta(days=1))
    keys = unlock_archive(archive, PASS)
    t0 = time.perf_counter()
    ingest_frames(archive, messages=frame, events=None, sources=[], skipped=[], keys=keys, actor="bench",
                  now=NOW - timedelta(days=1))
    print(f"ingested in {time.perf_counter() - t0:.0f} s", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo_authority(archive, keys, now=NOW - timedelta(hours=2))
    grants = {}
    for name, (start, end), minutes in (("window30", WINDOW, 20), ("lazy90", LAZY_WINDOW, 10),  # codes in time order
                                        ("window120", GROWTH["window120"], 8), ("window365", GROWTH["window365"], 6)):
        when = NOW - timedelta(minutes=minutes)
        key = unlock_person_key(archive, "sunli", DEMO_ONLY_PASSPHRASE.format(person="sunli"),
                                key_dir=archive.root / "demo-keys")
        signed = new_request(archive, requester="sunli", signing_key=key, case="BENCH", purpose="internal_audit",
                             start=start, end=end, fields=("metadata", "content"), reason="benchmark", now=when)
        approver_key = unlock_person_key(archive, "zhouzong", DEMO_ONLY_PASSPHRASE.format(person="zhouzong"),
                                         key_dir=archive.root / "demo-keys")
        code = _crypto.totp(DEMO_ONLY_TOTP_SECRETS["zhouzong"], when.timestamp())
        grants[name] = approve(archive, keys, signed.id, approver="zhouzong", signing_key=approver_key, totp=code,
                               now=when).grant_path.stem
    sender = frame.filter(pl.col("ts").is_between(*LAZY_WINDOW))["sender_id"].mode()[0]
    (work / "ready.json").write_text(json.dumps({"grants": grants, "sender": sender, "n": frame.height}))


def measure(work: Path, what: str) -> dict:
    import polars as pl

    ready = json.loads((work / "ready.json").read_text())
    if what != "plain":
        import investigator.access.case  # noqa: F401 - imports count towards the baseline, not the load
    base = rss_mb()
    if what == "plain":
        t0 = time.perf_counter()
        days = [(WINDOW[0] + timedelta(days=i)).strftime("%Y-%m-%d") for i in range((WINDOW[1] - WINDOW[0]).days)]
        files = [work / "plain" / f"{d}.parquet" for d in days if (work / "plain" / f"{d}.parquet").exists()]
        frame = pl.read_parquet(files).filter(pl.col("ts").is_between(*WINDOW, closed="left"))
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "rows": frame.height, "mb": frame.estimated_size() / 1e6,
                "peak_mb": rss_mb() - base}
    from investigator import _crypto
    from investigator.demo.people import DEMO_ONLY_TOTP_SECRETS
    from investigator.access.case import open_case

    grant = ready["grants"]["window30" if what == "case" else what.split(":")[1] if ":" in what else "lazy90"]
    # TOTP codes are single-use: every measurement run opens its cases at later times (a slot per measurement)
    run = int((work / "runs").read_text()) if (work / "runs").exists() else 0
    slot = ("case", "lazy", "group", "growth:window30", "growth:window120", "growth:window365").index(what)
    when = NOW + timedelta(minutes=10 * run + slot + 1)
    code = _crypto.totp(DEMO_ONLY_TOTP_SECRETS["sunli"], when.timestamp())
    t0 = time.perf_counter()
    case = open_case(work / "archive", grant=grant, person="sunli", totp=code, passphrase=PASS, now=when)
    opened = time.perf_counter() - t0
    searched = 0.0
    if what == "case":
        frame = case.messages(progress=False)
    elif what == "lazy":
        frame = selective(case.messages(lazy=True), ready["sender"]).collect()
    elif what == "group":  # the memory baseline: the lazy query's work for one group only
        from concurrent.futures import ThreadPoolExecutor

        from investigator.access.case import LAZY_GROUP
        from investigator.access.scan import scan_chunks

        with ThreadPoolExecutor(2) as pool:
            [piece], stats = scan_chunks(case.archive, case._entries("messages")[:LAZY_GROUP], case._keys_for_scan(),
                                         case._parts("messages"), case._row_filter("messages"), pool,
                                         group_size=LAZY_GROUP)
        case.stats += stats
        frame = selective(piece.lazy(), ready["sender"]).collect()
    else:  # growth: open + load + a 20-keyword search
        from investigator.analysis import search

        loaded = case.messages(progress=False)
        t1 = time.perf_counter()
        frame = search(loaded, " OR ".join(TWENTY))
        searched = time.perf_counter() - t1
        frame = frame.select("message_id") if frame.height else frame
        rows_loaded = loaded.height
        del loaded
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "open_seconds": opened, "rows": frame.height, "mb": frame.estimated_size() / 1e6,
           "peak_mb": rss_mb() - base, "chunks": case.stats.chunks_decrypted}
    if what.startswith("growth"):
        out.update(search_seconds=searched, rows_loaded=rows_loaded)
    return out


def selective(frame, sender: str):  # type: ignore[no-untyped-def]
    """The selective query of measurements 3 and 4: one sender and one keyword."""
    import polars as pl

    return frame.filter(pl.col("sender_id") == sender).filter(pl.col("text_norm").str.contains("项目", literal=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-loader"))
    parser.add_argument("--measure", choices=["plain", "case", "lazy", "group", "growth:window30", "growth:window120",
                                              "growth:window365"], help=argparse.SUPPRESS)
    parser.add_argument("--no-growth", action="store_true", help="skip the 30/120/365-day load + search measurements")
    add_json_flag(parser)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.work, args.measure)))
        return
    with human_output(args):
        figures = run(args)
    emit("loader", figures)


def run(args: argparse.Namespace) -> dict:
    build(args.work, args.messages)
    runs = args.work / "runs"
    runs.write_text(str(int(runs.read_text()) + 1 if runs.exists() else 1))
    results = {}
    growth = [] if args.no_growth else [f"growth:{g}" for g in GROWTH]
    for what in ("plain", "case", "lazy", "group", *growth):
        out = subprocess.run([sys.executable, __file__, "--work", str(args.work), "--measure", what],
                             capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if out.returncode:
            sys.exit(out.stderr)
        results[what] = json.loads(out.stdout.strip().splitlines()[-1])
    plain, case, lazy, group = results["plain"], results["case"], results["lazy"], results["group"]
    print(f"\narchive: {json.loads((args.work / 'ready.json').read_text())['n']:,} messages over 365 days")
    print(f"{'':36}{'seconds':>9}{'rows':>11}{'MB/s':>9}{'peak +MB':>9}")
    for name, r in (("plain read_parquet (30 days)", plain), ("open_case + messages() (30 days)", case),
                    ("lazy: one sender + keyword (90 d)", lazy), ("same query, one group of chunks", group)):
        print(f"{name:36}{r['seconds']:>9.2f}{r['rows']:>11,}{r['mb'] / r['seconds']:>9.0f}{r['peak_mb']:>9.0f}")
    print("(MB/s: in-memory size of the result per second; peak +MB: growth of the process's peak RSS during the"
          " measurement, after imports)")
    print(f"\nopen (grant + identity + policy): {case['open_seconds']:.2f} s; chunks decrypted: {case['chunks']}")
    print(f"load ratio (case / plain): {case['seconds'] / plain['seconds']:.2f}x   (aim <= 1.3x; whole retrieval "
          f"aim < 5 s)")
    print(f"lazy query: result {lazy['mb']:.1f} MB, peak +{lazy['peak_mb']:.0f} MB over {lazy['chunks']} chunks; "
          f"one group: +{group['peak_mb']:.0f} MB over {group['chunks']} chunks; ratio "
          f"{lazy['peak_mb'] / max(group['peak_mb'], 1.0):.2f}x (aim <= 2x)")
    figures = {"messages": json.loads((args.work / "ready.json").read_text())["n"],
               "plain": plain, "case": case, "lazy": lazy, "group": group,
               "load_ratio": round(case["seconds"] / plain["seconds"], 3),
               "lazy_peak_ratio": round(lazy["peak_mb"] / max(group["peak_mb"], 1.0), 3)}
    if growth:
        print(f"\n{'window':>8}{'rows':>11}{'load s':>9}{'search s':>10}{'total s':>9}{'per M rows':>11}")
        per = {}
        for name in GROWTH:
            r = results[f"growth:{name}"]
            load_s = r["seconds"] - r["search_seconds"]
            per[name] = r["seconds"] / max(r["rows_loaded"], 1) * 1e6
            days = (GROWTH[name][1] - GROWTH[name][0]).days
            print(f"{str(days) + ' d':>8}{r['rows_loaded']:>11,}{load_s:>9.2f}{r['search_seconds']:>10.3f}"
                  f"{r['seconds']:>9.2f}{per[name]:>11.2f}")
        figures["growth"] = {name: results[f"growth:{name}"] for name in GROWTH}
        figures["growth_seconds_per_million_rows"] = {k: round(v, 3) for k, v in per.items()}
    return figures

if __name__ == "__main__":
    main()
