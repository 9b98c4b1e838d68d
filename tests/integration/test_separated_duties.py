"""Separated duties end to end: the key server is its own process and the only holder of the master keys.

Every actor is a separate ``investigator`` process whose environment has no
``INVESTIGATOR_PASSPHRASE`` and which works on a *client view* of the archive: the
archive's folders linked one by one, except ``keys/`` (the tests run as root, so
file permissions would prove nothing; a client that tried to read the master key
file would fail). Only the custodian's bootstrap (init, the first admin, the
policy, the ingest) and the key server itself hold the passphrase.

The path: the admin enrols people through the server (TOTP secrets made and sealed
there), an operator files a request, the supervisor approves with a TOTP code
checked on the server, the operator logs in (server-side session), opens the case
from the CLI and from ``open_case()`` in a fresh process, runs a papermill report
and reproduces it, exports an evidence bundle that verifies offline; a legal
reviewer reviews and releases the report; the auditor runs a full verification on
the server. Afterwards the audit log shows that the master keys were unlocked only
by the custodian's own commands and the key server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest

from investigator import _crypto, errors
from support import DATA_SAMPLES, REPO

# the real services, started once per test worker by the custody tests' fixtures
sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "custody"))
from test_openbao import bao_server  # noqa: E402,F401  (a session fixture: bao server -dev on loopback)
from test_pkcs11 import softhsm  # noqa: E402,F401  (a session fixture: a SoftHSM2 token)

PASSPHRASE = "custodian-only-passphrase"
PEOPLE = (  # id, name, roles, supervisor
    ("zhouzong", "周总", ("executive",), ""),
    ("sunli", "孙丽", ("legal", "operator"), "zhouzong"),
    ("fawu", "法务", ("legal",), "zhouzong"),
    ("shenji", "审计", ("auditor",), "zhouzong"),
)
# the commands that may unlock the master keys: the custodian's bootstrap and the key server
CUSTODIAN_PURPOSES = {"investigator init", "investigator people enroll", "investigator policy set",
                      "investigator people add", "investigator ingest", "investigator keys rotate", "investigator keys status",
                      "investigator verify", "investigator keyserver"}
# what the custodian's host holds for each custody, wrong: refused at unlock, and the refusal audited
WRONG_SECRET = {"file": {"INVESTIGATOR_PASSPHRASE": "not-the-passphrase"},
                "pkcs11": {"INVESTIGATOR_PKCS11_PIN": "not-the-pin"},
                "openbao": {"BAO_TOKEN": "not-a-token"}}


def _run(args: list[str], env: dict[str, str], *, code: int | None = 0, cwd: Path | None = None) -> str:
    """Run one ``investigator`` command as its own process; ``code=None`` accepts 0 or 8 (held by the circuit breaker)."""
    result = subprocess.run([sys.executable, "-m", "investigator.cli", *map(str, args)], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode in ((0, 8) if code is None else (code,)), f"{args[:3]}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _secret(output: str) -> bytes:
    match = re.search(r"secret=([A-Z2-7]+)", output)
    assert match, output
    return _crypto.unb32(match.group(1))


def _code(secret: bytes) -> str:
    return _crypto.totp(secret, datetime.now(timezone.utc).timestamp())


def client_view(archive: Path, view: Path) -> Path:
    """The archive as a client sees it: every top-level entry linked, except ``keys/``."""
    for area in ("batches", "locks", "audit", "org", "cases", "exports"):
        (archive / area).mkdir(exist_ok=True)
    view.mkdir()
    for entry in archive.iterdir():
        if entry.name != "keys":
            (view / entry.name).symlink_to(entry)
    return view


@contextmanager
def keyserver(archive: Path, env: dict[str, str]) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "investigator.cli", "keyserver", str(archive),
                             "--listen", "127.0.0.1:0", "--rate", "200"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line + (proc.stderr.read() if proc.poll() is not None else "")
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def custody_secrets(backend: str, request: pytest.FixtureRequest) -> tuple[dict[str, str], list[str]]:
    """What the custodian's host holds for ``backend`` (environment) and the ``init`` options naming it."""
    if backend == "file":
        return {"INVESTIGATOR_PASSPHRASE": PASSPHRASE}, ["--kdf-cost", "14"]
    if backend == "pkcs11":
        hsm = request.getfixturevalue("softhsm")
        return ({"INVESTIGATOR_PKCS11_MODULE": hsm.module, "INVESTIGATOR_PKCS11_PIN": hsm.pin,
                 "SOFTHSM2_CONF": os.environ["SOFTHSM2_CONF"]},
                ["--custody", "pkcs11", "--token-label", hsm.label])
    bao = request.getfixturevalue("bao_server")
    return {"BAO_ADDR": bao.addr, "BAO_TOKEN": bao.token}, ["--custody", "openbao", "--mount", "transit-sod"]


@pytest.mark.slow
def test_every_actor_is_a_separate_process_without_the_passphrase(tmp_path: Path,
                                                                   request: pytest.FixtureRequest) -> None:
    """The whole path on the key-file custody (PKCS#11 and OpenBao: test_separated_duties_pkcs11, _openbao)."""
    walk_the_path("file", tmp_path, request)


def walk_the_path(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The custodian bootstraps on ``backend``; every other actor works through the key server, without keys/."""
    archive = tmp_path / "archive"
    keydir = tmp_path / "personal-keys"
    custody, init_options = custody_secrets(backend, request)
    # clients hold nothing of the custody: no passphrase, PIN, token, token configuration
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("INVESTIGATOR_", "BAO_", "VAULT_", "SOFTHSM2_"))}
    base.update({"INVESTIGATOR_KEY_DIR": str(keydir), "HOME": str(tmp_path / "home"),
                 "NO_PROXY": "127.0.0.1,localhost"})
    custodian = {**base, **custody, "INVESTIGATOR_KEY_PASSPHRASE": "pw-wugang"}

    # --- the custodian, on the key server's host: bootstrap with the custody's secrets ------------------
    # TOTP counters and lock-outs live on this host, outside the folder clients share (--state-dir)
    _run(["init", archive, *init_options, "--state-dir", tmp_path / "custodian-state"], custodian)
    _run(["people", "add", archive, "--id", "wugang", "--name", "吴刚", "--role", "admin"], custodian)
    _run(["policy", "set", archive, REPO / "investigator" / "default_policy.toml"], custodian)
    _run(["people", "enroll", archive, "wugang", "--kdf-cost", "14", "--no-qr"], custodian)
    _run(["ingest", archive, DATA_SAMPLES / "normalized" / "messages.jsonl", "--json"], custodian)
    _custodian_keeps_the_keys(backend, archive, custodian)

    view = client_view(archive, tmp_path / "client-view")
    with keyserver(archive, {**base, **custody}) as url:
        client = {**base, "INVESTIGATOR_KEYSERVER": url}
        assert "INVESTIGATOR_PASSPHRASE" not in client

        def as_person(person: str, **extra: str) -> dict[str, str]:
            return {**client, "INVESTIGATOR_KEY_PASSPHRASE": f"pw-{person}", **extra}

        admin = as_person("wugang")
        # --- the admin enrols people: TOTP secrets are made and sealed by the key server ----------------
        secrets: dict[str, bytes] = {}
        for person, name, roles, supervisor in PEOPLE:
            args = ["people", "add", view, "--id", person, "--name", name, "--as", "wugang"]
            args += [x for role in roles for x in ("--role", role)]
            args += ["--supervisor", supervisor] if supervisor else []
            _run(args, admin)
            out = _run(["people", "enroll", view, person, "--as", "wugang", "--kdf-cost", "14", "--no-qr"],
                       {**admin, "INVESTIGATOR_NEW_KEY_PASSPHRASE": f"pw-{person}"})
            secrets[person] = _secret(out)
        # a client never reads the passphrase, even when asked for a custodian's job
        _run(["keys", "rotate", view], {**admin, **custody}, code=2)
        # --- the operator files a request; the supervisor approves with a code checked on the server -----
        request_id = _run(["request", "new", view, "--as", "sunli", "--case", "C-SOD-1",
                           "--purpose", "internal_audit", "--start", "2026-11-10T00:00", "--end", "2026-11-12T00:00",
                           "--reason", "separated duties end to end"], as_person("sunli")).strip()
        out = _run(["request", "approve", view, request_id, "--as", "zhouzong", "--totp", _code(secrets["zhouzong"])],
                   as_person("zhouzong"))
        grant_id = re.search(r"grant issued: (G-[0-9a-f]+)", out).group(1)
        # --- the operator logs in on the server and opens the case -------------------------------------
        session = _run(["login", view, "--as", "sunli", "--totp", _code(secrets["sunli"])],
                       as_person("sunli")).splitlines()[0]
        assert session.startswith("ivs1.")
        sunli = as_person("sunli", INVESTIGATOR_SESSION=session)
        opened = json.loads(_run(["open", view, "--grant", grant_id, "--as", "sunli", "--session", session,
                                  "--json"], sunli))
        assert opened["messages"] > 0
        script = textwrap.dedent(f"""
            import os, investigator
            from investigator.authority.identity import unlock_person_key
            from investigator.vault.store import Archive
            key = unlock_person_key(Archive.open({str(view)!r}), "sunli", "pw-sunli",
                                    key_dir=os.environ["INVESTIGATOR_KEY_DIR"])
            case = investigator.open_case({str(view)!r}, grant={grant_id!r}, person="sunli",
                                          session=os.environ["INVESTIGATOR_SESSION"], signing_key=key)
            print(case.messages(progress=False).height)
        """)
        loaded = subprocess.run([sys.executable, "-c", script], env=sunli, capture_output=True, text=True,
                                timeout=120)
        assert loaded.returncode == 0, loaded.stderr
        assert int(loaded.stdout.strip()) == opened["messages"]
        # --- a papermill report, run and reproduced through the server ---------------------------------
        reports = tmp_path / "reports"
        run = json.loads(_run(["report", "run", "keyword_sweep", "--archive", view, "--grant", grant_id,
                               "--as", "sunli", "--session", session, "-p", "keywords", "[项目, 客户]",
                               "-o", reports, "--json"], sunli))
        notebook = Path(run["notebook"])
        assert "intact" in _run(["report", "verify", notebook, "--archive", view], sunli).lower()
        reproduced = _run(["report", "reproduce", notebook, "--archive", view, "--as", "sunli", "--session", session,
                           "-o", tmp_path / "again.ipynb"], sunli)
        assert "reproduced: identical" in reproduced
        # --- the legal reviewer reviews and releases the report -----------------------------------------
        assert "reviewed" in _run(["report", "review", notebook, "--archive", view, "--as", "fawu",
                                   "--decision", "approve", "--note", "scope and findings checked"],
                                  as_person("fawu"))
        assert "released" in _run(["report", "release", notebook, "--archive", view, "--as", "fawu",
                                   "--acknowledge-hold", "--note", "for the file"], as_person("fawu"))
        _bundle_and_verify(view, archive, grant_id, session, sunli, as_person("fawu"), as_person("shenji"),
                           client, tmp_path)
        _run(["verify", view, "--as", "sunli"], as_person("sunli"), code=8)  # a full verify is not the operator's
    _only_the_custodian_unlocked(archive, backend)


def _custodian_keeps_the_keys(backend: str, archive: Path, custodian: dict[str, str]) -> None:
    """On the server's host: the custody holds the keys (no key file but the file custody's), rotates them, runs
    the full verify and refuses a wrong PIN / token / passphrase. The path afterwards runs on the rotated keys."""
    config = (archive / "archive.toml").read_text(encoding="utf-8")
    assert f'backend = "{backend}"' in config or (backend == "file" and "backend" not in config), config
    assert (archive / "keys" / "master.json").exists() == (backend == "file")
    _run(["keys", "rotate", archive, "--as", "custodian"], custodian)
    status = json.loads(_run(["keys", "status", archive, "--json"], custodian))
    assert status["current_version"] == 2 and [v["version"] for v in status["versions"]] == [1, 2], status
    verified = json.loads(_run(["verify", archive, "--json"], custodian))
    assert verified["ok"] and verified["chunks_decrypted"] > 0, verified
    _run(["verify", archive], {**custodian, **WRONG_SECRET[backend]}, code=errors.WrongPassphrase.exit_code)


def _bundle_and_verify(view: Path, archive: Path, grant_id: str, session: str, operator: dict[str, str],
                       legal: dict[str, str], auditor: dict[str, str], client: dict[str, str], tmp_path: Path) -> None:
    """An evidence bundle attested by the server and verified offline; the auditor's full verify on the server."""
    bundle = tmp_path / "case.zip"
    out = json.loads(_run(["bundle", "export", "--archive", view, "--grant", grant_id, "--as", "sunli",
                           "--session", session, "-o", bundle, "--json"], operator, code=None))
    if out["held"]:  # personal data in the window: a legal reviewer releases it, attested by the server
        _run(["bundle", "release", out["bundle_id"], "--archive", view, "--as", "fawu", "--note", "checked",
              "-o", bundle], legal)
    # the custodian publishes the archive's public key; the reviewer needs nothing else
    pub = archive / "keys" / "archive-signing.pub"
    assert "intact" in _run(["bundle", "verify", bundle, "--pubkey", pub], client)
    out = _run(["verify", view, "--as", "shenji", "--json"], auditor)
    assert json.loads(out)["ok"] is True


def _only_the_custodian_unlocked(archive: Path, backend: str) -> None:
    """Afterwards: only the custodian's commands and the key server unlocked the master keys, all in ``backend``."""
    entries = [json.loads(line) for line in (archive / "audit" / "log.jsonl").read_text().splitlines()]
    unlocks = [e for e in entries if e["action"] == "unlock"]
    purposes = {e["details"].get("purpose") for e in unlocks}
    assert "investigator keyserver" in purposes and purposes <= CUSTODIAN_PURPOSES, purposes
    assert {e["details"].get("custody") for e in unlocks if e["outcome"] == "ok"} == {backend}
    assert [e["details"].get("purpose") for e in unlocks if e["outcome"] == "denied"] == ["investigator verify"]
    assert not (archive / "org" / "totp").exists()  # no TOTP state in the shared folder
    actions = {(e["actor"], e["action"], e["outcome"]) for e in entries}
    for expected in (("wugang", "people.enroll_totp", "allowed"), ("zhouzong", "request.approve", "allowed"),
                     ("sunli", "login", "allowed"), ("sunli", "bundle.attest", "allowed"),
                     ("sunli", "verify", "denied")):
        assert expected in actions, expected
