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
from investigator.errors import PolicyDenied, ReportError
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
