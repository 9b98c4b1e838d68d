"""``investigator keys migrate``: file -> pkcs11 (SoftHSM2) -> openbao (bao server -dev) -> file, as subprocesses.

Every step runs the real command in a child process, which holds the PKCS#11 module (this test process never
loads it: the SoftHSM2 token here is the children's, in its own token folder). The crash matrix kills the
child with SIGKILL at each step of the migration (one hop per step) and checks that the archive opens with the old or the new
custody and verifies, and that running the command again finishes the move.

Without SoftHSM2 or ``bao`` the file is skipped, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import PASSPHRASE, REPO, TEST_KDF_N, message_frame
from test_openbao import bao_server  # noqa: F401  (the session's dev server, a fixture)
from test_pkcs11 import MODULE_CANDIDATES, PIN, _conf, _init_token, _unavailable

from investigator import _crypto
from investigator.authority.identity import TotpStore
from investigator.custody.file import create_archive, unlock_archive
from investigator.custody.migration import STEPS
from investigator.vault.ingest import ingest_frames
from investigator.vault.store import Archive

LABEL = "investigator-migration"
HOPS = (("file", "pkcs11"), ("pkcs11", "openbao"), ("openbao", "file"))
BEFORE_SWITCH = {"after-journal", "after-target", "mid-rewrap", "before-switch"}
TIMEOUT = 120


@pytest.fixture(scope="session")
def hsm_env(tmp_path_factory) -> dict[str, str]:
    """A SoftHSM2 token of its own for the child processes: SOFTHSM2_CONF, module and PIN (not set here)."""
    module = next((path for path in MODULE_CANDIDATES if Path(path).exists()), None)
    util = shutil.which("softhsm2-util")
    if module is None or util is None:
        _unavailable("SoftHSM2 is not installed (libsofthsm2.so and softhsm2-util; apt-get install softhsm2)")
    assert module is not None and util is not None
    base = tmp_path_factory.mktemp("softhsm-migration")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(_conf(base / "tokens"), encoding="utf-8")
    env = {"SOFTHSM2_CONF": str(conf), "INVESTIGATOR_PKCS11_MODULE": module, "INVESTIGATOR_PKCS11_PIN": PIN}
    _init_token(util, LABEL, {**os.environ, **env})
    return env


@pytest.fixture
def env(hsm_env, bao_server) -> dict[str, str]:  # noqa: F811
    """What the custodian's shell holds: every custody's secret, and no key server."""
    base = {k: v for k, v in os.environ.items() if k not in ("INVESTIGATOR_KEYSERVER", "SOFTHSM2_CONF")}
    return {**base, **hsm_env, "INVESTIGATOR_PASSPHRASE": PASSPHRASE, "BAO_ADDR": bao_server.addr,
            "BAO_TOKEN": bao_server.token, "INVESTIGATOR_LANG": "en"}


@pytest.fixture
def archive(tmp_path) -> Archive:
    return _make_archive(tmp_path / "archive")


def _make_archive(root: Path) -> Archive:
    """A key-file archive with two batches and an enrolled TOTP secret (so the TOTP key must move too)."""
    made = create_archive(root, passphrase=PASSPHRASE, actor="tester", kdf_n=TEST_KDF_N)
    keys = unlock_archive(made, PASSPHRASE)
    ingest_frames(made, messages=message_frame(30), events=None, keys=keys, actor="t", sources=[], skipped=[])
    ingest_frames(made, messages=message_frame(20, day=19, start_id=100), events=None, keys=keys, actor="t",
                  sources=[], skipped=[])
    TotpStore(made).enroll(keys, "sunli", b"12345678901234567890")
    return made


def _cli(env: dict[str, str], *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    script = ("import sys\nfrom investigator.custody import migration\n"
              f"migration.CRASH_AT = {crash_at!r}  # fault injection: killed with SIGKILL at that step\n"
              "from investigator.cli import main\n"
              "main(sys.argv[1:], prog_name='investigator')\n")
    return subprocess.run([sys.executable, "-c", script, *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=TIMEOUT)


def _migrate(env, root: Path, to: str, *, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    return _cli(env, "keys", "migrate", str(root), "--to", to, "--token-label", LABEL, "--kdf-cost", "14",
                "--as", "custodian", "--reason", "test", crash_at=crash_at)


def _verify(env, root: Path) -> None:
    done = _cli(env, "verify", str(root), "--as", "auditor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "full verification: 2 manifests, 44 chunks (44 decrypted, 50 records)" in done.stdout, done.stdout


def _backend(root: Path) -> str:
    return Archive.open(root).config.custody["backend"]


def test_file_to_pkcs11_to_openbao_and_back_keeps_every_key_and_signature(env, archive):
    root = archive.root
    genesis = archive.signing_public
    for number, (source, target) in enumerate(HOPS, start=1):
        done = _migrate(env, root, target)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"{source} -> {target}" in done.stdout
        opened = Archive.open(root)
        assert opened.config.custody["backend"] == target
        assert opened.config.custody["generation"] == str(number + 1)
        chain = opened.signing_keys()
        assert len(chain.keys) == number + 1 and chain.genesis == genesis
        assert opened.config.signing_public_key == genesis.b64()  # archive.toml keeps the genesis key
        assert not opened.layout.migration_journal.exists()
        _verify(env, root)
    final = Archive.open(root)
    # the first key file was removed after the first switch; the last hop made a new one
    assert not final.layout.with_generation("").key_file.exists()
    assert final.layout.key_file.exists() and final.layout.relative(final.layout.key_file) == \
        "keys/custody/4/master.json"
    status = json.loads(_cli(env, "keys", "status", str(root), "--json").stdout)
    assert status["custody"] == {"backend": "file", "generation": "4", "migrating_to": None}
    assert status["signing"] == {"genesis_fingerprint": genesis.key_id, "transitions": 3,
                                 "current_key_id": final.signing_keys().current.key_id}
    keys = unlock_archive(final, PASSPHRASE)
    assert keys.signing.public == final.signing_keys().current
    totp_key = keys.unseal(json.loads(final.layout.totp_key.read_bytes()))
    assert len(totp_key) == 32
    moves = [e for e in final.audit.entries() if e.action == "keys.migrate"]
    assert [(e.details["from"], e.details["to"], e.outcome) for e in moves] == [(s, t, "ok") for s, t in HOPS]
    wrapped = len(final.partition_key_paths()) + 2  # every partition's data key, the index key, the TOTP key
    assert all(e.details["rewrapped"] == wrapped for e in moves)
    assert final.audit.verify(final.signing_keys().by_id()).ok


def test_refusals_are_audited_and_an_unfinished_migration_rolls_back(env, archive):
    root = archive.root
    same = _migrate(env, root, "file")
    assert same.returncode != 0 and "already in its file custody" in same.stderr
    killed = _migrate(env, root, "pkcs11", crash_at="before-switch")
    assert killed.returncode == -9, killed.stderr
    other = _migrate(env, root, "openbao")
    assert other.returncode != 0 and "migration to pkcs11 is under way" in other.stderr
    status = _cli(env, "keys", "status", str(root), "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["custody"] == {"backend": "file", "generation": "1", "migrating_to": "pkcs11"}
    assert shown["signing"]["transitions"] == 0
    assert shown["signing"]["genesis_fingerprint"] == archive.signing_public.key_id
    rolled = _cli(env, "keys", "migrate", str(root), "--abort", "--as", "custodian")
    assert rolled.returncode == 0, rolled.stderr
    opened = Archive.open(root)
    assert opened.config.custody["backend"] == "file" and not opened.layout.migration_journal.exists()
    assert not (opened.layout.keys_dir / "custody").exists()
    _verify(env, root)
    denied = [e for e in opened.audit.entries() if e.action == "keys.migrate" and e.outcome == "denied"]
    assert len(denied) == 3  # same backend, another under way, rolled back
    again = _migrate(env, root, "pkcs11")  # reuses the keys the killed attempt made in the token
    assert again.returncode == 0, again.stderr
    assert _backend(root) == "pkcs11"
    _verify(env, root)


# The crash matrix: two archives each go round the three custodies (file -> pkcs11 -> openbao -> file), each hop
# killed at a different step, so every step is killed once and every hop at two steps. (A custody an archive left
# may not be entered again with the same keys, so one archive cannot go round twice.) Later hops start from an
# archive an earlier crash left behind.
CRASH_ROUNDS = (STEPS[:3], STEPS[3:])


@pytest.mark.slow
def test_a_migration_killed_at_each_step_leaves_an_archive_that_opens_verifies_and_finishes(env, tmp_path):
    assert {step for steps in CRASH_ROUNDS for step in steps} == set(STEPS)  # a new step must join the plan
    for number, steps in enumerate(CRASH_ROUNDS):
        root = _make_archive(tmp_path / f"archive-{number}").root
        for (source, target), step in zip(HOPS, steps, strict=True):
            killed = _migrate(env, root, target, crash_at=step)
            assert killed.returncode == -9, f"{step}: {killed.stdout}{killed.stderr}"  # really killed there
            assert _backend(root) == (source if step in BEFORE_SWITCH else target), step
            _verify(env, root)  # opens with whichever custody is in force, and verifies
            rerun = _migrate(env, root, target)
            assert rerun.returncode == 0, f"{step}: {rerun.stdout}{rerun.stderr}"
            assert "finished an interrupted migration" in rerun.stdout, step
            assert _backend(root) == target
            assert not Archive.open(root).layout.migration_journal.exists()
        _verify(env, root)
        final = Archive.open(root)
        assert len(final.signing_keys().keys) == len(HOPS) + 1
        done = [e for e in final.audit.entries() if e.action == "keys.migrate" and e.outcome == "ok"]
        assert [(e.details["from"], e.details["to"]) for e in done] == list(HOPS)
        assert _crypto.VerifyKey.from_b64(final.config.signing_public_key) == final.signing_keys().genesis
