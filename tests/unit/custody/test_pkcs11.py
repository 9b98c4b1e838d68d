"""The PKCS#11 custody backend against a real SoftHSM2 token (a private token directory per test run).

Without SoftHSM2 the file is skipped, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pkcs11
import polars as pl
import pytest
from pkcs11 import Attribute, Mechanism
from support import REPO, message_frame

from investigator import _crypto, errors
from investigator.custody.base import Custody
from investigator.custody.pkcs11 import Pkcs11Custody, unlock_archive
from investigator.custody.rotation import retire, rotate
from investigator.vault.ingest import ingest_frames
from investigator.vault.store import Archive
from investigator.vault.verify import verify_archive

MODULE_CANDIDATES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                     "/usr/local/lib/softhsm/libsofthsm2.so", "/usr/lib64/pkcs11/libsofthsm2.so")
TOKEN_LABEL = "investigator-tests"
PIN = "1234-test-pin"
SO_PIN = "5678-test-so-pin"


@dataclass(frozen=True)
class SoftHsm:
    module: str
    util: str
    label: str = TOKEN_LABEL
    pin: str = PIN


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, so the PKCS#11 tests may not be skipped: {reason}")
    pytest.skip(reason)


def _conf(tokens: Path, extra: str = "") -> str:
    return f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n{extra}"


def _init_token(util: str, label: str, env: dict[str, str]) -> None:
    subprocess.run([util, "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", PIN],
                   env=env, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory):
    """A fresh SoftHSM2 token in a private token directory; SOFTHSM2_CONF is set before the module loads."""
    module = next((path for path in MODULE_CANDIDATES if Path(path).exists()), None)
    util = shutil.which("softhsm2-util")
    if module is None or util is None:
        _unavailable("SoftHSM2 is not installed (libsofthsm2.so and softhsm2-util; apt-get install softhsm2)")
    assert module is not None and util is not None
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(_conf(base / "tokens"), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(conf))
        _init_token(util, TOKEN_LABEL, dict(os.environ))
        mechanisms = pkcs11.lib(module).get_token(token_label=TOKEN_LABEL).slot.get_mechanisms()
        for needed in (Mechanism.AES_GCM, Mechanism.EDDSA, Mechanism.EC_EDWARDS_KEY_PAIR_GEN):
            if needed not in mechanisms:
                _unavailable(f"this SoftHSM2 build lacks {needed.name}")
        yield SoftHsm(module, util)


@pytest.fixture
def provision(softhsm, frozen_now):
    """Factory: a provisioned custody for a new archive id; every one is closed after the test."""
    made: list[Pkcs11Custody] = []

    def make(archive_id: str | None = None) -> Pkcs11Custody:
        custody = Pkcs11Custody.provision(softhsm.module, softhsm.pin, softhsm.label,
                                          archive_id or str(uuid.uuid4()), now=frozen_now)
        made.append(custody)
        return custody

    yield make
    for custody in made:
        custody.close()


def _open(softhsm: SoftHsm, archive_id: str, pin: str = PIN) -> Pkcs11Custody:
    return Pkcs11Custody.open(softhsm.module, pin, softhsm.label, archive_id)


def _flip(wrapped: dict, index: int) -> dict:
    blob = bytearray(_crypto.unb64(wrapped["wrapped"]))
    blob[index] ^= 0x01
    return {**wrapped, "wrapped": _crypto.b64(bytes(blob))}


def test_implements_every_custody_member():
    wanted = {name for klass in Custody.__mro__ if klass.__module__.startswith("investigator")
              for name in vars(klass) if not name.startswith("_")}
    missing = sorted(name for name in wanted if not hasattr(Pkcs11Custody, name))
    assert not missing, f"Pkcs11Custody lacks {missing}"
    for name in ("seal", "unseal", "add_version", "remove_version", "wrap", "unwrap", "new_data_key"):
        assert list(inspect.signature(getattr(Pkcs11Custody, name)).parameters) == \
            list(inspect.signature(getattr(Custody, name)).parameters), name


def test_wrapped_keys_round_trip_and_fail_when_moved_or_altered(provision):
    custody = provision()
    dek, wrapped = custody.new_data_key("messages", "2026-11-28")
    assert custody.unwrap(wrapped) == dek and len(dek) == 32
    assert set(wrapped) == {"format", "custody", "kind", "partition", "kek_version", "wrapped"}
    assert wrapped["format"] == "investigator-wrapped-key/1" and wrapped["custody"] == "pkcs11"
    assert wrapped["kek_version"] == 1 and len(_crypto.unb64(wrapped["wrapped"])) == 12 + 32 + 16
    assert custody.wrap(dek, "messages", "2026-11-28")["wrapped"] != wrapped["wrapped"]  # a fresh IV each time
    bad = [
        {**wrapped, "partition": "2026-11-29"},  # moved to another partition
        {**wrapped, "kind": "events"},  # ... or kind
        {**wrapped, "kek_version": 7},  # unknown version
        _flip(wrapped, 0),  # IV
        _flip(wrapped, 20),  # ciphertext
        _flip(wrapped, -1),  # tag
        {**wrapped, "wrapped": _crypto.b64(b"short")},
        {**wrapped, "wrapped": "not base64!"},
        {k: v for k, v in wrapped.items() if k != "custody"},  # a key file's wrapped key
        {k: v for k, v in wrapped.items() if k != "kek_version"},
    ]
    for number, altered in enumerate(bad):
        with pytest.raises(errors.IntegrityError):
            custody.unwrap(altered, what=f"case {number}")
    # another archive on the same token has keys of its own: the blob does not open there
    with pytest.raises(errors.IntegrityError):
        provision().unwrap(wrapped)
    assert custody.unwrap(wrapped) == dek  # the session survives the failed decryptions


def test_key_objects_are_sensitive_and_never_extractable(provision, softhsm):
    custody = provision()
    token = pkcs11.lib(softhsm.module).get_token(token_label=softhsm.label)
    # the process is logged in (by the custody), so this plain session sees the private objects too
    with token.open() as session:
        kek = session.get_key(label=f"investigator:{custody.archive_id}:kek:1")
        assert kek[Attribute.ID] == f"investigator:{custody.archive_id}:kek:1".encode()
        signing = session.get_key(label=f"investigator:{custody.archive_id}:signing",
                                  object_class=pkcs11.ObjectClass.PRIVATE_KEY)
        for key in (kek, signing):
            assert key[Attribute.SENSITIVE] and key[Attribute.ALWAYS_SENSITIVE]
            assert not key[Attribute.EXTRACTABLE] and key[Attribute.NEVER_EXTRACTABLE]
            assert key[Attribute.TOKEN] and key[Attribute.PRIVATE]
            with pytest.raises(pkcs11.exceptions.AttributeSensitive):
                key[Attribute.VALUE]
        assert kek[Attribute.VALUE_LEN] == 32 and not kek[Attribute.WRAP]
    assert "investigator:" not in repr(custody.signing) and PIN not in repr(custody)
    assert repr(custody) == (f"Pkcs11Custody(archive_id={custody.archive_id!r}, token={softhsm.label!r}, "
                             "versions=[1])")


def test_versions_add_and_remove(provision, softhsm, frozen_now):
    custody = provision()
    dek1, wrapped1 = custody.new_data_key("messages", "2026-11-28")
    later = frozen_now + timedelta(days=92)
    assert custody.add_version(now=later) == 2 and custody.current_version == 2
    dek2, wrapped2 = custody.new_data_key("messages", "2026-11-29")
    assert wrapped2["kek_version"] == 2 and custody.unwrap(wrapped1) == dek1
    assert custody.versions() == {1: "2026-11-28T12:00:00.000000Z", 2: "2027-02-28T12:00:00.000000Z"}
    with _open(softhsm, custody.archive_id) as other:  # a second opener finds version 2 in the token
        assert other.current_version == 2 and other.unwrap(wrapped1) == dek1
    with pytest.raises(errors.ArchiveError, match="current"):
        custody.remove_version(2)
    with pytest.raises(errors.ArchiveError, match="not in the token"):
        custody.remove_version(9)
    custody.remove_version(1)
    assert custody.versions() == {2: "2027-02-28T12:00:00.000000Z"}
    with pytest.raises(errors.IntegrityError, match="unknown master key version 1"):
        custody.unwrap(wrapped1)
    with _open(softhsm, custody.archive_id) as reopened:
        assert reopened.versions() == {2: "2027-02-28T12:00:00.000000Z"} and reopened.unwrap(wrapped2) == dek2
        with pytest.raises(errors.IntegrityError):
            reopened.unwrap(wrapped1)


def test_seal_and_unseal(provision):
    custody = provision()
    sealed = custody.seal(b"a small secret", purpose="totp", name="all")
    assert b"a small secret" not in json.dumps(sealed).encode()
    assert custody.unseal(sealed) == b"a small secret"
    for field, other in (("kind", "index"), ("partition", "someone")):
        with pytest.raises(errors.IntegrityError):
            custody.unseal({**sealed, field: other})


def test_signatures_verify_with_the_public_key(provision, softhsm):
    custody = provision()
    signature = custody.signing.sign(b"manifest bytes")
    public = _crypto.VerifyKey(custody.signing.public.raw)
    public.verify(signature, b"manifest bytes")
    with pytest.raises(errors.IntegrityError):
        public.verify(signature, b"manifest bytez")
    with _open(softhsm, custody.archive_id) as again:
        assert again.signing.public == custody.signing.public
        public.verify(again.signing.sign(b"checkpoint"), b"checkpoint")


def test_pin_token_and_provisioning_refusals(provision, softhsm, tmp_path, frozen_now):
    custody = provision()
    # while this process is logged in, a wrong PIN is still refused
    with pytest.raises(errors.WrongPassphrase):
        _open(softhsm, custody.archive_id, pin="0000")
    with pytest.raises(errors.ArchiveError, match="already holds keys"):
        Pkcs11Custody.provision(softhsm.module, PIN, softhsm.label, custody.archive_id, now=frozen_now)
    assert custody.unwrap(custody.new_data_key("a", "b")[1])  # the refusal destroyed nothing
    archive_id = custody.archive_id
    custody.close()
    with pytest.raises(errors.ArchiveError, match="closed"):
        custody.new_data_key("a", "b")
    # logged out now: the token itself refuses the PIN
    with pytest.raises(errors.WrongPassphrase):
        _open(softhsm, archive_id, pin="0000")
    with pytest.raises(errors.WrongPassphrase):
        _open(softhsm, archive_id, pin="")
    with pytest.raises(errors.ArchiveError, match="no complete key set"):
        _open(softhsm, str(uuid.uuid4()))
    with pytest.raises(errors.ArchiveError, match="no PKCS#11 token labelled"):
        Pkcs11Custody.open(softhsm.module, PIN, "no-such-token", archive_id)
    with pytest.raises(errors.ConfigError):
        Pkcs11Custody.open(str(tmp_path / "missing.so"), PIN, softhsm.label, archive_id)
    with pytest.raises(errors.ArchiveError):
        _open(softhsm, "not:an:id")
    with _open(softhsm, archive_id) as reopened:  # and the right PIN still works
        assert reopened.current_version == 1


def test_a_failed_provisioning_leaves_nothing_behind(softhsm, frozen_now, monkeypatch):
    def device_error():
        raise pkcs11.exceptions.DeviceError()

    def broken(self):  # the token fails while making the signing key, after master key version 1
        self._call("making the archive signing key", device_error)

    monkeypatch.setattr(Pkcs11Custody, "_make_signing_key", broken)
    archive_id = str(uuid.uuid4())
    with pytest.raises(errors.ArchiveError, match="not available"):
        Pkcs11Custody.provision(softhsm.module, PIN, softhsm.label, archive_id, now=frozen_now)
    monkeypatch.undo()
    with Pkcs11Custody.provision(softhsm.module, PIN, softhsm.label, archive_id, now=frozen_now) as custody:
        assert custody.versions() == {1: "2026-11-28T12:00:00.000000Z"}  # the half-made version 1 was removed


def test_concurrent_use_of_the_shared_session(provision):
    custody = provision()

    def work(i: int) -> bool:
        dek, wrapped = custody.new_data_key("messages", f"p{i}")
        return custody.unwrap(wrapped) == dek and custody.signing.public.is_valid(
            custody.signing.sign(b"x%d" % i), b"x%d" % i)

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(work, range(64)))


NO_EDDSA_SCRIPT = """
import json, sys
from datetime import datetime, timezone
import pkcs11
from investigator import errors
from investigator.custody.pkcs11 import Pkcs11Custody
module, pin, label = sys.argv[1:4]
token = pkcs11.lib(module).get_token(token_label=label)
out = {"eddsa_listed": pkcs11.Mechanism.EDDSA in token.slot.get_mechanisms()}
try:
    Pkcs11Custody.provision(module, pin, label, "a1", now=datetime.now(timezone.utc))
except errors.InvestigatorError as exc:
    out.update(error=type(exc).__name__, message=str(exc), hint=exc.hint)
with token.open(user_pin=pin) as session:
    out["objects"] = [str(o[pkcs11.Attribute.LABEL]) for o in session.get_objects()]
print(json.dumps(out))
"""


def test_a_token_without_eddsa_is_refused_at_provisioning(softhsm, tmp_path):
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    # SoftHSM2 2.6 ignores the first name of a "-" list, hence CKM_EDDSA twice
    conf.write_text(_conf(tmp_path / "tokens", "slots.mechanisms = -CKM_EDDSA,CKM_EDDSA,CKM_EC_EDWARDS_KEY_PAIR_GEN\n"),
                    encoding="utf-8")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    _init_token(softhsm.util, "no-eddsa", env)
    run = subprocess.run([sys.executable, "-c", NO_EDDSA_SCRIPT, softhsm.module, PIN, "no-eddsa"], env=env,
                         cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["eddsa_listed"] is False
    assert out["error"] == "ArchiveError" and "Ed25519" in out["message"] and "key file" in out["hint"]
    assert out["objects"] == []  # refused before anything was made


def test_the_vault_works_end_to_end_on_the_token(softhsm, tmp_path, frozen_now):
    made: list[Pkcs11Custody] = []

    def new_keyring(archive_id: str, keyfile_path: Path) -> Pkcs11Custody:
        made.append(Pkcs11Custody.provision(softhsm.module, softhsm.pin, softhsm.label, archive_id, now=frozen_now))
        return made[-1]

    archive = Archive.create(tmp_path / "archive", new_keyring=new_keyring, actor="tester", now=frozen_now)
    with made[0] as custody:
        assert not archive.layout.key_file.exists()  # nothing secret on disk
        ingest_frames(archive, messages=message_frame(30), events=None, sources=[], skipped=[], keys=custody,
                      actor="tester")
        before = pl.concat([archive.read_chunk(e, custody) for e in archive.chunk_entries("messages")])
        report = verify_archive(archive, keys=custody)
        assert report.ok, report.problems
        result = rotate(archive, custody, actor="tester")
        assert result.version == 2 and result.rewrapped >= 2
        retire(archive, custody, version=1, actor="tester")
        assert sorted(custody.versions()) == [2]
    reopened = Archive.open(archive.root)
    with pytest.raises(errors.WrongPassphrase):
        unlock_archive(reopened, softhsm.module, "0000", softhsm.label, actor="tester")
    with unlock_archive(reopened, softhsm.module, softhsm.pin, softhsm.label, actor="tester") as again:
        after = pl.concat([reopened.read_chunk(e, again) for e in reopened.chunk_entries("messages")])
        assert after["record_hash"].to_list() == before["record_hash"].to_list()
        ingest_frames(reopened, messages=message_frame(5, day=21, start_id=500), events=None, sources=[], skipped=[],
                      keys=again, actor="tester")
        report = verify_archive(reopened, keys=again)
        assert report.ok, report.problems


def test_the_embedded_key_service_opens_a_token_archive_without_a_passphrase(softhsm, tmp_path, frozen_now):
    """open_case / bundle export in embedded mode reach the archive's configured custody, not only the key file."""
    from investigator.access.keyservice import EmbeddedKeyService, unlock_archive as embedded_unlock
    from investigator.custody.registry import create_archive
    from investigator.settings import Settings

    secrets = Settings(pkcs11_module=softhsm.module, pkcs11_pin=softhsm.pin)
    archive = create_archive(tmp_path / "a", backend="pkcs11", secrets=secrets, token_label=softhsm.label,
                             now=frozen_now)
    custody = embedded_unlock(archive, actor="sunli", purpose="open_case", secrets=secrets)
    try:
        assert isinstance(custody, Pkcs11Custody)
        assert custody.signing.public.b64() == archive.config.signing_public_key
        EmbeddedKeyService(archive, custody)  # the gate takes any custody
        last = list(archive.audit.entries())[-1]
        assert (last.action, last.outcome, last.details["custody"], last.details["purpose"]) == \
            ("unlock", "ok", "pkcs11", "open_case")
        with pytest.raises(errors.ConfigError, match="INVESTIGATOR_PKCS11_MODULE"):
            embedded_unlock(archive, "a passphrase is not a PIN", actor="sunli", purpose="open_case")
    finally:
        custody.close()


def test_period_keys_are_token_objects_that_shredding_destroys(softhsm, tmp_path, frozen_now):
    """Crypto-shredding on the token: one sensitive, non-extractable AES key per quarter, C_DestroyObject'ed."""
    from shred_support import read_partition
    from investigator.backup.shred import shred_period

    made: list[Pkcs11Custody] = []

    def new_keyring(archive_id: str, keyfile_path: Path) -> Pkcs11Custody:
        made.append(Pkcs11Custody.provision(softhsm.module, softhsm.pin, softhsm.label, archive_id, now=frozen_now))
        return made[-1]

    archive = Archive.create(tmp_path / "archive", new_keyring=new_keyring, actor="tester", now=frozen_now,
                             custody={"backend": "pkcs11", "token_label": softhsm.label, "period_keys": "quarter"})
    made[0].close()
    archive = Archive.open(archive.root)
    with unlock_archive(archive, softhsm.module, softhsm.pin, softhsm.label, actor="tester") as custody:
        old = message_frame(12).with_columns(pl.col("ts") - timedelta(days=280))  # 2026-02-11: 2026Q1
        for frame in (old, message_frame(12, start_id=100)):
            ingest_frames(archive, messages=frame, events=None, sources=[], skipped=[], keys=custody, actor="tester")
        assert set(custody.period_keys()) == {"2026Q1", "2026Q4"}
        stored = json.loads(next((archive.layout.batch(1).folder / "keys" / "messages").glob("*.json")).read_text())
        assert stored["format"] == "investigator-wrapped-key/2" and stored["custody"] == "pkcs11"
        key = custody._period_key("2026Q4", create=False)
        assert key[Attribute.SENSITIVE] and not key[Attribute.EXTRACTABLE]
        rotate(archive, custody, actor="tester")  # period keys are never rewrapped under a master-key version
        retire(archive, custody, version=1, actor="tester")
        assert verify_archive(archive, keys=custody).ok
        now = frozen_now + timedelta(days=300)  # 2026Q1 ended more than 180 days before
        record = shred_period(archive, custody, "2026Q1", actor="wugang", approver="lixia", now=now)
        assert record.body["totals"]["rows"] == 12 and set(custody.period_keys()) == {"2026Q4"}
    with unlock_archive(archive, softhsm.module, softhsm.pin, softhsm.label, actor="tester") as fresh:
        with pytest.raises(errors.PeriodShredded):
            read_partition(archive, fresh, "2026-02-11")
        assert read_partition(archive, fresh, "2026-11-18") == 12
        report = verify_archive(archive, keys=fresh)
        assert report.ok, report.problems
        assert report.counts["chunks_destroyed"] == 12
        with pytest.raises(errors.PeriodShredded):  # no key is made again for a shredded period
            fresh.new_data_key("messages", "2026-02-12")


def test_wrapping_under_a_key_object_gone_from_the_token_says_so(provision, softhsm, frozen_now):
    """`keys migrate a1 --to pkcs11` with the token's objects gone mid-way (SoftHSM2's token folder moved away)
    ended in 'PKCS#11 error while wrapping a data key (ObjectHandleInvalid)', with no hint of what to check. A key
    object that vanished under an open custody (another process retired it, the token was swapped) is now named."""
    custody = provision()
    with _open(softhsm, custody.archive_id) as other:  # another process rotates and retires the version in use here
        other.add_version(now=frozen_now + timedelta(days=92))
        other.remove_version(1)
    with pytest.raises(errors.ArchiveError, match="no longer in the token") as caught:
        custody.wrap(b"k" * 32, "messages", "2026-11-28")
    assert "token_label" in caught.value.hint and "ObjectHandleInvalid" in str(caught.value)
