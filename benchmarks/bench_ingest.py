"""Benchmark: encrypted ingest vs. plain zstd Parquet partitions written by the same process.

    .venv/bin/python benchmarks/bench_ingest.py --messages 1000000

Prints messages/s and MB/s for both, and the ratios the issue sets as aims (issue #18:
encrypted ingest >= 0.5x plain Parquet write throughput, stretch 0.7x; archive size <= 1.3x), and the
record-hash step both ways in the same run: column-wise (canonical text in Polars + polars-hash SHA-256)
against a hashlib call per record. The last line is one JSON object (``--json``: that line alone on
stdout). Record the figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _jsonline import add_json_flag, emit, human_output  # noqa: E402
from investigator import schema  # noqa: E402
from investigator.vault import merkle  # noqa: E402
from investigator.vault.ingest import ingest_frames
from investigator.demo.samples import generate_messages
from investigator.custody.file import create_archive
from investigator.custody.file import unlock_archive


def realistic_texts(frame: pl.DataFrame) -> pl.DataFrame:
    """Make texts nearly unique, as real chats are: the generator draws from a few hundred sentences,
    which compress to almost nothing and would make any per-record overhead look huge."""
    other = frame["text"].shuffle(seed=3)
    third = frame["text"].shuffle(seed=4)
    return frame.with_columns(
        pl.when(pl.col("msg_type") == "text")
        .then(pl.concat_str([pl.col("text"), pl.lit("，"), other, pl.lit(" "), third, pl.lit(" #"),
                             pl.int_range(pl.len()).cast(pl.String)]))
        .otherwise(pl.col("text")).alias("text"))


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def plain_parquet(frame: pl.DataFrame, out: Path) -> None:
    """The baseline: the same rows as zstd Parquet, one folder per UTC day, one file per hour."""
    keyed = frame.with_columns(pl.col("ts").dt.to_string("%Y-%m-%d").alias("_day"),
                               pl.col("ts").dt.hour().alias("_hour"))
    for part in keyed.partition_by(["_day", "_hour"], maintain_order=True):
        folder = out / part["_day"][0]
        folder.mkdir(parents=True, exist_ok=True)
        part.drop("_day", "_hour").write_parquet(folder / f"{part['_hour'][0]:02d}.parquet", compression="zstd")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--formats", default="2,1",
                        help="archive chunk formats to ingest into, in order (default 2,1: format 2 is the figure, "
                             "format 1 the comparison)")
    add_json_flag(parser)
    args = parser.parse_args()
    with human_output(args):
        figures = run(args)
    emit("ingest", figures)


def hash_steps(frame: pl.DataFrame) -> dict:
    """Record hashes column-wise vs one hashlib call per record, on the same canonical text."""
    if not hasattr(schema, "sha256_hex_column"):  # an older tree (before/after comparisons)
        return {}
    conformed = schema.conform(frame, "messages")
    t0 = time.perf_counter()
    canonical = schema.canonical_strings(conformed, "messages")
    canonical_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    column = schema.sha256_hex_column(canonical)
    column_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    loop = [hashlib.sha256(text.encode("utf-8")).hexdigest() for text in canonical.to_list()]
    loop_s = time.perf_counter() - t0
    assert column.to_list() == loop
    steps = {"canonical_s": round(canonical_s, 3), "sha256_column_s": round(column_s, 3),
             "sha256_hashlib_loop_s": round(loop_s, 3), "sha256_speedup": round(loop_s / column_s, 2)}
    if hasattr(merkle, "COLUMNWISE_MIN"):  # the Merkle root a level at a time vs node by node (hashlib)
        t0 = time.perf_counter()
        root = merkle.root_of_record_hashes(column)
        levels_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        reference = merkle._root_of_hashes([merkle.leaf_hash(bytes.fromhex(h)) for h in loop]).hex()
        nodes_s = time.perf_counter() - t0
        assert root == reference
        steps.update({"merkle_levels_s": round(levels_s, 3), "merkle_nodes_s": round(nodes_s, 3)})
    return steps


def run(args: argparse.Namespace) -> dict:
    load_before = [round(x, 2) for x in os.getloadavg()]  # the JSON line's load_average is taken at the end
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        t0 = time.perf_counter()
        frame = realistic_texts(generate_messages(args.messages, seed=11, days=args.days))
        print(f"generated {frame.height:,} messages in {time.perf_counter() - t0:.1f} s "
              f"({frame['text'].str.len_bytes().mean():.0f} bytes of text on average)")
        text_mb = frame["text"].str.len_bytes().sum() / 1e6

        t0, c0 = time.perf_counter(), time.process_time()
        plain_parquet(frame, work / "plain")
        plain_s, plain_cpu = time.perf_counter() - t0, time.process_time() - c0
        plain_bytes = tree_size(work / "plain")

        n = frame.height
        runs: dict[str, dict] = {}
        for version in [int(v) for v in args.formats.split(",")]:
            folder = work / f"archive-v{version}"
            archive = create_archive(folder, passphrase="bench", kdf_n=2**14, format_version=version)
            keys = unlock_archive(archive, "bench")
            t0, c0 = time.perf_counter(), time.process_time()
            result = ingest_frames(archive, messages=frame, events=None, sources=[], skipped=[], keys=keys,
                                   actor="bench")
            enc_s, enc_cpu = time.perf_counter() - t0, time.process_time() - c0
            enc_bytes = tree_size(folder / "batches")
            files = sum(1 for p in (folder / "batches").rglob("*") if p.is_file())
            runs[f"format{version}"] = {"encrypted_s": round(enc_s, 3), "encrypted_cpu_s": round(enc_cpu, 3),
                                        "encrypted_mb": round(enc_bytes / 1e6, 2), "files": files,
                                        "throughput_ratio": round(plain_s / enc_s, 3),
                                        "cpu_ratio": round(plain_cpu / enc_cpu, 3),
                                        "size_ratio": round(enc_bytes / plain_bytes, 3), "chunks": result.chunks}
            shutil.rmtree(folder, ignore_errors=True)

        print(f"\n{'':28}{'seconds':>10}{'msgs/s':>14}{'MB/s (text)':>14}{'size MB':>10}{'files':>8}")
        print(f"{'plain zstd Parquet':28}{plain_s:>10.2f}{n / plain_s:>14,.0f}{text_mb / plain_s:>14.1f}"
              f"{plain_bytes / 1e6:>10.1f}{sum(1 for p in (work / 'plain').rglob('*') if p.is_file()):>8}")
        for name, r in runs.items():
            print(f"{'encrypted ingest, ' + name:28}{r['encrypted_s']:>10.2f}{n / r['encrypted_s']:>14,.0f}"
                  f"{text_mb / r['encrypted_s']:>14.1f}{r['encrypted_mb']:>10.1f}{r['files']:>8}")
        for name, r in runs.items():
            print(f"\n{name}: throughput ratio (encrypted / plain) {r['throughput_ratio']:.2f}x (aim >= 0.5x, stretch 0.7x); "
                  f"CPU ratio {r['cpu_ratio']:.2f}x (steadier on a shared machine); size ratio {r['size_ratio']:.2f}x "
                  f"(aim <= 1.3x); {r['chunks']} chunks, {r['files']} files")
        main_run = next(iter(runs.values()))
        steps = hash_steps(frame)
        if steps:
            print(f"record hashes: canonical text {steps['canonical_s']:.2f} s; SHA-256 column-wise "
                  f"{steps['sha256_column_s']:.2f} s vs hashlib per record {steps['sha256_hashlib_loop_s']:.2f} s "
                  f"({steps['sha256_speedup']:.1f}x)")
        if "merkle_levels_s" in steps:
            print(f"Merkle root: a level at a time {steps['merkle_levels_s']:.2f} s vs node by node "
                  f"{steps['merkle_nodes_s']:.2f} s")
        return {"load_average_at_start": load_before, "messages": n, "text_mb": round(text_mb, 1), "plain_s": round(plain_s, 3),
                "plain_cpu_s": round(plain_cpu, 3), "plain_mb": round(plain_bytes / 1e6, 2),
                **{k: main_run[k] for k in ("encrypted_s", "encrypted_cpu_s", "encrypted_mb", "throughput_ratio",
                                            "cpu_ratio", "size_ratio", "chunks", "files")},
                "formats": runs, "record_hashes": steps}
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
