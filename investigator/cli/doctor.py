"""`investigator doctor ARCHIVE`: the quarterly security check (每季度开展系统安全检测) as a sealed report."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import click

from investigator.cli.options import (archive_argument, check_out_folder, echo_json, json_option, key_dir_option,
                                      signing_key)

#: exit code when the check found something to act on (the report was still written and sealed)
FINDINGS_EXIT = 16


def _percent(text: str) -> float:
    from investigator.errors import ConfigError

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%?\s*", text)
    if not match or not 0 < float(match.group(1)) <= 100:
        raise ConfigError(f"--sample {text!r}: expected a percentage such as 10% (above 0, at most 100%)")
    return float(match.group(1))


def _thresholds(items: tuple[str, ...]) -> dict[str, Any]:
    import yaml

    from investigator.errors import ConfigError

    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--threshold {item!r}: expected NAME=VALUE, e.g. work_start=9")
        try:
            out[name.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--threshold {item!r}: the value does not parse") from None
    return out


@click.command("doctor")
@archive_argument
@click.option("--as", "person", required=True, metavar="AUDITOR",
              help="Who runs the check; needs the audit permission (the auditor role) and signs the report.")
@click.option("--target", "targets", multiple=True, metavar="TARGET",
              help="A backup target to verify and whose snapshots count for freshness: a folder or s3://bucket/"
                   "prefix (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); repeatable.")
@click.option("--sample", default="100%", show_default=True, metavar="N%",
              help="Share of each target's objects downloaded and hashed (100% = all, as backup verify --read-data).")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("reports"),
              show_default=True, help="Reports folder; the notebook goes to OUT/doctor/<time>-doctor.ipynb.")
@click.option("--threshold", "thresholds", multiple=True, metavar="NAME=VALUE",
              help="Override an anomaly threshold (recorded in the report): work_start=9, work_end=19, "
                   "rest_days=[6], volume_min, volume_factor, refusal_burst, refusal_minutes, pair_max, pair_days.")
@key_dir_option
@click.option("--no-html", is_flag=True, help="Skip the HTML copy.")
@json_option
def doctor(archive: Path, person: str, targets: tuple[str, ...], sample: str, out_dir: Path,
           thresholds: tuple[str, ...], key_dir: Path | None, no_html: bool, as_json: bool) -> None:
    """Quarterly security check (季度安全检测).

    A sealed report of metadata, no content.

    \b
    Verifies the archive offline and each --target (all objects or a --sample),
    dates the master keys and the next rotation, reports retention and legal
    holds, the newest snapshot of each backup tier on the targets given, and
    access anomalies in the audit log over the last quarter (off-hours case
    openings, unusual daily volumes, bursts of refusals, one approver approving
    one requester again and again). Runs without a grant or any archive key:
    the person needs the audit permission and signs the report with their
    personal key ($INVESTIGATOR_KEY_PASSPHRASE or a prompt); the seal records
    that basis instead of a grant. Check it with 'investigator report verify'.
    Schedule it once a quarter (docs/admin.md, "The quarterly check").
    Exit 0: no finding; 16: findings (listed; the report is written and sealed);
    8: the person may not audit; other codes as for every command.
    Examples:
      investigator doctor ./case-archive --as zhengjie
      investigator doctor ./case-archive --as zhengjie --threshold work_start=9 --threshold 'rest_days=[6]'
      investigator doctor ./case-archive --as zhengjie --target /mnt/cold/investigator \\
          --target s3://evidence-backup/case-archive --sample 10% -o /srv/reports --json
    """
    from investigator.backup.doctor import run_doctor
    from investigator.settings import Settings
    from investigator.vault.store import Archive

    from investigator.analysis.anomalies import Thresholds
    from investigator.errors import ConfigError

    overrides = _thresholds(thresholds)
    Thresholds.from_mapping(overrides)  # a bad name or value is refused here, before anything runs
    missing = [name for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not os.environ.get(name)]
    if missing and any(t.startswith("s3://") for t in targets):
        # the report kernel's boto3 reads these (never a report parameter); without them every S3 check would fail
        raise ConfigError(f"S3 credentials missing: set {' and '.join(missing)} (and AWS_ENDPOINT_URL for a service "
                          "other than AWS) / 未设置 S3 凭据")
    share = _percent(sample)  # usage mistakes before the personal key's passphrase is asked for
    check_out_folder(out_dir, "reports folder")  # before doctor.run is audited
    opened = Archive.open(archive)
    lang = "en" if Settings.from_environ(os.environ).lang.startswith("en") else "zh"
    result = run_doctor(opened, person=person, signer=signing_key(opened, person, key_dir), targets=list(targets),
                        sample=share, out_dir=out_dir, lang=lang, html=not no_html,
                        thresholds=overrides)
    if as_json:
        echo_json({"notebook": str(result.notebook), "html": str(result.html), "digest": result.digest,
                   "report_id": result.report_id, "findings": result.findings, "held": result.held})
    else:
        click.echo(f"report / 报告: {result.notebook}")
        click.echo(f"html:          {result.html}")
        click.echo(f"sealed / 已封存: {result.digest}")
        if not result.findings:
            click.echo("no findings / 未发现问题")
        for row in result.findings:
            click.secho(f"[{row['area']}] {row['subject']}: {row['finding']}", fg="yellow")
        if result.findings:
            click.echo(f"{len(result.findings)} finding(s) / 项发现")
    if result.findings:
        raise SystemExit(FINDINGS_EXIT)


def register(main: click.Group) -> None:
    main.add_command(doctor)
