"""A 20-keyword sweep on Dask workers against the single-process scan, the archive on S3 (SeaweedFS). Prints figures.

    .venv/bin/python benchmarks/bench_dask.py                         # 2,000,000 messages over 60 days
    .venv/bin/python benchmarks/bench_dask.py --messages 10000000     # the issue's size (build: ~10 min here)

1. builds (once per ``--work``) an archive of generated messages with the demo people, as
   benchmarks/bench_keyserver.py does, and a grant of the whole window;
2. starts SeaweedFS on loopback (as benchmarks/bench_restore.py) and publishes the archive to a bucket
   (vault/remote.py; timed), and the key server as its own process (``--rate`` far above the load);
3. opens the case through the key server and runs the same sweep — ``case.search(q)`` with 20 keywords
   OR-ed, exact mode — three ways in one run:
   * single process: ``case.search(q)``, the loader's own threads over the local folder;
   * Dask, 1 worker (a ``LocalCluster`` of 1 process, ``--threads`` threads, loopback, spill off):
     ``case.search(q, executor=DaskScan(client, store=S3, group_size=G))``;
   * Dask, 2 workers (2 processes);
   each ``--repeat`` times (best wall clock kept); the hits must be identical in all three;
4. prints rows/s overall and per worker, the key server's requests (one per chunk group) per second
   and its CPU per request, and one JSON line.

Workers read every chunk from S3 (one GET per chunk part), the single-process path from the folder.
On this 2-core machine 2 workers share the 2 cores with the key server, SeaweedFS and the client.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _jsonline import add_json_flag, emit, human_output  # noqa: E402
from bench_keyserver import PERSON, Server, build, grant_and_session  # noqa: E402
from bench_restore import start_weed  # noqa: E402

# bench_search.py's sweep, one keyword swapped for a word the generator's templates use (退款 for 赔偿), so that
# there are hits to compare (about 1 message in 100)
KEYWORDS = ["加班费", "投诉", "回扣", "辱骂", "password", "vpn", "泄密", "密码", "删除日志", "改记录",
            "红包", "返点", "贿赂", "私下", "报销", "离职", "退款", "封口费", "转账", "违规"]
QUERY = " OR ".join(KEYWORDS)


def open_bench_case(work: Path, url: str, grant_id: str, session: str) -> Any:
    from investigator.access.case import open_case
    from investigator.authority.identity import unlock_person_key
    from investigator.demo.people import DEMO_ONLY_PASSPHRASE
    from investigator.vault.store import Archive

    archive = Archive.open(work / "archive")
    key = unlock_person_key(archive, PERSON, DEMO_ONLY_PASSPHRASE.format(person=PERSON),
                            key_dir=archive.root / "demo-keys")
    return open_case(archive, grant=grant_id, person=PERSON, session=session, keyserver=url, signing_key=key)


def best(repeat: int, fn: Any) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--group-size", type=int, default=32, help="chunk entries per Dask task (one key request)")
    parser.add_argument("--threads", type=int, default=1, help="threads per Dask worker")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--work", type=Path)
    add_json_flag(parser)
    args = parser.parse_args()
    work = args.work or Path(f"/tmp/bench-dask/{args.messages}x{args.days}d")
    with human_output(args):
        figures = run(args, work)
    emit("dask", figures)


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import boto3
    import dask
    from distributed import Client, LocalCluster

    from investigator.access.distributed import WORKER_CONFIG, DaskScan
    from investigator.custody.file import unlock_archive
    from investigator.vault.remote import ObjectStore, publish
    from investigator.vault.store import Archive

    from bench_keyserver import PASS

    build(work, args.messages, args.days)
    archive = Archive.open(work / "archive")
    entries = archive.chunk_entries("messages")
    stored = sum(p.stat().st_size for p in (work / "archive" / "batches").rglob("*.chk"))
    print(f"archive: {args.messages:,} messages over {args.days} days, {len(entries):,} message chunks, "
          f"{stored / 1e6:.0f} MB of chunk files", flush=True)
    keys = unlock_archive(archive, PASS)
    grant_id, session = grant_and_session(work, args.days, keys)
    weed, s3 = start_weed(work)
    server = None
    try:
        boto3.client("s3", endpoint_url=s3["endpoint"], aws_access_key_id=s3["key"], aws_secret_access_key=s3["secret"],
                     region_name="us-east-1").create_bucket(Bucket="evidence")
        store = ObjectStore("s3://evidence/archive", endpoint=s3["endpoint"], access_key_id=s3["key"],
                            secret_access_key=s3["secret"])
        t0 = time.perf_counter()
        published = publish(archive, store)
        publish_s = time.perf_counter() - t0
        print(f"published to S3 (SeaweedFS, loopback): {published.written:,} objects, "
              f"{published.bytes / 1e6:.0f} MB in {publish_s:.1f} s", flush=True)
        server = Server(work / "archive")
        case = open_bench_case(work, server.url, grant_id, session)
        rows = {}
        before = case.stats.rows_read
        t_local, local_hits = best(args.repeat, lambda: case.search(QUERY))
        n = (case.stats.rows_read - before) // args.repeat  # the granted window's chunks, as the workers read them
        rows["single process"] = (t_local, 1, None, None)
        print(f"single process: {local_hits.height:,} hits in {t_local:.2f} s", flush=True)
        results: dict[str, Any] = {"single_process_s": round(t_local, 3)}
        for workers in (1, 2):
            with dask.config.set({**WORKER_CONFIG, "temporary-directory": str(work / "dask"),
                                  "distributed.logging.distributed": "error"}):
                with LocalCluster(n_workers=workers, threads_per_worker=args.threads, processes=True,
                                  host="127.0.0.1", dashboard_address=None, memory_limit="6GiB") as cluster, \
                        Client(cluster) as client:
                    scan = DaskScan(client, store=store, group_size=args.group_size)
                    case.search("warm-up-" + KEYWORDS[0], executor=scan)  # workers import, open and verify once
                    cpu0 = server.cpu_seconds()
                    wall, hits = best(args.repeat, lambda: case.search(QUERY, executor=scan))
                    cpu = (server.cpu_seconds() - cpu0) / args.repeat
            if not hits.equals(local_hits) or scan.last is None or scan.last.rows_read != n:
                raise SystemExit(f"the Dask path with {workers} worker(s) returned other hits than the local one")
            report = scan.last
            assert report is not None
            rows[f"dask, {workers} worker{'s' if workers > 1 else ''}"] = (wall, workers, report, cpu)
            results[f"dask_{workers}_s"] = round(wall, 3)
            results[f"dask_{workers}_key_requests"] = report.key_requests
            results[f"dask_{workers}_key_requests_per_s"] = round(report.key_requests / wall, 1)
            results[f"dask_{workers}_keyserver_cpu_ms_per_request"] = round(1000 * cpu / report.key_requests, 2)
            results[f"dask_{workers}_messages_per_s_per_worker"] = round(n / wall / workers)
            results[f"dask_{workers}_workers_used"] = len(report.workers)
            # the tasks' own seconds per group: fetch + decrypt + check + normalize + search of 32 chunks
            results[f"dask_{workers}_task_s_per_group"] = round(report.task_seconds / report.groups, 3)
        print()
        print(f"{'path':<20} {'wall s':>8} {'msgs/s':>12} {'msgs/s/worker':>14} {'key req':>8} {'req/s':>7} "
              f"{'ks CPU ms/req':>13}")
        for name, (wall, workers, report, cpu) in rows.items():
            req = report.key_requests if report else 0
            per_req = f"{1000 * cpu / req:.1f}" if report else "-"
            print(f"{name:<20} {wall:8.2f} {n / wall:12,.0f} {n / wall / workers:14,.0f} {req or '-':>8} "
                  f"{(req / wall if report else 0):7.1f} {per_req:>13}")
        print(f"{n:,} messages in the grant's window scanned; hits: {local_hits.height:,} (identical on every path); "
              f"group size {args.group_size} chunks")
        results.update({"messages": args.messages, "messages_scanned": n, "days": args.days, "chunks": len(entries), "chunk_bytes": stored,
                        "group_size": args.group_size, "threads_per_worker": args.threads,
                        "hits": local_hits.height, "publish_s": round(publish_s, 2),
                        "published_objects": published.written,
                        "speedup_2_vs_1": round(results["dask_1_s"] / results["dask_2_s"], 2),
                        "date": datetime.now(UTC).date().isoformat(), "cores": os.cpu_count()})
        return results
    finally:
        if server is not None:
            server.stop()
        weed.send_signal(signal.SIGTERM)
        try:
            weed.wait(timeout=10)
        except Exception:
            weed.kill()
        for port in s3.get("ports", "").split(","):
            for stale in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                stale.unlink(missing_ok=True)
        shutil.rmtree(work / "weed", ignore_errors=True)
        warnings.resetwarnings()


if __name__ == "__main__":
    main()
