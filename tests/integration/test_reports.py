"""Report templates run on the demo archive (papermill), seal, verify, reproduce, review, release, export."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import pytest

from investigator.vault.store import Archive
from investigator.demo import DEMO_PASSPHRASE, demo_grant, demo_session
from investigator.errors import ConfigError, PolicyDenied, ReportError
from investigator.demo.people import DEMO_ONLY_PASSPHRASE
from investigator.authority.identity import unlock_person_key
from investigator.reports.run import TEMPLATE_NAMES, check_template_allowed, run_report
from investigator.reports.review import export_report, release_report, review_report
from investigator.reports.seal import verify_report

pytestmark = pytest.mark.slow


def person_key(archive: Archive, person: str):
    return unlock_person_key(archive, person, DEMO_ONLY_PASSPHRASE.format(person=person),
                             key_dir=archive.root / "demo-keys")


@pytest.fixture(scope="session")
def report_archive(demo_archive, tmp_path_factory) -> Archive:
    root = tmp_path_factory.mktemp("reports") / "archive"
    shutil.copytree(demo_archive, root)
    return Archive.open(root)


@pytest.fixture(scope="session")
def reports(report_archive, tmp_path_factory) -> dict[str, Path]:
    """Each template executed and sealed once (shared by the tests below)."""
    out = tmp_path_factory.mktemp("out")
    signer = person_key(report_archive, "sunli")
    session = demo_session(report_archive.root)
    done = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in TEMPLATE_NAMES:
            result = run_report(name, archive=report_archive, grant=demo_grant(report_archive.root), person="sunli",
                                signer=signer, passphrase=DEMO_PASSPHRASE, session=session, out_dir=out)
            done[name] = result.notebook
    return done


def read(path: Path):
    return nbformat.read(str(path), as_version=4)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_template_runs_seals_and_verifies(reports, report_archive, name):
    path = reports[name]
    assert path.parent.name == "DEMO-2026-11-18-complaint" and path.name.endswith(f"-{name}.ipynb")
    html = path.with_suffix(".html").read_text(encoding="utf-8")
    assert "Plotly.newPlot" in html and 'src="https://' not in html  # plots render with no network
    result = verify_report(read(path), archive=report_archive)
    assert result.ok, result.problems
    body = read(path).metadata["investigator"]["seal"]["body"]
    assert body["grant"]["id"] == demo_grant(report_archive.root) and body["template"]["sha256"]
    assert "session" not in body["parameters"]
    text = path.read_text(encoding="utf-8")
    assert DEMO_PASSPHRASE not in text and "ivs1." not in text  # no secret in the report


def test_complaint_report_finds_the_planted_delay(reports):
    text = path_text = reports["complaint_investigation"].read_text(encoding="utf-8")
    assert "120 min" in path_text and "投诉" in text


def test_verify_names_a_changed_cell_source_and_output(reports, report_archive):
    nb = read(reports["complaint_investigation"])
    changed = copy.deepcopy(nb)
    changed.cells[5].source += "\n# edited"
    result = verify_report(changed, archive=report_archive)
    assert not result.ok and "cell 5" in result.problems[0]
    changed = copy.deepcopy(nb)
    index = next(i for i, c in enumerate(changed.cells) if c.cell_type == "code" and c.get("outputs"))
    out = changed.cells[index].outputs[0]
    out["data"]["text/plain"] = "tampered"
    result = verify_report(changed, archive=report_archive)
    assert not result.ok and f"cell {index}" in " ".join(result.problems)


def test_verify_names_a_changed_provenance_field_and_signature(reports, report_archive):
    nb = read(reports["keyword_sweep"])
    changed = copy.deepcopy(nb)
    changed.metadata["investigator"]["seal"]["body"]["run"]["started"] = "2020-01-01T00:00:00.000000Z"
    result = verify_report(changed, archive=report_archive)
    joined = " ".join(result.problems)
    assert not result.ok and "signature does not verify" in joined and "run" in joined
    changed = copy.deepcopy(nb)
    sig = changed.metadata["investigator"]["seal"]["signature"]
    changed.metadata["investigator"]["seal"]["signature"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    assert not verify_report(changed, archive=report_archive).ok
    changed = copy.deepcopy(nb)
    changed.metadata["investigator"]["seal"]["body"]["data"]["merkle_roots"]["1"] = "0" * 64
    assert not verify_report(changed, archive=report_archive).ok


def test_verify_offline_needs_an_anchored_key(reports, report_archive):
    nb = read(reports["timeline_reconstruction"])
    assert not verify_report(nb).ok  # no archive, no key: not anchored
    assert verify_report(nb, pubkeys=[person_key(report_archive, "sunli").public]).ok


def test_reproduction_gives_the_same_digest(reports, report_archive, tmp_path):
    from investigator.reports.reproduce import reproduce_report

    result = reproduce_report(reports["complaint_investigation"], archive=report_archive, person="sunli",
                              passphrase=DEMO_PASSPHRASE, session=demo_session(report_archive.root),
                              output=tmp_path / "again.ipynb")
    assert result.same, result.differences
    assert result.environment == []  # the same code, Python, packages and normalization tables as the seal


def test_review_release_and_export(reports, report_archive, tmp_path):
    path = tmp_path / "report.ipynb"
    shutil.copy(reports["internal_investigation"], path)
    nb = read(path)
    with pytest.raises(PolicyDenied):  # the operator never reviews their own report
        review_report(nb, archive=report_archive, reviewer="sunli", signer=person_key(report_archive, "sunli"),
                      decision="approve", note="self")
    nbformat.write(nb, str(path))
    with pytest.raises(PolicyDenied, match="released"):
        export_report(path, archive=report_archive, person="sunli", out_dir=tmp_path / "out")
    boss = person_key(report_archive, "zhouzong")
    assert review_report(nb, archive=report_archive, reviewer="zhouzong", signer=boss, decision="approve",
                         note="checked") == "reviewed"
    assert release_report(nb, archive=report_archive, releaser="zhouzong", signer=boss) == "released"
    nbformat.write(nb, str(path))
    assert verify_report(read(path), archive=report_archive).ok
    with pytest.raises(PolicyDenied):  # an agent has no export permission
        export_report(path, archive=report_archive, person="zhangwei", out_dir=tmp_path / "out")
    written = export_report(path, archive=report_archive, person="sunli", out_dir=tmp_path / "out")
    assert written and written[0].exists()
    forged = read(path)
    forged.metadata["investigator"]["reviews"][0]["body"]["note"] = "edited"
    assert not verify_report(forged, archive=report_archive).ok


def _verify_copy(copy: Path, *extra: str):
    from click.testing import CliRunner

    from investigator.cli import main

    return CliRunner().invoke(main, ["report", "verify", str(copy), *extra])


def test_the_html_copy_is_sealed_and_verified_against_its_notebook(reports, report_archive, tmp_path):
    """The reader's copy: content under the seal, banner checked against the notebook, status kept current."""
    from investigator.reports.html import refresh_banner

    path = tmp_path / "report.ipynb"
    shutil.copy(reports["complaint_investigation"], path)
    shutil.copy(reports["complaint_investigation"].with_suffix(".html"), path.with_suffix(".html"))
    copy_path = path.with_suffix(".html")
    assert read(path).metadata["investigator"]["seal"]["body"]["html"]["sha256"].startswith("sha256:")
    done = _verify_copy(copy_path)
    assert done.exit_code == 0, done.output
    assert "HTML copy: content sha256:" in done.output and "banner matches the notebook (status draft)" in done.output
    original = copy_path.read_text(encoding="utf-8")
    # a finding edited in the copy: the content no longer matches the seal
    assert "120 min" in original
    copy_path.write_text(original.replace("120 min", "12 min"), encoding="utf-8")
    done = _verify_copy(copy_path)
    assert done.exit_code == 4 and "its content differs from the sealed copy" in done.output, done.output
    # a status the notebook does not have, shown in the banner
    copy_path.write_text(original.replace("status <b>draft</b>", "status <b>released</b>"), encoding="utf-8")
    done = _verify_copy(copy_path)
    assert done.exit_code == 4 and "seal banner differs from the notebook's" in done.output, done.output
    # markers removed: not a copy investigator wrote
    copy_path.write_text(original.replace("<!-- investigator:seal-banner -->", ""), encoding="utf-8")
    assert "markers are missing" in _verify_copy(copy_path).output
    copy_path.write_bytes(b"\xff\xfe<html>")
    assert "not UTF-8 at byte 0" in _verify_copy(copy_path).output
    # a review changes the banner's status, not the sealed content: the refreshed copy verifies
    copy_path.write_text(original, encoding="utf-8")
    nb = read(path)
    review_report(nb, archive=report_archive, reviewer="zhouzong", signer=person_key(report_archive, "zhouzong"),
                  decision="approve", note="checked")
    nbformat.write(nb, str(path))
    assert _verify_copy(copy_path).exit_code == 4  # the old banner still says draft
    refresh_banner(path, nb)
    done = _verify_copy(copy_path)
    assert done.exit_code == 0 and "status reviewed" in done.output, done.output
    # the copy without its notebook: told what to pass; with --notebook it is found elsewhere
    alone = tmp_path / "alone" / "copy.html"
    alone.parent.mkdir()
    shutil.copy(copy_path, alone)
    done = _verify_copy(alone)
    assert done.exit_code == ReportError.exit_code and "--notebook" in done.output and "Traceback" not in done.output
    assert _verify_copy(alone, "--notebook", str(path)).exit_code == 0


def test_verify_without_the_archive_says_what_it_did_not_check(reports, report_archive, tmp_path):
    """--pubkey alone checks digest and signatures only; 'intact' must say so, with the archive it need not."""
    path = tmp_path / "report.ipynb"
    shutil.copy(reports["keyword_sweep"], path)
    key_file = report_archive.root / "demo-keys" / "sunli.key"
    done = _verify_copy(path, "--pubkey", str(key_file))
    assert done.exit_code == 0 and "intact" in done.output, done.output
    assert "provenance" not in done.output  # not checked, so not listed as checked
    assert "only the content digest and the signatures were checked" in done.output
    assert "the grant or the audit registration: pass --archive" in done.output
    done = _verify_copy(path, "--archive", str(report_archive.root))
    assert done.exit_code == 0 and "were checked" not in done.output, done.output


def test_breaker_holds_a_report_until_a_legal_reviewer_releases_it(reports, report_archive, tmp_path):
    nb = read(reports["complaint_investigation"])
    seal = nb.metadata["investigator"]["seal"]
    # re-seal with a breaker verdict that holds (redact=False), as a run with -p redact false would
    nb.metadata.setdefault("papermill", {}).setdefault("parameters", {})["redact"] = False
    from investigator.reports.seal import seal_notebook

    sealed = seal_notebook(nb, archive=report_archive, signer=person_key(report_archive, "sunli"), person="sunli")
    assert sealed.held and seal is not nb.metadata["investigator"]["seal"]
    boss = person_key(report_archive, "zhouzong")
    review_report(nb, archive=report_archive, reviewer="zhouzong", signer=boss, decision="approve", note="ok")
    with pytest.raises(PolicyDenied, match="legal reviewer"):
        release_report(nb, archive=report_archive, releaser="zhouzong", signer=boss)
    alerts = [e for e in report_archive.audit.entries() if e.action == "breaker.alert"]
    assert alerts and alerts[-1].outcome == "denied"


def test_standing_grant_limited_to_templates(report_archive, frozen_now):
    class Standing:
        id, templates = "G-standing", ("keyword_sweep",)

        def allows_template(self, name):
            return name in self.templates

    check_template_allowed(report_archive, Standing(), "keyword_sweep", "svc", frozen_now)
    with pytest.raises(PolicyDenied, match="limited to the templates"):
        check_template_allowed(report_archive, Standing(), "complaint_investigation", "svc", frozen_now)


def test_secret_parameters_are_refused(report_archive):
    with pytest.raises(ReportError, match="session"):
        run_report("keyword_sweep", archive=report_archive, grant=demo_grant(report_archive.root), person="sunli",
                   signer=person_key(report_archive, "sunli"), passphrase=DEMO_PASSPHRASE,
                   session="x", parameters={"session": "ivs1.leak"})


def test_executed_report_passes_nbval_lax(reports, report_archive, tmp_path):
    target = tmp_path / "nbval.ipynb"
    shutil.copy(reports["keyword_sweep"], target)
    env = {**os.environ, "INVESTIGATOR_PASSPHRASE": DEMO_PASSPHRASE,
           "INVESTIGATOR_SESSION": demo_session(report_archive.root)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider",
                           "-p", "no:xdist", str(target)], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]


# --- key-server mode: the kernel holds a process ticket, never the passphrase or a session ---------------------

KS_TEMPLATE = "keyword_sweep"
KS_LABEL = f"report run {KS_TEMPLATE}"
# a last cell for a copy of the template: what the kernel's environment and file system held (names, never values)
ENV_PROBE = '''import os
from pathlib import Path
rn.markdown("kernel environment: " + " ".join(sorted(k for k in os.environ if k.startswith(("INVESTIGATOR_", "BAO_")))))
rn.markdown(f"master key file readable: {Path(archive, 'keys', 'master.json').exists()}")
'''


@pytest.fixture
def keyserver_run(demo_archive, tmp_path):
    """A copy of the demo archive served by a real ``investigator keyserver`` process on 127.0.0.1.

    Once the server has unlocked the custody, ``keys/master.json`` is moved out of the archive:
    the runner and its kernel (the client side) could not unlock the archive if they tried.
    Yields (archive, url); the key file is put back before the server stops.
    """
    import re
    import signal

    root = tmp_path / "archive"
    shutil.copytree(demo_archive, root)
    env = {**os.environ, "INVESTIGATOR_PASSPHRASE": DEMO_PASSPHRASE}
    proc = subprocess.Popen([sys.executable, "-m", "investigator.cli", "keyserver", str(root), "--listen",
                             "127.0.0.1:0", "--shared-totp-state", "--rate", "50", "--person-rate", "50"], env=env, stderr=subprocess.PIPE,
                            text=True)
    hidden = tmp_path / "custodian-only" / "master.json"
    try:
        line = proc.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        hidden.parent.mkdir()
        shutil.move(str(root / "keys" / "master.json"), str(hidden))
        yield Archive.open(root), f"http://127.0.0.1:{match.group(1)}"
    finally:
        if hidden.exists():
            shutil.move(str(hidden), str(root / "keys" / "master.json"))
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)  # a loaded machine can take more than 10 s to let the server finish


def next_code(person: str = "sunli") -> str:
    """A TOTP code of the next 30 s step, by the real clock (the key server's): never one used already."""
    from datetime import datetime, timedelta, timezone

    from investigator import _crypto
    from investigator.demo.people import DEMO_ONLY_TOTP_SECRETS

    return _crypto.totp(DEMO_ONLY_TOTP_SECRETS[person], (datetime.now(timezone.utc) + timedelta(seconds=30)).timestamp())


def test_keyserver_mode_gives_the_kernel_only_a_process_ticket_and_revokes_it(keyserver_run, tmp_path, monkeypatch):
    import json

    import papermill

    from investigator.access.case import open_case
    from investigator.access.process_ticket import decode
    from investigator.settings import PROCESS_TICKET_ENV

    archive, url = keyserver_run
    for name in ("INVESTIGATOR_PASSPHRASE", "INVESTIGATOR_SESSION", "INVESTIGATOR_KEYSERVER", PROCESS_TICKET_ENV):
        monkeypatch.delenv(name, raising=False)
    seen: list[dict[str, str]] = []
    original = papermill.execute_notebook

    def spy(*args, **kwargs):  # the environment the kernel inherits is the runner's at this call
        seen.append(dict(os.environ))
        return original(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", spy)
    before = len(list(archive.audit.entries()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_report(KS_TEMPLATE, archive=archive, grant=demo_grant(archive.root), person="sunli",
                            signer=person_key(archive, "sunli"), totp=next_code(), keyserver=url,
                            out_dir=tmp_path / "out")
    # the kernel's environment: the URL and the ticket added, no passphrase, session or key passphrase
    [kernel_env] = seen
    token = kernel_env[PROCESS_TICKET_ENV]
    assert kernel_env["INVESTIGATOR_KEYSERVER"] == url and token.startswith("ipt1.")
    assert not {"INVESTIGATOR_PASSPHRASE", "INVESTIGATOR_SESSION", "INVESTIGATOR_KEY_PASSPHRASE"} & set(kernel_env)
    assert PROCESS_TICKET_ENV not in os.environ and "INVESTIGATOR_KEYSERVER" not in os.environ  # restored
    ticket = decode(token, archive.signing_public, archive_id=archive.archive_id)
    assert ticket.label == KS_LABEL and ticket.person == "sunli" and ticket.grant_id == demo_grant(archive.root)
    assert (ticket.expires - ticket.issued).total_seconds() <= 2 * 3600
    # it completed and sealed; the report holds no secret and records no credential parameter
    assert verify_report(read(result.notebook), archive=archive).ok
    text = result.notebook.read_text(encoding="utf-8")
    for secret in (DEMO_PASSPHRASE, token, token.rsplit(".", 1)[1], "ipt1.", "ivs1."):
        assert secret not in text
    assert not {"session", "process_ticket", "passphrase"} & set(read(result.notebook).metadata["investigator"]["seal"]
                                                               ["body"]["parameters"])
    # the server released the kernel's keys against the ticket, audited with the process label; nothing unlocked
    new = list(archive.audit.entries())[before:]
    releases = [e for e in new if e.action == "key.release"]
    assert releases and all(e.outcome == "allowed" and e.actor == "sunli" and e.details["process"] == KS_LABEL
                            and e.details["process_ticket"] == ticket.id for e in releases)
    assert not [e for e in new if e.action in ("unlock", "login")]
    [run] = [e for e in new if e.action == "report.run"]
    assert run.details["process"] == KS_LABEL and run.details["process_ticket"] == ticket.id
    assert [e.outcome for e in new if e.action == "process_ticket.revoke"] == ["allowed"]
    assert not any(token in json.dumps(e.details) for e in new)
    # revoked when the run ended: a further key request with the ticket is refused
    with pytest.raises(PolicyDenied) as refused:
        open_case(archive, process_ticket=token, keyserver=url).messages()
    assert refused.value.rule == "process_ticket.revoked"
    # reproducing through the key server (a session this time) gives the same digest, with a ticket of its own
    from investigator.demo import demo_session
    from investigator.reports.reproduce import reproduce_report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = reproduce_report(result.notebook, archive=archive, person="sunli", session=demo_session(archive.root),
                                 keyserver=url, signer=person_key(archive, "sunli"), output=tmp_path / "again.ipynb")
    assert again.same, again.differences
    label = f"report reproduce {KS_TEMPLATE}"
    assert any(e.action == "key.release" and e.details.get("process") == label for e in archive.audit.entries())
    assert [e.action for e in archive.audit.entries() if e.details.get("label") == label
            and e.outcome == "allowed"] == ["process_ticket.issue", "process_ticket.revoke"]


def test_keyserver_mode_from_the_cli_scrubs_the_runners_secrets(keyserver_run, tmp_path):
    import json
    import re

    from click.testing import CliRunner

    from investigator.cli import main
    from investigator.demo import demo_session
    from investigator.reports import notebook as rn

    archive, url = keyserver_run
    template = tmp_path / f"{KS_TEMPLATE}.ipynb"
    nb = read(Path(rn.__file__).resolve().parents[2] / "templates" / f"{KS_TEMPLATE}.ipynb")
    nb.cells.append(nbformat.v4.new_code_cell(ENV_PROBE))
    nbformat.write(nb, str(template))
    session = demo_session(archive.root)  # the demo operator's live session (checked by the key server)
    # a careless shell: the archive passphrase and a session are set; neither may reach the kernel
    env = {"INVESTIGATOR_PASSPHRASE": DEMO_PASSPHRASE, "INVESTIGATOR_SESSION": session,
           "INVESTIGATOR_KEY_PASSPHRASE": DEMO_ONLY_PASSPHRASE.format(person="sunli"), "INVESTIGATOR_KEYSERVER": url}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        done = CliRunner().invoke(main, ["report", "run", str(template), "--archive", str(archive.root), "--grant",
                                         demo_grant(archive.root), "--as", "sunli", "--key-dir",
                                         str(archive.root / "demo-keys"), "-o", str(tmp_path / "out"), "--json"],
                                  env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    notebook = Path(json.loads(done.stdout)["notebook"])
    text = notebook.read_text(encoding="utf-8")
    shown = re.search(r"kernel environment: ([A-Z_ ]*)", text)
    assert shown, "the probe cell did not run"
    names = set(shown.group(1).split())
    assert {"INVESTIGATOR_KEYSERVER", "INVESTIGATOR_PROCESS_TICKET"} <= names
    assert not names & {"INVESTIGATOR_PASSPHRASE", "INVESTIGATOR_SESSION", "INVESTIGATOR_KEY_PASSPHRASE",
                        "INVESTIGATOR_PKCS11_PIN", "BAO_TOKEN"}
    assert "master key file readable: False" in text
    assert DEMO_PASSPHRASE not in text and session not in text and "ipt1." not in text
    assert verify_report(read(notebook), archive=archive).ok
    new = [e for e in archive.audit.entries() if e.details.get("process") == KS_LABEL]
    assert any(e.action == "key.release" and e.outcome == "allowed" for e in new)
    assert [e.outcome for e in archive.audit.entries() if e.action == "process_ticket.revoke"] == ["allowed"]


def test_the_kernel_refuses_a_ticket_for_another_grant_or_person(keyserver_run, monkeypatch):
    from investigator.access.case import open_case
    from investigator.demo import demo_session
    from investigator.reports import notebook as rn

    archive, url = keyserver_run
    grant = demo_grant(archive.root)
    operator = open_case(archive, grant=grant, person="sunli", session=demo_session(archive.root), keyserver=url,
                         signing_key=person_key(archive, "sunli"))
    token = operator.process_ticket(KS_LABEL, lifetime=300)
    monkeypatch.setenv("INVESTIGATOR_PROCESS_TICKET", token)
    monkeypatch.setenv("INVESTIGATOR_KEYSERVER", url)
    monkeypatch.delenv("INVESTIGATOR_SESSION", raising=False)
    try:
        for wrong in ({"grant": "G-not-this-one", "person": "sunli"}, {"grant": grant, "person": "zhouzong"}):
            with pytest.raises(ReportError, match="process ticket"):
                rn.open_report_case(str(archive.root), **wrong)
        case = rn.open_report_case(str(archive.root), grant=grant, person="sunli")
        by_file = rn.open_report_case(str(archive.root), grant=str(archive.layout.grant(grant)), person="sunli")
        assert case.process == KS_LABEL and by_file.grant.id == grant and case.messages().height > 0
    finally:
        operator.revoke_process_ticket(token)


def test_keyserver_mode_revokes_the_ticket_when_the_kernel_fails(keyserver_run, tmp_path):
    from investigator.reports import notebook as rn

    archive, url = keyserver_run
    template = tmp_path / f"{KS_TEMPLATE}.ipynb"
    nb = read(Path(rn.__file__).resolve().parents[2] / "templates" / f"{KS_TEMPLATE}.ipynb")
    nb.cells.append(nbformat.v4.new_code_cell("raise RuntimeError('planted failure')"))
    nbformat.write(nb, str(template))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ReportError, match="planted failure"):
            run_report(template, archive=archive, grant=demo_grant(archive.root), person="sunli",
                       signer=person_key(archive, "sunli"), totp=next_code(), keyserver=url,
                       out_dir=tmp_path / "out")
    [run] = [e for e in archive.audit.entries() if e.action == "report.run" and "process_ticket" in e.details]
    revokes = [e for e in archive.audit.entries() if e.action == "process_ticket.revoke"]
    assert [e.outcome for e in revokes] == ["allowed"] and run.details["process_ticket"] in str(revokes[0].details)
    with pytest.raises(ConfigError, match="archive passphrase"):  # and a key-server run reads no passphrase
        run_report(KS_TEMPLATE, archive=archive, grant=demo_grant(archive.root), person="sunli",
                   signer=person_key(archive, "sunli"), passphrase=DEMO_PASSPHRASE, totp="000000", keyserver=url)
