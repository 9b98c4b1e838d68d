"""After ``keys migrate`` every verifier of archive signatures accepts the old key and the new one.

The demo archive (directory and policy bootstrapped with the archive key, a grant with TOTP-attested
approvals, a session) moves from its key file to OpenBao transit in this process; what the genesis key
signed before and what the new transit key signs after both verify, offline too (an evidence bundle
checked against the genesis key alone).

Without ``bao`` the file is skipped, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
from test_openbao import bao_server  # noqa: F401  (the session's dev server, a fixture)

from investigator.authority.directory import DirectoryStore
from investigator.authority.grants import Grant
from investigator.authority.identity import check_session, unlock_person_key
from investigator.authority.policy import PolicyStore
from investigator.custody.migration import migrate
from investigator.custody.registry import open_custody
from investigator.demo import DEMO_PASSPHRASE, demo_grant, demo_session
from investigator.demo.people import DEMO_ONLY_PASSPHRASE
from investigator.demo.run import DEMO_OPERATOR
from investigator.reports.bundles import export_bundle, verify_bundle
from investigator.settings import Settings
from investigator.vault.store import Archive
from investigator.vault.verify import verify_archive


@pytest.mark.slow  # builds the demo archive (shared with other tests) and moves all its keys into transit
def test_a_migrated_demo_archive_verifies_old_and_new_signatures_everywhere(demo_archive, bao_server,  # noqa: F811
                                                                             tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(demo_archive, root)
    now = datetime.now(timezone.utc) + timedelta(minutes=2)  # a TOTP step the demo's own login did not use
    before = Archive.open(root)
    genesis = before.signing_public
    old_token = root.joinpath("DEMO-SESSION.txt").read_text(encoding="utf-8").strip()
    secrets = Settings(passphrase=DEMO_PASSPHRASE, bao_addr=bao_server.addr, bao_token=bao_server.token)

    result = migrate(before, to="openbao", secrets=secrets, actor="custodian", reason="HSM project", now=now)
    assert (result.from_backend, result.to_backend, result.generation) == ("file", "openbao", "2")

    archive = Archive.open(root)
    chain = archive.signing_keys()
    assert chain.genesis == genesis and chain.current != genesis and archive.config.custody["backend"] == "openbao"
    assert not root.joinpath("keys", "master.json").exists()  # the old key file is gone
    custody = open_custody(archive, secrets, actor="auditor", purpose="test")
    assert custody.signing.public == chain.current
    # signed by the genesis key before the move: directory and policy bootstrap, grant, approvals, session
    directory = DirectoryStore(archive).load()
    PolicyStore(archive).load(directory)
    grant = Grant.from_file(archive.layout.grant(demo_grant(root)))
    grant.verify(archive, now=now)
    assert check_session(archive, old_token, DEMO_OPERATOR, now=now)
    # signed by the new key after it: a session, checkpoints, a bundle's attestation
    root.joinpath("DEMO-SESSION.txt").unlink()
    new_token = demo_session(root, now=now, keys=custody)
    assert check_session(archive, new_token, DEMO_OPERATOR, now=now)
    # every signature check, offline (the rewrapped keys' decryption is test_migration's, on a small archive;
    # through transit it would cost a request per partition key here)
    report = verify_archive(archive, keys=None)
    assert report.ok, report.problems
    checkpoints = archive.audit.checkpoints()
    assert {c["key_id"] for c in checkpoints} == {genesis.key_id, chain.current.key_id}
    assert archive.audit.verify(chain.by_id()).ok

    signer = unlock_person_key(archive, DEMO_OPERATOR, DEMO_ONLY_PASSPHRASE.format(person=DEMO_OPERATOR),
                               key_dir=root / "demo-keys")
    out = tmp_path / "case.zip"
    export_bundle(archive, grant=demo_grant(root), person=DEMO_OPERATOR, signer=signer, custody_secrets=secrets,
                  passphrase=DEMO_PASSPHRASE, session=new_token, prefix="MIG", out=out, now=now)
    with zipfile.ZipFile(out) as zf:
        attested = json.loads(zf.read("signature.json"))["archive"]["key_id"]
        assert zf.read("archive-keys.jsonl") == archive.layout.transitions.read_bytes()
    assert attested == chain.current.key_id
    checked = verify_bundle(out, pubkeys=[genesis])  # the genesis key alone: the bundle's chain leads on
    assert checked.ok, checked.problems
    stranger = verify_bundle(out, pubkeys=[_other_key()])
    assert not stranger.ok and any("not among the trusted keys" in p for p in stranger.problems)


def _other_key():
    from investigator import _crypto

    return _crypto.SigningKey.generate().public
