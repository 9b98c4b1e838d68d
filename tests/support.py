"""Shared test helpers (constants and factories); fixtures live in conftest.py.

Import as ``from support import ...``: a module of its own name, so it never
collides with the per-folder conftest modules.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from investigator import schema

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
DATA_SAMPLES = REPO / "data_samples"
PASSPHRASE = "test-passphrase-不要在生产中使用"
TEST_KDF_N = 2**14  # low scrypt cost keeps the suite fast; production default is 2**17


def message_frame(n: int = 50, *, day: int = 18, start_id: int = 0, text: str = "hello {i}") -> pl.DataFrame:
    """``n`` messages spread over the hours of 2026-11-<day> UTC."""
    rows = [{
        "message_id": f"m{i}", "source": "jsonl", "conversation_id": f"c{i % 3}", "conversation_name": f"conv {i % 3}",
        "conversation_type": "group", "ts": datetime(2026, 11, day, i % 24, (i * 7) % 60, tzinfo=timezone.utc),
        "sender_id": f"u{i % 5}", "sender_name": f"user {i % 5}", "recipients": [f"u{(i + 1) % 5}"],
        "msg_type": "text", "text": text.format(i=i), "source_file": "test.jsonl", "source_position": f"line {i + 1}",
    } for i in range(start_id, start_id + n)]
    return schema.conform(pl.DataFrame(rows, schema_overrides={"ts": schema.UTC_US}), "messages")

def event_frame(n: int = 10, *, day: int = 18) -> pl.DataFrame:
    rows = [{"event_id": f"e{i}", "source": "events-jsonl", "ts": datetime(2026, 11, day, i % 24, 30, tzinfo=timezone.utc),
             "actor": "liuyang", "event_type": "login", "host": "erp-01", "ip": "203.0.113.7", "outcome": "success",
             "details": "{}"} for i in range(n)]
    return schema.conform(pl.DataFrame(rows, schema_overrides={"ts": schema.UTC_US}), "events")

def archive_snapshot(root: Path) -> dict[str, bytes]:
    """Every file of an archive except the audit log (which records refusals too) and locks."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(("audit/", "locks/")):
            out[rel] = path.read_bytes()
    return out


def custody_cli_roundtrip(tmp_path: Path, *, env: dict[str, str], backend: str, init_args: list[str],
                          wrong_secret: dict[str, str]) -> dict:
    """The custodian's CLI path on a token / transit custody, each command its own process, no passphrase.

    init --custody, ingest a real export, full verify, keys rotate + status, a refused wrong PIN / token, and
    the key server starting on that custody. Returns what the caller asserts on further.
    """
    import json
    import os
    import subprocess
    import sys
    import urllib.request

    base = {k: v for k, v in os.environ.items() if k not in ("INVESTIGATOR_PASSPHRASE", "INVESTIGATOR_KEYSERVER")}
    base.update(env)

    def run(*args: object, extra: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "investigator", *map(str, args)], env={**base, **(extra or {})},
                              capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        if check and done.returncode:
            raise AssertionError(f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    root = tmp_path / f"{backend}-archive"
    run("init", root, "--custody", backend, *init_args, "--as", "custodian")
    run("ingest", root, REPO / "data_samples" / "telegram" / "result.json", "--as", "custodian")
    verified = run("verify", root, "--json")
    run("keys", "rotate", root, "--as", "custodian")
    status = json.loads(run("keys", "status", root, "--json").stdout)
    refused = run("verify", root, extra=wrong_secret, check=False)
    after_rotation = run("verify", root, "--json")
    port_probe = __import__("socket").socket()
    port_probe.bind(("127.0.0.1", 0))
    port = port_probe.getsockname()[1]
    port_probe.close()
    server = subprocess.Popen([sys.executable, "-m", "investigator", "keyserver", str(root), "--listen",
                               f"127.0.0.1:{port}", "--shared-totp-state"], env=base, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    health = None
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        import time
        deadline = time.monotonic() + 60
        while health is None and server.poll() is None and time.monotonic() < deadline:
            try:
                with opener.open(f"http://127.0.0.1:{port}/v1/health", timeout=1) as answer:
                    health = json.loads(answer.read())
            except OSError:
                time.sleep(0.1)
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
    return {"root": root, "verified": json.loads(verified.stdout), "after_rotation": json.loads(after_rotation.stdout),
            "status": status, "refused": refused, "health": health,
            "config": (root / "archive.toml").read_text(encoding="utf-8")}
