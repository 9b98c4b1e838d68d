"""Benchmark: open + load of a 30-day window through the key server vs the embedded key service,
and the requests per second the key server sustains from 8 concurrent clients.

    .venv/bin/python benchmarks/bench_keyserver.py                       # 500,000 messages over 60 days
    .venv/bin/python benchmarks/bench_keyserver.py --messages 5000000    # the issue's size

Builds (once, reused from --work) an encrypted archive of generated messages with the demo
people and one approved grant of a 30-day window (metadata + content), then, in one run:

1. starts ``python -m investigator keyserver ARCHIVE --listen 127.0.0.1:0`` as its own process
   (a free port on loopback; ``--rate``/``--person-rate`` raised to 100,000 so that the
   benchmark's own requests are never rate-limited: the defaults, 20 per second per address and
   per person, would refuse most of part 2);
2. opens the case and loads the window ``--repeat`` times in each mode, alternating, each time in
   a fresh process (like a notebook's first load): embedded (``open_case(..., passphrase=...)``:
   the master keys in the notebook) and through the key server (``open_case(..., keyserver=URL,
   signing_key=...)``: every request signed with sunli's personal key). Both identify with the
   same login session (TOTP codes are single-use per 30-second step, so one code per open would
   need a 30-second wait each). Prints the medians and the ratio server / embedded (aim: <= 1.2x);
3. 8 client threads, each with its own case ticket and its own signed-request client
   (``RemoteKeyService``), ask the server for the keys of one chunk group (128 chunk hours x
   the granted parts, what the loader asks per request) again and again, until ``--requests``
   in all or ``--duration`` seconds, whichever comes first; prints requests per second, latency
   percentiles and the CPU both sides used;
4. times the parts of one key request (HTTP round trip, signing, signature check, the gate's
   release with its two fsynced audit writes) to tell what dominates the server's overhead;

then stops the server (SIGTERM, then SIGKILL after a short grace) and prints one JSON line.
Everything listens and connects on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _jsonline import add_json_flag, json_stdout  # noqa: E402

PASS = "bench-passphrase"
PERSON, APPROVER = "sunli", "zhouzong"
START = date(2026, 8, 1)
HOST = "127.0.0.1"
SERVER_RATE = "100000"  # requests/s per address and per person: far above what the benchmark sends
GRACE = 5.0  # seconds between SIGTERM and SIGKILL


def rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def window(days: int) -> tuple[datetime, datetime]:
    """The 30 days in the middle of the generated period (UTC)."""
    first = datetime(START.year, START.month, START.day, tzinfo=UTC) + timedelta(days=(days - 30) // 2)
    return first, first + timedelta(days=30)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# --- the archive --------------------------------------------------------------------------------

def build(work: Path, n: int, days: int) -> None:
    """Generated messages -> encrypted archive + demo people (once per --work)."""
    from investigator.custody.file import create_archive, unlock_archive
    from investigator.demo.people import demo_authority
    from investigator.demo.samples.messages import generate_messages
    from investigator.vault.ingest import ingest_frames

    ready = work / "ready.json"
    if ready.exists():
        built = json.loads(ready.read_text())
        if (built["n"], built["days"]) != (n, days):
            sys.exit(f"{work} holds {built['n']:,} messages over {built['days']} days; use another --work")
        return
    if (work / "archive").exists():
        sys.exit(f"{work}/archive exists but was not finished; remove {work} and run again")
    work.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    frame = generate_messages(n, seed=5, start=START, days=days, conversations=max(1000, n // 250))
    print(f"generated {frame.height:,} messages in {time.perf_counter() - t0:.0f} s", flush=True)
    archive = create_archive(work / "archive", passphrase=PASS, kdf_n=2**14, now=now - timedelta(hours=3))
    keys = unlock_archive(archive, PASS)
    t0 = time.perf_counter()
    ingest_frames(archive, messages=frame, events=None, sources=[], skipped=[], keys=keys, actor="bench",
                  now=now - timedelta(hours=3))
    print(f"ingested in {time.perf_counter() - t0:.0f} s", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # two hours back: the demo's approval uses zhouzong's code of that time step, ours a later one
        demo_authority(archive, keys, now=now - timedelta(hours=2))
    ready.write_text(json.dumps({"n": frame.height, "days": days}))


def wait_for_next_step(step: int = 30) -> None:
    """Bounded poll until the next TOTP time step begins (at most one step)."""
    target = (int(time.time()) // step + 1) * step + 0.5
    while time.time() < target:
        time.sleep(min(1.0, max(0.05, target - time.time())))


def with_fresh_code(action: Any) -> Any:
    """Run ``action(now)``; if the code of this 30-s step was already spent (another run), once more in the next step."""
    from investigator import errors

    for attempt in range(2):
        try:
            return action(datetime.now(UTC))
        except errors.IdentityCheckFailed as exc:
            if attempt or "already used" not in str(exc):
                raise
            print("TOTP code of this 30-s step already used; waiting for the next step", flush=True)
            wait_for_next_step()


def grant_and_session(work: Path, days: int, keys: Any) -> tuple[str, str]:
    """A live grant of the window (made anew when missing or expiring within the hour) and a login session."""
    from investigator import _crypto
    from investigator.authority.grants import Grant, approve, find_grant, new_request
    from investigator.authority.identity import login, unlock_person_key
    from investigator.demo.people import DEMO_ONLY_PASSPHRASE, DEMO_ONLY_TOTP_SECRETS
    from investigator.vault.store import Archive

    archive = Archive.open(work / "archive")
    state = work / "grant.json"
    grant_id = json.loads(state.read_text())["grant"] if state.exists() else None
    if grant_id:
        grant = Grant.from_file(find_grant(archive, grant_id))
        if grant.expiry <= datetime.now(UTC) + timedelta(hours=1):
            grant_id = None
    if not grant_id:
        key_dir = archive.root / "demo-keys"
        requester = unlock_person_key(archive, PERSON, DEMO_ONLY_PASSPHRASE.format(person=PERSON), key_dir=key_dir)
        approver = unlock_person_key(archive, APPROVER, DEMO_ONLY_PASSPHRASE.format(person=APPROVER), key_dir=key_dir)
        start, end = window(days)

        def make(now: datetime) -> str:
            signed = new_request(archive, requester=PERSON, signing_key=requester, case="BENCH-KS",
                                 purpose="internal_audit", start=start, end=end, fields=("metadata", "content"),
                                 reason="key server benchmark", now=now)
            code = _crypto.totp(DEMO_ONLY_TOTP_SECRETS[APPROVER], now.timestamp())
            result = approve(archive, keys, signed.id, approver=APPROVER, signing_key=approver, totp=code, now=now)
            assert result.grant_path is not None, result
            return result.grant_path.stem

        grant_id = with_fresh_code(make)
        state.write_text(json.dumps({"grant": grant_id}))
    # the key server judges identity by its own clock: a session of the real time
    session = with_fresh_code(lambda now: login(archive, keys, PERSON, now=now, hours=1,
                                                totp=_crypto.totp(DEMO_ONLY_TOTP_SECRETS[PERSON], now.timestamp())))
    return grant_id, session


# --- one open + load, in its own process --------------------------------------------------------

def measure(work: Path, mode: str, url: str, grant_id: str) -> dict[str, Any]:
    """open_case + case.messages() of the grant's window, embedded or through the key server at ``url``."""
    from investigator.access import keyserver, keyservice
    from investigator.access.case import open_case
    from investigator.authority.identity import unlock_person_key
    from investigator.demo.people import DEMO_ONLY_PASSPHRASE
    from investigator.vault.store import Archive

    spent = {"open": 0.0, "release": 0.0, "releases": 0}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                spent[name] += time.perf_counter() - t0
                if name == "release":
                    spent["releases"] += 1
        return wrapper

    # the key service's own share of the time (HTTP + server, or the in-process gate)
    for cls in (keyservice.GrantGate, keyserver.RemoteKeyService):
        setattr(cls, "open", timed("open", cls.open))  # noqa: B010 - patching a method
        setattr(cls, "release", timed("release", cls.release))  # noqa: B010
    session = os.environ.pop("BENCH_SESSION")
    root = work / "archive"
    signing_key = None
    if mode == "server":
        signing_key = unlock_person_key(Archive.open(root), PERSON, DEMO_ONLY_PASSPHRASE.format(person=PERSON),
                                        key_dir=root / "demo-keys")
    base = rss_mb()
    t0 = time.perf_counter()
    if mode == "server":
        case = open_case(root, grant=grant_id, person=PERSON, session=session, keyserver=url,
                         signing_key=signing_key)
    else:
        case = open_case(root, grant=grant_id, person=PERSON, session=session, passphrase=PASS)
    opened = time.perf_counter() - t0
    frame = case.messages(progress=False)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "open_seconds": opened, "load_seconds": seconds - opened, "rows": frame.height,
            "chunks": case.stats.chunks_decrypted, "keys": case.stats.keys_released,
            "service_open_seconds": spent["open"], "service_release_seconds": spent["release"],
            "key_requests": spent["releases"], "peak_mb": rss_mb() - base}


def run_measure(work: Path, mode: str, url: str, grant_id: str, session: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("INVESTIGATOR_KEYSERVER", "INVESTIGATOR_PASSPHRASE")}
    env.update(PYTHONWARNINGS="ignore", BENCH_SESSION=session)
    out = subprocess.run([sys.executable, __file__, "--work", str(work), "--measure", mode, "--url", url,
                          "--grant", grant_id], capture_output=True, text=True, env=env, timeout=1800, check=False)
    if out.returncode:
        raise RuntimeError(f"{mode} measurement failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the key server process ---------------------------------------------------------------------

class Server:
    """``python -m investigator keyserver`` on 127.0.0.1, a free port; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, archive: Path) -> None:
        env = {**os.environ, "INVESTIGATOR_PASSPHRASE": PASS, "PYTHONWARNINGS": "ignore"}
        env.pop("INVESTIGATOR_KEYSERVER", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "investigator", "keyserver", str(archive),
                                      "--listen", f"{HOST}:0", "--shared-totp-state", "--rate", SERVER_RATE, "--person-rate", SERVER_RATE],
                                     env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        pipe = self.proc.stderr
        assert pipe is not None
        try:
            line = pipe.readline()  # the server's first line names its port (EOF if it died)
            match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if not match:
                raise RuntimeError(f"key server did not start: {line}{pipe.read()}")
            self.url = f"http://{HOST}:{match.group(1)}"
            # keep reading its stderr so that a chatty server can never block on a full pipe
            threading.Thread(target=lambda: self.stderr.extend(pipe), daemon=True).start()
            deadline = time.monotonic() + 30
            while True:  # bounded poll until it answers
                try:
                    with urllib.request.urlopen(self.url + "/v1/health", timeout=2) as response:
                        self.archive_id = json.loads(response.read())["archive_id"]
                    break
                except OSError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=GRACE)
        return self.proc.returncode


# --- requests per second ------------------------------------------------------------------------

def key_groups(archive: Any, ticket: Any) -> list[list[Any]]:
    """The chunk-part references of the window, in the loader's groups (one key request each)."""
    from investigator.access.keyservice import ChunkRef
    from investigator.access.scan import KEY_BATCH
    from investigator.schema import format_ts, kind_parts

    start, end = format_ts(ticket.start), format_ts(ticket.end)
    entries = [e for e in archive.chunk_entries("messages") if e.start < end and e.end > start]
    parts = [p for p in kind_parts("messages") if p in ticket.parts]
    return [sorted({ChunkRef(e.kind, e.partition, e.chunk, p) for e in entries[i:i + KEY_BATCH] for p in parts})
            for i in range(0, len(entries), KEY_BATCH)]


def hammer(server: Server, signing_key: Any, grant: Any, session: str, groups: list[list[Any]], *, clients: int,
           total: int, duration: float) -> dict[str, Any]:
    """``clients`` threads, each with its own ticket, ask for one group's keys until ``total`` or ``duration``."""
    from investigator.access.client_auth import RequestSigner
    from investigator.access.keyserver import RemoteKeyService

    services = [RemoteKeyService(server.url, signer=RequestSigner(PERSON, signing_key), archive_id=server.archive_id)
                for _ in range(clients)]
    tickets = [s.open(grant=grant, person=PERSON, session=session) for s in services]
    per_client = -(-total // clients)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[list[str]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    clock: dict[str, float] = {}

    def client(i: int) -> None:
        refs = groups[i % len(groups)]
        barrier.wait()
        deadline = clock["start"] + duration
        for _ in range(per_client):
            if time.perf_counter() >= deadline:
                break
            t0 = time.perf_counter()
            try:
                keys = services[i].release(tickets[i], refs)
                assert len(keys) == len(refs)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                failures[i].append(f"{type(exc).__name__}: {exc}")
                continue
            latencies[i].append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    cpu_server, cpu_client = server.cpu_seconds(), time.process_time()
    clock["start"] = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - clock["start"]
    cpu_server, cpu_client = server.cpu_seconds() - cpu_server, time.process_time() - cpu_client
    done = [x for per in latencies for x in per]
    errors = [x for per in failures for x in per]
    return {"clients": clients, "requests": len(done), "errors": len(errors), "first_error": errors[0] if errors else "",
            "seconds": wall, "rps": len(done) / wall, "refs_per_request": len(groups[0]),
            "keys_per_second": sum(len(groups[i % len(groups)]) * len(latencies[i]) for i in range(clients)) / wall,
            "latency_ms": {"p50": pct(done, 0.5) * 1e3, "p90": pct(done, 0.9) * 1e3, "p99": pct(done, 0.99) * 1e3},
            "server_cpu": cpu_server / wall, "client_cpu": cpu_client / wall,
            "capped_by": "duration" if any(len(x) < per_client for x in latencies) else "requests"}


# --- where one request's time goes --------------------------------------------------------------

def timed_median(fn: Any, n: int) -> float:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return median(out)


def parts_live(server: Server, signing_key: Any, grant: Any, session: str, refs: list[Any]) -> dict[str, float]:
    """With the server up: the bare HTTP round trip (GET /v1/health) and one signed key request, sequentially."""
    from investigator.access.client_auth import RequestSigner
    from investigator.access.keyserver import RemoteKeyService

    def health() -> None:
        with urllib.request.urlopen(server.url + "/v1/health", timeout=10) as response:
            response.read()

    service = RemoteKeyService(server.url, signer=RequestSigner(PERSON, signing_key), archive_id=server.archive_id)
    ticket = service.open(grant=grant, person=PERSON, session=session)
    return {"http_roundtrip": timed_median(health, 100),
            "signed_key_request": timed_median(lambda: service.release(ticket, refs), 30)}


def parts_local(archive: Any, keys: Any, signing_key: Any, grant: Any, session: str,
                refs: list[Any]) -> dict[str, float]:
    """In this process, on the same archive: each step of a key request on its own."""
    from investigator.access.client_auth import RequestSigner, RequestVerifier
    from investigator.access.keyservice import GrantGate, wrap_release
    from investigator.authority.directory import DirectoryStore

    signer = RequestSigner(PERSON, signing_key)
    path = "/v1/keys"
    gate = GrantGate(archive, keys)
    ticket = gate.open(grant=grant, person=PERSON, session=session)
    body = json.dumps({"token": ticket.token, "refs": [r.to_json() for r in refs]}).encode()
    verifier = RequestVerifier(archive)
    signed = [signer.headers(archive_id=archive.archive_id, method="POST", path=path, body=body) for _ in range(50)]
    released = gate.release(ticket, refs)
    probe = archive.root / f".bench-fsync-{secrets.token_hex(4)}"

    def fsync_twice() -> None:  # what an audit entry + its checkpoint cost in fsyncs
        for _ in range(2):
            with open(probe, "ab") as handle:
                handle.write(b"x" * 600)
                handle.flush()
                os.fsync(handle.fileno())

    try:
        fsyncs = timed_median(fsync_twice, 20)
    finally:
        probe.unlink(missing_ok=True)
    headers = iter(signed)
    return {
        "sign": timed_median(lambda: signer.headers(archive_id=archive.archive_id, method="POST", path=path,
                                                    body=json.dumps({"token": ticket.token,
                                                                     "refs": [r.to_json() for r in refs]}).encode()),
                             200),
        "directory_load": timed_median(DirectoryStore(archive).load, 50),
        "verify": timed_median(lambda: verifier.verify("POST", path, next(headers), body), 50),
        "gate_release": timed_median(lambda: gate.release(ticket, refs), 20),
        "two_fsyncs": fsyncs,
        "json": timed_median(lambda: (json.loads(body), json.dumps(wrap_release(released)).encode()), 50),
    }


# --- main ---------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=500_000)
    parser.add_argument("--days", type=int, default=60, help="days the messages span (>= 30; default 60)")
    parser.add_argument("--work", type=Path, default=None,
                        help="archive directory, reused (default /tmp/bench-keyserver/<messages>x<days>d)")
    parser.add_argument("--repeat", type=int, default=5, help="open + load runs per mode (default 5)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=4000, help="key requests in all, at most (default 4000)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of key requests, at most (default 15)")
    parser.add_argument("--measure", choices=["embedded", "server"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--grant", help=argparse.SUPPRESS)
    add_json_flag(parser)
    args = parser.parse_args()
    work = args.work or Path(f"/tmp/bench-keyserver/{args.messages}x{args.days}d")
    if args.measure:
        print(json.dumps(measure(work, args.measure, args.url, args.grant)))
        return
    if args.days < 30:
        parser.error("--days must be at least 30 (the window is 30 days)")
    out = json_stdout(args)

    from investigator.authority.grants import Grant, find_grant
    from investigator.authority.identity import unlock_person_key
    from investigator.custody.file import unlock_archive
    from investigator.demo.people import DEMO_ONLY_PASSPHRASE
    from investigator.vault.store import Archive

    t_build = time.perf_counter()
    build(work, args.messages, args.days)
    archive = Archive.open(work / "archive")
    keys = unlock_archive(archive, PASS, actor="bench", purpose="benchmark")
    grant_id, session = grant_and_session(work, args.days, keys)
    grant = Grant.from_file(find_grant(archive, grant_id))
    signing_key = unlock_person_key(archive, PERSON, DEMO_ONLY_PASSPHRASE.format(person=PERSON),
                                    key_dir=archive.root / "demo-keys")
    print(f"archive ready ({time.perf_counter() - t_build:.0f} s): {work / 'archive'}", flush=True)

    server = Server(archive.root)
    try:
        print(f"key server pid {server.proc.pid} at {server.url} (--rate/--person-rate {SERVER_RATE})", flush=True)
        # warm-up, untimed: one open and one key request (the server's first request imports and loads lazily)
        from investigator.access.client_auth import RequestSigner
        from investigator.access.keyserver import RemoteKeyService

        warm = RemoteKeyService(server.url, signer=RequestSigner(PERSON, signing_key), archive_id=server.archive_id)
        ticket = warm.open(grant=grant, person=PERSON, session=session)
        groups = key_groups(archive, ticket)
        warm.release(ticket, groups[0])

        runs: dict[str, list[dict[str, Any]]] = {"embedded": [], "server": []}
        for i in range(args.repeat):
            for mode in (("embedded", "server") if i % 2 == 0 else ("server", "embedded")):
                result = run_measure(work, mode, server.url, grant_id, session)
                runs[mode].append(result)
                print(f"  {mode:9} run {i + 1}: {result['seconds']:.3f} s (open {result['open_seconds']:.3f} s, "
                      f"{result['rows']:,} rows)", flush=True)
        rows = {r["rows"] for rs in runs.values() for r in rs}
        if len(rows) != 1:
            raise RuntimeError(f"the modes loaded different row counts: {sorted(rows)}")
        print(f"  key requests: {args.clients} clients ...", flush=True)
        load = hammer(server, signing_key, grant, session, groups, clients=args.clients, total=args.requests,
                      duration=args.duration)
        live = parts_live(server, signing_key, grant, session, groups[0])
    finally:
        code = server.stop()
    local = parts_local(archive, keys, signing_key, grant, session, groups[0])

    med = {mode: {k: median([r[k] for r in rs]) for k in ("seconds", "open_seconds", "load_seconds",
                                                          "service_open_seconds", "service_release_seconds")}
           for mode, rs in runs.items()}
    emb, srv = med["embedded"], med["server"]
    ratio = srv["seconds"] / emb["seconds"]
    first = runs["server"][0]
    start, end = window(args.days)
    print(f"\narchive: {json.loads((work / 'ready.json').read_text())['n']:,} messages over {args.days} days; "
          f"window {start:%Y-%m-%d} .. {end:%Y-%m-%d} (30 days): {first['rows']:,} rows, {first['chunks']} chunks, "
          f"{first['keys']} chunk-part keys in {first['key_requests']} key requests")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.repeat} runs per mode, "
          "each in a fresh process; medians")
    print(f"\n{'open_case + messages() (30 days)':36}{'total s':>9}{'open s':>9}{'load s':>9}"
          f"{'svc open':>10}{'svc keys':>10}")
    for name, m in (("embedded (passphrase)", emb), ("key server (signed requests)", srv)):
        print(f"{name:36}{m['seconds']:>9.3f}{m['open_seconds']:>9.3f}{m['load_seconds']:>9.3f}"
              f"{m['service_open_seconds']:>10.3f}{m['service_release_seconds']:>10.3f}")
    print("(svc open / svc keys: time inside the key service's open() and release() calls: the in-process gate,"
          " or HTTP to the server)")
    print(f"all runs, s: embedded {[round(r['seconds'], 3) for r in runs['embedded']]}, "
          f"server {[round(r['seconds'], 3) for r in runs['server']]}")
    print(f"ratio server / embedded: {ratio:.2f}x   (aim <= 1.2x: {'met' if ratio <= 1.2 else 'missed'})")
    print(f"\nkey requests: {load['clients']} concurrent clients, {load['refs_per_request']} chunk-part keys per "
          f"request, {load['requests']:,} requests in {load['seconds']:.1f} s (stopped by {load['capped_by']}), "
          f"{load['errors']} errors")
    print(f"  {load['rps']:.0f} requests/s ({load['keys_per_second']:,.0f} keys/s); latency p50 "
          f"{load['latency_ms']['p50']:.1f} ms, p90 {load['latency_ms']['p90']:.1f} ms, p99 "
          f"{load['latency_ms']['p99']:.1f} ms; CPU: server {load['server_cpu']:.0%} of a core, clients "
          f"{load['client_cpu']:.0%}")
    if load["errors"]:
        print(f"  first error: {load['first_error']}")
    print("\none key request, sequential (medians, ms):")
    print(f"  whole signed request, client to client      {live['signed_key_request'] * 1e3:8.2f}")
    print(f"  bare HTTP round trip (GET /v1/health)       {live['http_roundtrip'] * 1e3:8.2f}")
    print(f"  client: JSON body + Ed25519 signature       {local['sign'] * 1e3:8.2f}")
    print(f"  server: signature check (directory load)    {local['verify'] * 1e3:8.2f}  "
          f"({local['directory_load'] * 1e3:.2f})")
    print(f"  server: gate release (same as embedded)     {local['gate_release'] * 1e3:8.2f}  "
          f"(of which ~{local['two_fsyncs'] * 1e3:.2f} two fsyncs: audit entry + checkpoint)")
    print(f"  JSON of request and answer                  {local['json'] * 1e3:8.2f}")
    overhead = live["signed_key_request"] - local["gate_release"]
    print(f"  => server's overhead per request (whole - gate release): {overhead * 1e3:.2f} ms; "
          f"x {first['key_requests']} requests = {overhead * first['key_requests']:.3f} s per load")
    print(f"key server stopped (exit {code})")
    print(json.dumps({
        "benchmark": "keyserver", "messages": json.loads((work / "ready.json").read_text())["n"], "days": args.days,
        "window_rows": first["rows"], "chunks": first["chunks"], "key_requests_per_load": first["key_requests"],
        "repeat": args.repeat, "cores": os.cpu_count(),
        "embedded_s": round(emb["seconds"], 4), "server_s": round(srv["seconds"], 4),
        "embedded_open_s": round(emb["open_seconds"], 4), "server_open_s": round(srv["open_seconds"], 4),
        "ratio": round(ratio, 3), "aim_ratio": 1.2, "aim_met": ratio <= 1.2,
        "clients": load["clients"], "rps": round(load["rps"], 1), "requests": load["requests"],
        "errors": load["errors"], "rps_seconds": round(load["seconds"], 2), "refs_per_request": load["refs_per_request"],
        "latency_ms": {k: round(v, 2) for k, v in load["latency_ms"].items()},
        "server_cpu": round(load["server_cpu"], 2), "client_cpu": round(load["client_cpu"], 2),
        "parts_ms": {k: round(v * 1e3, 3) for k, v in {**live, **local}.items()},
    }), file=out)


if __name__ == "__main__":
    main()
