"""Search throughput over N generated messages, against ripgrep on the same texts. Prints figures.

    .venv/bin/python benchmarks/bench_search.py --messages 1000000

Measures (best of ``--repeat`` runs, wall clock):

* normalization at ingest: ``add_normalized_column`` (Polars ``str.replace_many`` with the character
  table) and the Python ``str.translate`` path;
* ``search`` in exact and word mode, 1 keyword and 20 keywords, with ``text_norm`` precomputed (the
  "at ingest" design) and computed at query time;
* the same search split in two halves run on two threads, and with ``search``'s own pre-filter held to
  one core (``SPLIT = 1``; by default it scans a large frame in slices on every core);
* pinyin mode (exact, stored ``text_norm``), 1 and 20 keywords;
* ``rg -F -c`` over the same texts written one per line (ripgrep's own multi-threading, default).

MB/s counts the UTF-8 bytes of the original texts. Each figure is wall clock and, beside it, the CPU
seconds of the process (all Polars threads): on a shared machine the CPU time is the steadier figure. Texts are built from the sample generator's
templates (three per message plus a random number, so nearly all are distinct) with the labeled
evasions mixed in at about 1 in 2,000 messages.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from investigator.analysis import add_normalized_column, normalize_text, search  # noqa: E402
from investigator.analysis.normalize import tables  # noqa: E402
search_module = importlib.import_module("investigator.analysis.search")  # the module (the package exports the function)
from _jsonline import add_json_flag, emit, human_output  # noqa: E402

ONE = ["加班费"]
TWENTY = ["加班费", "投诉", "回扣", "辱骂", "password", "vpn", "泄密", "密码", "删除日志", "改记录",
          "红包", "返点", "贿赂", "私下", "报销", "离职", "赔偿", "封口费", "转账", "违规"]
EVASIONS = ["加 班 费还没到", "加\u3000班\u3000费少算", "加/班/费标准", "加\u200b班\u200b费", "加班費按小時",
            "ＶＰＮ账号", "PassWord expires", "投 诉了", "回.扣那部分", "辱-骂了",
            # issue #16: look-alikes, symbols, marks, format characters, homophones and pinyin mixtures
            "p\u0430ssword reset", "加🔥班→费", "pa\u0336ss\u00adword", "加班非的事", "jia ban fei", "加ban费"]


def make_texts(n: int, seed: int = 7) -> pl.DataFrame:
    """``n`` messages with ~100-byte texts, nearly all distinct."""
    try:
        from investigator.demo.samples import generate_messages

        pool = generate_messages(min(n, 20000), seed=seed, start=date(2026, 11, 2), days=28)["text"].drop_nulls()
    except ImportError:  # the generator is someone else's module: keep the benchmark runnable without it
        pool = pl.Series(["地址已帮您修改为北区停车场", "请问可以改一下送餐地址吗?", "Can we move the sync to 10am?"])
    k = len(pool)
    idx = pl.int_range(n, eager=True)
    pick = lambda salt: ((idx * 2654435761 + salt * 97531) % 1000003) % k  # noqa: E731
    frame = pl.DataFrame({"i": idx}).with_columns(
        pl.concat_str([pool.gather(pick(1)), pool.gather(pick(2)), pool.gather(pick(3)),
                       ((idx * 7919) % 100000).cast(pl.String)], separator=" ").alias("text"),
        pl.format("m{}", idx).alias("message_id"))
    # evasions rare, as real hits are: one message in 2,000 starts with one
    evasion = pl.Series(EVASIONS).gather(idx // 2000 % len(EVASIONS))
    frame = frame.with_columns(pl.when(idx % 2000 == 0).then(pl.concat_str([evasion, pl.col("text")], separator=" "))
                               .otherwise(pl.col("text")).alias("text"))
    return frame.drop("i")


CPU: dict[float, float] = {}  # wall seconds of a best run -> its CPU seconds


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """The best wall time of ``repeat`` runs (its CPU time is kept in ``CPU``) and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall = time.perf_counter() - t0
        CPU[wall] = time.process_time() - c0
        times.append(wall)
    return min(times), out


def rg_count(path: Path, words: list[str], repeat: int) -> tuple[float, int] | None:
    rg = shutil.which("rg")
    if rg is None:
        return None
    args = [rg, "-F", "-c"] + [a for w in words for a in ("-e", w)] + [str(path)]
    secs, out = best(lambda: subprocess.run(args, capture_output=True, text=True, check=False).stdout, repeat)
    return secs, int(str(out).strip() or 0)


def two_threads(frame: pl.DataFrame, query: str, mode: str) -> pl.DataFrame:
    half = frame.height // 2
    parts = [frame.slice(0, half), frame.slice(half)]
    with ThreadPoolExecutor(2) as pool:
        return pl.concat(list(pool.map(lambda p: search(p, query, mode=mode), parts)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    add_json_flag(ap)
    args = ap.parse_args()
    with human_output(args):
        figures = run(args.messages, args.repeat)
    emit("search", figures)


def run(n: int, repeat: int) -> dict:

    print(f"# bench_search: {n:,} messages, {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, Polars {pl.__version__}, {time.strftime('%Y-%m-%d')}")
    t0 = time.perf_counter()
    tables()
    print(f"normalization tables built in {time.perf_counter() - t0:.2f} s (once per process)")
    t0 = time.perf_counter()
    search(pl.DataFrame({"message_id": ["w"], "text": ["加班费"]}), "加班费 OR password", mode="word")
    print(f"jieba dictionary and English lexicon loaded in {time.perf_counter() - t0:.2f} s "
          f"(once per process, first word search)")
    t0 = time.perf_counter()
    search(pl.DataFrame({"message_id": ["w"], "text": ["加班费"]}), "加班费", pinyin=True)
    print(f"pinyin readings loaded in {time.perf_counter() - t0:.2f} s (once per process, first pinyin search)")
    t0 = time.perf_counter()
    frame = make_texts(n)
    mb = frame["text"].str.len_bytes().sum() / 1e6
    print(f"generated {n:,} texts, {mb:,.0f} MB, in {time.perf_counter() - t0:.1f} s")

    secs, stored = best(lambda: add_normalized_column(frame), 1)
    norm_s = secs
    print(f"normalize at ingest, Polars replace_many: {secs:6.2f} s  {mb / secs:7.1f} MB/s  {n / secs:11,.0f} msg/s"
          f"  (CPU {CPU[secs]:.2f} s)")
    sample = frame["text"].head(min(n, 500_000)).to_list()
    smb = sum(len(s.encode()) for s in sample) / 1e6
    secs, _ = best(lambda: [normalize_text(s) for s in sample], 1)
    print(f"normalize in Python, str.translate:       {secs * n / len(sample):6.2f} s  {smb / secs:7.1f} MB/s  "
          f"(measured on {len(sample):,}, CPU {CPU[secs] * n / len(sample):.2f} s)")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "texts.txt"
        frame.select(pl.col("text").str.replace_all("\n", " ")).write_csv(path, include_header=False, quote_style="never")
        rg = {label: rg_count(path, words, repeat) for label, words in (("1", ONE), ("20", TWENTY))}
    if rg["1"] is None:
        print("ripgrep (rg) not found: no ripgrep comparison")

    rows = []
    for label, words in (("1", ONE), ("20", TWENTY)):
        query = " OR ".join(words)
        for mode in ("exact", "word"):
            for where, data in (("stored", stored), ("query-time", frame)):
                if mode == "word" and where == "query-time" and label == "1":
                    continue
                secs, hits = best(lambda: search(data, query, mode=mode), repeat)
                rows.append((label, mode, where, secs, hits.height, CPU[secs]))  # type: ignore[union-attr]
        secs, hits = best(lambda: two_threads(stored, query, "exact"), repeat)
        rows.append((label, "exact", "stored, 2 halves", secs, hits.height, CPU[secs]))
        split = search_module.SPLIT
        search_module.SPLIT = 1  # the same search with the pre-filter on one core (before issue #18)
        try:
            secs, hits = best(lambda: search(stored, query, mode="exact"), repeat)
        finally:
            search_module.SPLIT = split
        rows.append((label, "exact", "stored, 1 core", secs, hits.height, CPU[secs]))
        secs, hits = best(lambda: search(stored, query, pinyin=True), repeat)
        rows.append((label, "exact", "stored, pinyin", secs, hits.height, CPU[secs]))

    print(f"\n{'kw':>3} {'mode':6} {'text_norm':18} {'seconds':>8} {'CPU s':>7} {'MB/s':>8} {'msg/s':>12} {'hits':>8} "
          f"{'vs rg':>6}")
    for label, mode, where, secs, hits, cpu in rows:
        ref = rg[label]
        ratio = f"{ref[0] / secs:5.2f}x" if ref else "  n/a"
        print(f"{label:>3} {mode:6} {where:18} {secs:8.3f} {cpu:7.3f} {mb / secs:8.1f} {n / secs:12,.0f} {hits:8,} "
              f"{ratio:>6}")
    for label in ("1", "20"):
        ref = rg[label]
        if ref:
            print(f"{label:>3} rg -F -c (plain text, no normalization) {ref[0]:8.3f} s {mb / ref[0]:8.1f} MB/s "
                  f"{n / ref[0]:12,.0f} msg/s {ref[1]:8,} lines")
    exact = {(r[0], r[2]): r[3] for r in rows if r[1] == "exact"}
    word = {(r[0], r[2]): r[3] for r in rows if r[1] == "word"}
    for key, secs in word.items():
        print(f"word / exact, {key[0]} keyword(s), {key[1]}: {secs / exact[key]:.2f}x")
    return {
        "messages": n, "text_mb": round(mb, 1), "normalize_s": round(norm_s, 4),
        "ripgrep_s": {label: (round(ref[0], 4) if ref else None) for label, ref in rg.items()},
        "runs": [{"keywords": int(label), "mode": mode, "text_norm": where, "seconds": round(secs, 4),
                  "cpu_s": round(cpu, 4), "hits": hits,
                  "vs_ripgrep": round(rg[label][0] / secs, 3) if rg[label] else None}
                 for label, mode, where, secs, hits, cpu in rows],
        "word_over_exact": {f"{k[0]}/{k[1]}": round(v / exact[k], 3) for k, v in word.items()}}

if __name__ == "__main__":
    main()
