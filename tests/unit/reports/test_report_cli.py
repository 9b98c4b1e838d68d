"""`report verify` given an HTML copy without its notebook says what to pass (no traceback)."""

from __future__ import annotations

from click.testing import CliRunner

from investigator.cli import main
from investigator.errors import ReportError


def test_verify_on_the_html_copy_names_the_sealed_notebook(tmp_path) -> None:
    copy = tmp_path / "20261118T061500Z-complaint_investigation.html"
    copy.write_text("<html><body>report</body></html>", encoding="utf-8")
    result = CliRunner().invoke(main, ["report", "verify", str(copy)])
    assert result.exit_code == ReportError.exit_code
    assert "Traceback" not in result.output and "is the HTML copy of a report" in result.output
    assert "20261118T061500Z-complaint_investigation.ipynb" in result.output and "--notebook" in result.output


def test_an_output_folder_that_cannot_be_written_is_named_before_anything_runs(tmp_path) -> None:
    # 'report run ... -o /proc/nope' spent the TOTP code, logged in and audited report.run, then ended in a
    # FileNotFoundError traceback; 'doctor -o' the same after auditing doctor.run
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    for args in (["report", "run", "keyword_sweep", "--archive", str(tmp_path / "no-archive"), "--grant", "G-1",
                  "--as", "sunli", "--totp", "123456", "-o", str(blocker / "reports")],
                 ["doctor", str(tmp_path / "no-archive"), "--as", "zhengjie", "-o", str(blocker / "reports")]):
        result = CliRunner().invoke(main, args, env={"INVESTIGATOR_KEYSERVER": ""})
        assert result.exit_code == 2, result.output
        assert "a-file/reports: the reports folder cannot be made or written" in result.output
        assert "Traceback" not in result.output
    fine = tmp_path / "new" / "reports"
    result = CliRunner().invoke(main, ["doctor", str(tmp_path / "no-archive"), "--as", "zhengjie", "-o", str(fine)])
    assert result.exit_code == 3 and not (tmp_path / "new").exists()  # checked, then left as it was


def test_a_bad_doctor_sample_is_refused_before_the_passphrase_prompt(make_archive, tmp_path) -> None:
    # 'doctor --sample 150%' first asked for the auditor's key passphrase, then refused the share
    archive, _ = make_archive()
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "zhengjie.key").write_text("{}", encoding="utf-8")
    result = CliRunner().invoke(main, ["doctor", str(archive.root), "--as", "zhengjie", "--sample", "150%",
                                       "--key-dir", str(tmp_path / "keys")],
                                env={"INVESTIGATOR_KEY_PASSPHRASE": ""}, input="")
    assert result.exit_code == 2 and "--sample '150%'" in result.output and "passphrase" not in result.output
