"""The authority happy path end to end through the CLI: people, enrolment, policy, request, approval, grant.

Everything below runs through ``investigator`` commands (click's CliRunner); TOTP
codes are computed from the secrets the enrol command shows once.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from investigator import _crypto
from investigator.cli import main

PASSPHRASE = "cli-test-passphrase"


def _secret(output: str) -> bytes:
    match = re.search(r"secret=([A-Z2-7]+)", output)
    assert match, output
    return _crypto.unb32(match.group(1))


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("INVESTIGATOR_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("INVESTIGATOR_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None, code: int = 0) -> str:
        result = runner.invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)
        assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
        return result.output

    return run


def test_happy_path_end_to_end(cli, tmp_path: Path):
    archive = tmp_path / "archive"
    cli("init", archive, "--kdf-cost", "14")
    # bootstrap: the first admin and the policy, signed with the archive key
    cli("people", "add", archive, "--id", "wugang", "--name", "吴刚", "--role", "admin")
    cli("policy", "set", archive, Path(__file__).parents[2] / "investigator" / "default_policy.toml")
    out = cli("people", "enroll", archive, "wugang", "--kdf-cost", "14", "--no-qr",
              env={"INVESTIGATOR_KEY_PASSPHRASE": "pw-wugang"})
    assert "otpauth://totp/" in out
    # from now on the admin signs
    admin = {"INVESTIGATOR_KEY_PASSPHRASE": "pw-wugang"}
    cli("people", "add", archive, "--id", "zhouzong", "--name", "周总", "--role", "executive", "--as", "wugang", env=admin)
    cli("people", "add", archive, "--id", "sunli", "--name", "孙丽", "--role", "legal", "--role", "operator",
        "--supervisor", "zhouzong", "--dept", "法务部", "--group", "法务部", "--as", "wugang", env=admin)
    cli("people", "link-identity", archive, "sunli", "wecom:sunli", "slack:U0SUNLI", "--as", "wugang", env=admin)
    secrets = {}
    for pid in ("zhouzong", "sunli"):
        out = cli("people", "enroll", archive, pid, "--as", "wugang", "--kdf-cost", "14",
                  env={**admin, "INVESTIGATOR_NEW_KEY_PASSPHRASE": f"pw-{pid}"})
        secrets[pid] = _secret(out)
    listing = cli("people", "list", archive)
    assert "sunli" in listing and "totp=yes" in listing
    # a bootstrap-style change is now refused: an admin is enrolled
    out = cli("people", "add", archive, "--id", "x1", "--name", "X", "--role", "agent", code=8)
    assert "must be signed by an admin" in out

    # the customer's signed consent is registered first; the request names its id
    form = tmp_path / "王芳-知情同意书.pdf"
    form.write_bytes(b"%PDF-1.4 consent of wangfang, e-signed 2026-11-18")
    out = cli("consent", "add", archive, form, "--case", "C-2026-017", "--customer", "wangfang", "--as", "sunli",
              env={"INVESTIGATOR_KEY_PASSPHRASE": "pw-sunli"})
    consent_id = re.search(r"CONSENT-\d{8}-[0-9a-f]{8}", out).group(0)
    assert consent_id in cli("consent", "list", archive, "--case", "C-2026-017")
    assert "application/pdf" in cli("consent", "show", archive, consent_id)
    assert "matches consent" in cli("consent", "verify", archive, consent_id, "--file", form)
    out = cli("request", "new", archive, "--as", "sunli", "--case", "C-2026-017",
              "--purpose", "customer_complaint", "--start", "2026-11-18T14:00", "--end", "2026-11-18T17:00",
              "--participant", "zhangwei", "--reason", "complaint by 王芳", "--consent", "CONSENT-42",
              env={"INVESTIGATOR_KEY_PASSPHRASE": "pw-sunli"}, code=8)
    assert "consent.reference" in out and "investigator consent add" in out
    request_id = cli("request", "new", archive, "--as", "sunli", "--case", "C-2026-017",
                     "--purpose", "customer_complaint", "--start", "2026-11-18T14:00", "--end", "2026-11-18T17:00",
                     "--participant", "zhangwei", "--reason", "complaint by 王芳", "--consent", consent_id,
                     env={"INVESTIGATOR_KEY_PASSPHRASE": "pw-sunli"}).strip()
    assert request_id.startswith("REQ-")
    explain = cli("policy", "explain", archive, "--person", "sunli", "--request", request_id, "--approver", "zhouzong")
    assert "ALLOWED by rule request.allowed" in explain and "grant.issued" in explain
    code = _crypto.totp(secrets["zhouzong"], datetime.now(timezone.utc).timestamp())
    out = cli("request", "approve", archive, request_id, "--as", "zhouzong", "--totp", code,
              env={"INVESTIGATOR_KEY_PASSPHRASE": "pw-zhouzong"})
    grant_id = re.search(r"grant issued: (G-[0-9a-f]+)", out).group(1)
    out = cli("grant", "verify", archive, grant_id)
    assert "valid until" in out and "sunli may retrieve" in out
    shown = cli("grant", "show", archive, grant_id, "--json")
    assert '"request_hash"' in shown
    # login for automation, then revoke the grant
    code = _crypto.totp(secrets["sunli"], datetime.now(timezone.utc).timestamp())
    token = cli("login", archive, "--as", "sunli", "--totp", code).splitlines()[0]
    assert token.startswith("ivs1.")
    cli("grant", "revoke", archive, grant_id, "--reason", "case closed", "--as", "wugang", env=admin)
    out = cli("grant", "verify", archive, grant_id, code=9)
    assert "revoked" in out
    cli("logout", archive, "--as", "sunli")
    audit = (archive / "audit" / "log.jsonl").read_text(encoding="utf-8")
    for action in ("people.enroll", "policy.set", "consent.add", "consent.verify", "request.new", "request.approve", "grant.issue", "login",
                   "grant.revoke", "grant.verify"):
        assert f'"action": "{action}"' in audit


def test_policy_check_and_default(cli, tmp_path: Path):
    good = tmp_path / "p.toml"
    good.write_text(cli("policy", "default"), encoding="utf-8")
    assert "valid policy" in cli("policy", "check", good)
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text(encoding="utf-8").replace('lookback = "week"', 'lookback = "fortnight"')
                   .replace('"read_content", "archive", "approve"]', '"read_content", "archive", "approve", "fly"]'),
                   encoding="utf-8")
    out = cli("policy", "check", bad, code=2)
    assert "fortnight" not in out or "lookback" in out
    assert "unknown permission 'fly'" in out


def test_policy_show_prints_what_the_auditor_reads_off_it(cli, tmp_path: Path):
    # docs/auditor.md sends the auditor to 'policy show' for the witnesses, dual control and the retention
    # floor; its text once listed the roles only
    archive = tmp_path / "archive"
    cli("init", archive, "--kdf-cost", "14")
    policy = tmp_path / "policy.toml"
    policy.write_text(cli("policy", "default") + '\n[audit]\nwitnesses = ["/mnt/witness-disk/investigator"]\n',
                      encoding="utf-8")
    cli("policy", "set", archive, policy)
    shown = cli("policy", "show", archive)
    assert "audit witnesses / 见证: /mnt/witness-disk/investigator" in shown
    assert "originals_days=180" in shown and "dual control / 双重验证: " in shown


@pytest.mark.parametrize("args", [
    ("grant", "revoke", "{a}", "G-1a2b3c4d5e6f7a8b", "--as", "wugang"),
    ("legalhold", "add", "{a}", "--case", "C-1", "--start", "2026-11-01", "--end", "2026-11-02", "--as", "lixia"),
    ("legalhold", "release", "{a}", "HOLD-20261128-1a2b3c4d", "--as", "lixia", "--totp", "123456"),
    ("people", "revoke-key", "{a}", "zhangwei", "--as", "wugang"),
    ("request", "reject", "{a}", "REQ-20261128-1a2b3c4d", "--as", "zhouzong", "--totp", "123456"),
])
def test_a_blank_reason_is_refused_before_anything_is_read(cli, tmp_path: Path, args):
    # '--reason' was [required] but '--reason " "' went through: a revocation, hold or key revocation signed and
    # audited with no reason at all
    archive = tmp_path / "archive"
    cli("init", archive, "--kdf-cost", "14")
    before = (archive / "audit" / "log.jsonl").read_bytes()
    out = cli(*[a.format(a=archive) for a in args], "--reason", "  ", code=2)
    assert "give the reason" in out and "Traceback" not in out
    assert (archive / "audit" / "log.jsonl").read_bytes() == before


def test_a_truncated_people_csv_and_a_gbk_policy_are_refused_by_name(cli, tmp_path: Path):
    # a people.csv cut short imported 'x1' with no name, roles or supervisor (and would have blanked an existing
    # person); a policy saved as GBK ended in a UnicodeDecodeError traceback
    archive = tmp_path / "archive"
    cli("init", archive, "--kdf-cost", "14")
    people = tmp_path / "people.csv"
    people.write_text("id,name,department,groups,supervisor,roles,identities\nwugang,吴刚,信息技术部,,,admin,\n"
                      "zhangwei,张伟,客服部\n", encoding="utf-8")
    out = cli("people", "import", archive, people, code=6)
    assert "people.csv, line 3: expected 7 fields as in the header, found 3" in out
    assert not (archive / "org" / "directory").exists() or "zhangwei" not in cli("people", "list", archive)
    policy = tmp_path / "policy.toml"
    policy.write_bytes(cli("policy", "default").encode("gbk", errors="replace"))
    for args in (("policy", "check", policy), ("policy", "set", archive, policy)):
        out = cli(*args, code=2)
        assert "policy.toml: not UTF-8 text" in out and "Traceback" not in out
