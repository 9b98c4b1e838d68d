"""Report commands: run, seal, verify, reproduce, review, release, export, templates."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from investigator.cli.options import (archive_passphrase, cafile_option, check_out_folder, echo_checks, echo_json,
                                      json_option, key_dir_option, keyserver_option, person_key, signing_key)

archive_option = click.option("--archive", "archive_path", type=click.Path(path_type=Path, file_okay=False),
                              default=None, help="The archive (default: the one the report names, if present).")
notebook_argument = click.argument("notebook", type=click.Path(path_type=Path, dir_okay=False, exists=True))


def _read(notebook: Path) -> Any:
    """The report notebook at ``notebook``. Raises ReportError for anything else (e.g. the HTML copy)."""
    import nbformat

    from investigator.errors import ReportError

    if notebook.suffix.lower() not in (".html", ".htm"):
        _check_json(notebook)
    try:
        return nbformat.read(str(notebook), as_version=4)
    except (ValueError, OSError, KeyError, AttributeError, TypeError) as exc:  # NotJSONError is a ValueError
        sealed = notebook.with_suffix(".ipynb")
        hint = (f"the HTML copy is for reading; verify the sealed notebook {sealed}"
                if notebook.suffix.lower() in (".html", ".htm") else "pass the report's .ipynb file")
        raise ReportError(f"{notebook} is not a report notebook ({type(exc).__name__})", hint=hint) from None


def _notebook_of_copy(copy: Path, given: Path | None) -> Path:
    """The sealed notebook an HTML copy is checked against. Raises ReportError naming what to pass."""
    from investigator.errors import ReportError

    notebook = given or copy.with_suffix(".ipynb")
    if not notebook.is_file():
        raise ReportError(f"{copy} is the HTML copy of a report; its sealed notebook {notebook.name} is not beside "
                          "it", hint="pass the notebook with --notebook PATH (the copy is checked against it)")
    return notebook


def _check_json(notebook: Path) -> None:
    """Raise IntegrityError naming the position when ``notebook`` is not a JSON object (hostile or damaged)."""
    import json

    from investigator.errors import IntegrityError

    try:
        data = json.loads(notebook.read_bytes())
    except json.JSONDecodeError as exc:
        raise IntegrityError(f"not JSON (line {exc.lineno}, column {exc.colno})", path=str(notebook),
                             hint="pass the report's .ipynb file") from None
    except UnicodeDecodeError as exc:
        raise IntegrityError(f"not UTF-8 at byte {exc.start}", path=str(notebook)) from None
    except OSError as exc:
        raise IntegrityError(f"unreadable ({exc.strerror})", path=str(notebook)) from None
    if not isinstance(data, dict) or not isinstance(data.get("cells", []), list) \
            or not isinstance(data.get("metadata", {}), dict):
        raise IntegrityError("not a notebook: expected a JSON object with a 'cells' list and a 'metadata' object",
                             path=str(notebook))


def _write(nb: Any, notebook: Path) -> None:
    import nbformat

    nbformat.write(nb, str(notebook))


def _archive_for(nb: Any, given: Path | None) -> Any:
    """--archive, else the archive the sealed parameters name (when it is there)."""
    from investigator.vault.store import Archive
    from investigator.errors import ConfigError

    if given is not None:
        return Archive.open(given)
    try:
        meta = (nb.get("metadata") or {}).get("investigator") or {}
        recorded = ((meta.get("seal") or {}).get("body") or {}).get("parameters", {}).get("archive") \
            or ((nb.get("metadata") or {}).get("papermill") or {}).get("parameters", {}).get("archive")
    except (AttributeError, TypeError):  # hostile metadata: the verifier reports it
        recorded = None
    if isinstance(recorded, str) and recorded and Path(recorded).is_dir():
        return Archive.open(Path(recorded))
    raise ConfigError("which archive? pass --archive")


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


@click.group()
def report() -> None:
    """Report notebooks (分析报告, 结果应用).

    Run a template, seal, verify, reproduce, review and release.

    \b
    Example (the demo archive; see docs/reviewer.md and docs/automation.md):
      investigator report run complaint_investigation --archive demo-archive --grant G-... --as sunli --totp 123456
      investigator report verify reports/DEMO-.../20261118T061500Z-complaint_investigation.ipynb
    """


@report.command("templates")
@json_option
def templates_cmd(as_json: bool) -> None:
    """List the report templates and their parameters (列出报告模板).

    \b
    Example:
      investigator report templates
    """
    from investigator.reports.run import list_templates, template_parameters

    rows = [{"name": p.stem, "path": str(p), "parameters": sorted(template_parameters(p))} for p in list_templates()]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']:<26} {', '.join(row['parameters'])}")


@report.command("run")
@click.argument("template")
@click.option("--archive", "archive_path", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--grant", required=True, help="Grant id or grant file.")
@click.option("--as", "person", required=True, metavar="ID", help="The grant's operator (or its service identity).")
@click.option("--totp", default=None, help="A fresh TOTP code: the run logs in once and passes the session privately.")
@click.option("--session", default=None, help="A session token from 'investigator login' (or $INVESTIGATOR_SESSION).")
@click.option("-p", "--parameter", "params", multiple=True, nargs=2, metavar="NAME VALUE",
              help="A template parameter, parsed as YAML (papermill's -p): -p keywords '[投诉, 退款]'.")
@click.option("-r", "--raw-parameter", "raw_params", multiple=True, nargs=2, metavar="NAME VALUE",
              help="A string parameter taken as is: -r case_id 042 stays '042'.")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("reports"),
              show_default=True, help="Reports folder; the notebook goes to OUT/<case>/<time>-<template>.ipynb.")
@key_dir_option
@keyserver_option
@cafile_option
@click.option("--no-html", is_flag=True, help="Skip the HTML copy.")
@json_option
def run_cmd(template: str, archive_path: Path, grant: str, person: str, totp: str | None, session: str | None,
            params: tuple[tuple[str, str], ...], raw_params: tuple[tuple[str, str], ...], out_dir: Path,
            key_dir: Path | None, keyserver: str | None, cafile: str | None, no_html: bool, as_json: bool) -> None:
    """Run a report template under a grant (执行报告模板).

    Execute it with papermill, seal it and write the HTML copy.

    \b
    The archive passphrase comes from $INVESTIGATOR_PASSPHRASE (or a prompt), the signing key's
    from $INVESTIGATOR_KEY_PASSPHRASE (or a prompt). Neither, nor the session, enters the report.
    With --keyserver (or INVESTIGATOR_KEYSERVER) no archive passphrase is read: the case is opened
    at the key server with the operator's personal key, and the kernel gets only the key server's
    URL and a short-lived process ticket (revoked when the run ends).
    Examples:
      investigator report run complaint_investigation --archive demo-archive --grant G-1a2b --as sunli --totp 123456
      investigator report run keyword_sweep --archive A --grant G --as svc-qa --session "$INVESTIGATOR_SESSION" \\
          -p keywords '[退款, refund]' -r case QA-2026-11 -o /srv/reports
      investigator report run keyword_sweep --archive A --grant G --as sunli --totp 123456 \\
          --keyserver https://keys.example:8765 --cafile ca.pem
    """
    from investigator.vault.store import Archive
    from investigator.settings import SESSION_ENV
    from investigator.reports.run import run_report

    check_out_folder(out_dir, "reports folder")  # before the code is spent and the run audited
    opened = Archive.open(archive_path)
    if keyserver:  # the key server holds the master keys: no archive passphrase is read here
        passphrase = None
        signer = person_key(opened, person, key_dir)
    else:
        passphrase = archive_passphrase()
        signer = signing_key(opened, person, key_dir)
    parameters: dict[str, Any] = {name: _parse_value(value) for name, value in params}
    parameters.update({name: value for name, value in raw_params})
    result = run_report(template, archive=opened, grant=grant, person=person, signer=signer, passphrase=passphrase,
                        totp=totp, session=session or (None if totp else os.environ.get(SESSION_ENV)),
                        parameters=parameters, out_dir=out_dir, html=not no_html, keyserver=keyserver, cafile=cafile)
    if as_json:
        echo_json({"notebook": str(result.notebook), "html": str(result.html), "digest": result.digest,
                   "report_id": result.report_id, "held": result.held, "reasons": result.reasons})
        return
    click.echo(f"report: {result.notebook}")
    click.echo(f"html:   {result.html}")
    click.echo(f"sealed: {result.digest} (status draft)")
    if result.held:
        click.secho("held by the circuit breaker (熔断): " + "; ".join(result.reasons), fg="yellow")


@report.command("seal")
@notebook_argument
@archive_option
@click.option("--as", "person", required=True, metavar="ID", help="The grant's operator, who signs.")
@click.option("--template", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="The template it was run from (for its hash; default: by the name in the notebook).")
@key_dir_option
@click.option("--html/--no-html", default=True, help="Write the HTML copy beside it.")
def seal_cmd(notebook: Path, archive_path: Path | None, person: str, template: Path | None, key_dir: Path | None,
             html: bool) -> None:
    """Seal a notebook executed with plain papermill (封存报告).

    Records its provenance, digest, signature and audit entry.

    \b
    Example:
      papermill templates/keyword_sweep.ipynb out.ipynb -p archive A -p grant G -p person sunli
      investigator report seal out.ipynb --archive A --as sunli
    """
    from investigator.errors import ReportError
    from investigator.reports.html import write_html
    from investigator.reports.run import find_template
    from investigator.reports.seal import seal_notebook, template_name

    nb = _read(notebook)
    opened = _archive_for(nb, archive_path)
    if template is None:
        try:
            template = find_template(template_name(nb))
        except ReportError:
            template = None
    result = seal_notebook(nb, archive=opened, signer=signing_key(opened, person, key_dir), person=person,
                           template=template)
    _write(nb, notebook)
    if html:
        write_html(notebook, page=result.page)
    click.echo(f"sealed: {result.digest}")
    if result.held:
        click.secho("held by the circuit breaker (熔断): " + "; ".join(result.reasons), fg="yellow")


@report.command("verify")
@notebook_argument
@archive_option
@click.option("--pubkey", "pubkeys", multiple=True, type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="A trusted public key file (base64 Ed25519, or a person key file); repeatable. The archive's "
                   "own key file given here with --archive pins the archive's key.")
@click.option("--fingerprint", "pin_fingerprint", default=None, metavar="HEX",
              help="Pin the archive's signing key (SHA-256 of its raw Ed25519 key in hex; 'investigator info "
                   "--json' prints it as signing_key_fingerprint).")
@click.option("--as", "actor", default="verifier", metavar="ID", help="Who verifies (for the audit log).")
@click.option("--notebook", "sealed_notebook", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="For an HTML copy: its sealed notebook (default: the .ipynb beside it).")
@json_option
@click.pass_context
def verify_cmd(ctx: click.Context, notebook: Path, archive_path: Path | None, pubkeys: tuple[Path, ...],
               pin_fingerprint: str | None, actor: str, sealed_notebook: Path | None, as_json: bool) -> None:
    """Check a report (校验报告).

    Its digest, signatures, provenance and audit registration. Exit 0 when intact, 4 otherwise.

    \b
    On failure it names what changed: the cell, the provenance field, the signature.
    Given the HTML copy (report.html), it verifies the sealed notebook beside it (or
    --notebook) and checks the copy against it: the page's SHA-256 is in the seal,
    and its banner must show the notebook's seal and status.
    Read-only unless --archive is given: only then is the check recorded in that
    archive's audit log (without it the archive the report names, if present, is
    read, never written). Pin the archive's key with --fingerprint (or its key
    file as --pubkey); unpinned, the output says the key came from the archive.
    Examples:
      investigator report verify reports/C-1/20261118T061500Z-complaint_investigation.ipynb --archive A
      investigator report verify report.ipynb --archive A --fingerprint 3f2a...(64 hex digits)
      investigator report verify report.ipynb --pubkey sunli.pub     # offline: digest and signature only
      investigator report verify report.html --archive A             # the reader's copy, against report.ipynb
    """
    from investigator.errors import ConfigError, IntegrityError
    from investigator.reports.seal import load_pubkey, verify_report
    from investigator.vault.verify import key_fingerprint, parse_fingerprint

    copy = notebook if notebook.suffix.lower() in (".html", ".htm") else None
    if copy is not None:
        notebook = _notebook_of_copy(copy, sealed_notebook)
    nb = _read(notebook)
    try:
        opened = _archive_for(nb, archive_path) if (archive_path or not pubkeys) else None
    except ConfigError:
        opened = None
    keys = [load_pubkey(p) for p in pubkeys]
    pin = parse_fingerprint(pin_fingerprint) if pin_fingerprint is not None else None
    if pin is None and opened is not None:  # the archive's own key file among --pubkey pins it
        genesis = key_fingerprint(opened.signing_keys().genesis) if keys else None
        pin = genesis if genesis and any(key_fingerprint(k) == genesis for k in keys) else None
    result = verify_report(nb, archive=opened, pubkeys=keys, actor=actor, record=archive_path is not None, pin=pin)
    if copy is not None:
        from investigator.reports.html import check_html_copy

        check_html_copy(copy.read_bytes(), nb, result)
        notebook = copy
    if opened is not None and archive_path is None:
        result.warn(f"checked against the archive the report names ({opened.root}), read-only: pass --archive to "
                    "record the check in its audit log")
    if opened is None:  # 'intact' must not read as more than was checked
        result.warn("without the archive only the content digest and the signatures were checked, not the data "
                    "read (chunks, Merkle roots), the grant or the audit registration: pass --archive for those")
    echo_checks(result, as_json=as_json,
                summary=f"{notebook}: {'intact' if result.ok else 'NOT INTACT'} (status {result.facts['status']})")
    if not result.ok:
        ctx.exit(IntegrityError.exit_code)


@report.command("reproduce")
@notebook_argument
@archive_option
@click.option("--as", "person", required=True, metavar="ID")
@click.option("--totp", default=None)
@click.option("--session", default=None)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Where to write the re-executed notebook (default: NOTEBOOK.reproduced.ipynb).")
@click.option("--template", "template_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="The template version the seal names, when the installed one has changed since "
                   "(its SHA-256 must be the sealed one).")
@key_dir_option
@keyserver_option
@cafile_option
@json_option
@click.pass_context
def reproduce_cmd(ctx: click.Context, notebook: Path, archive_path: Path | None, person: str, totp: str | None,
                  session: str | None, output: Path | None, template_file: Path | None, key_dir: Path | None,
                  keyserver: str | None, cafile: str | None, as_json: bool) -> None:
    """Reproduce a sealed report (复现已封存的报告).

    Re-execute it from its recorded parameters and compare the content digests.

    \b
    With --keyserver (or INVESTIGATOR_KEYSERVER) the kernel gets a process ticket, as in
    'report run'; the operator's personal key signs the requests (INVESTIGATOR_KEY_PASSPHRASE
    or a prompt) and no archive passphrase is read.
    Examples:
      investigator report reproduce reports/C-1/20261118T061500Z-complaint_investigation.ipynb --as sunli --totp 123456
      git show REV:templates/keyword_sweep.ipynb > old.ipynb     # the template changed since the report was sealed
      investigator report reproduce REPORT.ipynb --as sunli --totp 123456 --template old.ipynb
    """
    from investigator.errors import IntegrityError
    from investigator.settings import SESSION_ENV
    from investigator.reports.reproduce import reproduce_report

    nb = _read(notebook)
    opened = _archive_for(nb, archive_path)
    passphrase, signer = (None, person_key(opened, person, key_dir)) if keyserver else (archive_passphrase(), None)
    result = reproduce_report(notebook, archive=opened, person=person, passphrase=passphrase, totp=totp,
                              session=session or (None if totp else os.environ.get(SESSION_ENV)), output=output,
                              keyserver=keyserver, cafile=cafile, signer=signer, template=template_file)
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo(f"sealed digest:     {result.sealed_digest}")
        click.echo(f"reproduced digest: {result.new_digest}")
        for line in result.differences:
            click.secho(f"  differs: {line}", fg="red")
        for line in result.environment:
            click.echo(f"  ran differently: {line}")
        click.echo("reproduced: identical" if result.same else "reproduced: DIFFERENT")
    if not result.same:
        ctx.exit(IntegrityError.exit_code)


@report.command("review")
@notebook_argument
@archive_option
@click.option("--as", "person", required=True, metavar="ID", help="The reviewer (never the operator).")
@click.option("--decision", type=click.Choice(["approve", "reject"]), required=True)
@click.option("--note", required=True, help="The reviewer's note (recorded and signed).")
@key_dir_option
def review_cmd(notebook: Path, archive_path: Path | None, person: str, decision: str, note: str,
               key_dir: Path | None) -> None:
    """Add a reviewer's signed decision (法律顾问审核).

    Draft -> reviewed (or rejected).

    \b
    Example:
      investigator report review report.ipynb --as zhouzong --decision approve --note "scope and findings checked"
    """
    from investigator.reports.html import refresh_banner
    from investigator.reports.review import review_report

    nb = _read(notebook)
    opened = _archive_for(nb, archive_path)
    status = review_report(nb, archive=opened, reviewer=person, signer=signing_key(opened, person, key_dir),
                           decision=decision, note=note)
    _write(nb, notebook)
    refresh_banner(notebook, nb)  # the HTML copy shows the new status; its sealed content stays as it was
    click.echo(f"{notebook}: {status}")


@report.command("release")
@notebook_argument
@archive_option
@click.option("--as", "person", required=True, metavar="ID", help="A legal reviewer (not the operator).")
@click.option("--acknowledge-hold", is_flag=True, help="Release although the circuit breaker holds it (read why first).")
@click.option("--note", default="", help="Recorded with the release.")
@key_dir_option
def release_cmd(notebook: Path, archive_path: Path | None, person: str, acknowledge_hold: bool, note: str,
                key_dir: Path | None) -> None:
    """Release a reviewed report for export (放行已审核的报告).

    Its status goes from reviewed to released.

    \b
    Example:
      investigator report release report.ipynb --as sunli --acknowledge-hold --note "customer consent on file"
    """
    from investigator.reports.review import release_report

    nb = _read(notebook)
    opened = _archive_for(nb, archive_path)
    status = release_report(nb, archive=opened, releaser=person, signer=signing_key(opened, person, key_dir),
                            acknowledge_hold=acknowledge_hold, note=note)
    _write(nb, notebook)
    from investigator.reports.html import refresh_banner

    refresh_banner(notebook, nb)  # the HTML copy shows the new status; its sealed content stays as it was
    click.echo(f"{notebook}: {status}")


@report.command("export")
@notebook_argument
@archive_option
@click.option("--as", "person", required=True, metavar="ID", help="Who exports (needs the export permission).")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False))
def export_cmd(notebook: Path, archive_path: Path | None, person: str, out_dir: Path) -> None:
    """Copy a released report out of the system (导出报告).

    The notebook and its HTML copy; needs the export permission.

    \b
    Example:
      investigator report export report.ipynb --as sunli -o /media/usb/case-042
    """
    from investigator.reports.review import export_report

    opened = _archive_for(_read(notebook), archive_path)
    for path in export_report(notebook, archive=opened, person=person, out_dir=out_dir):
        click.echo(f"exported: {path}")


def register(main: click.Group) -> None:
    main.add_command(report)
