"""Running a report template through papermill, then sealing it and writing the reviewer's HTML copy.

    >>> result = run_report("complaint_investigation", archive="demo-archive", grant="G-...", person="sunli",
    ...                     totp="123456", passphrase=..., key_passphrase=..., out_dir=Path("reports"))  # doctest: +SKIP
    >>> result.notebook                                                                                  # doctest: +SKIP
    PosixPath('reports/DEMO-2026-11-18-complaint/20261118T061500Z-complaint_investigation.ipynb')

Identity, embedded key service (no ``keyserver=``): a TOTP code is single-use, so a run with
``totp=`` logs in once (:func:`investigator.authority.identity.login`) and hands the kernel the
session through ``$INVESTIGATOR_SESSION``, with the archive passphrase in
``$INVESTIGATOR_PASSPHRASE``: neither ever enters the notebook's parameters or
outputs. A session made for the run is revoked when the run ends.

Key-server mode (``keyserver="https://..."``; separation of duties): the runner opens the case
through the key server as the operator (requests signed with ``signer``, the operator's personal
key; ``totp=`` or ``session=`` for the identity check), asks it for a process ticket labelled
``report run <template>`` (:meth:`investigator.access.case.Case.process_ticket`, at most 2 h)
and starts the kernel with only ``$INVESTIGATOR_KEYSERVER`` and ``$INVESTIGATOR_PROCESS_TICKET``
added to its environment; the secrets of :data:`KERNEL_SECRETS` are removed from it. The archive
passphrase is never read, no session is made, and the ticket is revoked when the run ends (it
expires by itself otherwise). Sealing signs with the operator's personal key either way.

    >>> result = run_report("keyword_sweep", archive=archive, grant="G-...", person="sunli", signer=key,
    ...                     totp="123456", keyserver="https://keys.example:8765")        # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from investigator.settings import (BAO_TOKEN_ENV, KEY_PASSPHRASE_ENV, KEYSERVER_ENV, PASSPHRASE_ENV, PKCS11_PIN_ENV,
                                   PROCESS_TICKET_ENV, REPORT_ARCHIVE_ENV, SESSION_ENV)
from investigator.errors import ConfigError, InvestigatorError, PolicyDenied, ReportError
from investigator.schema import format_ts
from investigator.access.case import open_case
from investigator.access.keyservice import unlock_archive
from investigator.access.process_ticket import MAX_LIFETIME, decode
from investigator.authority.grants import Grant, find_grant
from investigator.authority.identity import login, revoke_session
from investigator.reports.html import write_html
from investigator.reports.seal import SECRET_PARAMETERS, seal_notebook
from investigator.reports.audit_view import head_seq
from investigator import _crypto
from investigator.vault.store import Archive


KERNEL = "python3"
REPO_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
PACKAGE_TEMPLATES = Path(sys.prefix) / "share" / "investigator" / "templates"  # wheel installs
TEMPLATE_NAMES = ("complaint_investigation", "internal_investigation", "keyword_sweep", "timeline_reconstruction",
                  "audit_review")
# Key-server mode: how long the kernel's process ticket lives (revoked when the run ends; at most MAX_LIFETIME, 2 h)
TICKET_LIFETIME = timedelta(hours=1)
# Variables carrying secrets that a key-server run removes from the kernel's environment
KERNEL_SECRETS = (PASSPHRASE_ENV, SESSION_ENV, KEY_PASSPHRASE_ENV, PKCS11_PIN_ENV, BAO_TOKEN_ENV)
# Parameters a run refuses (they would be written into the report): the sealer's list and the key-server credentials
RUN_SECRET_PARAMETERS = (*SECRET_PARAMETERS, "process_ticket", "key_passphrase")


def _ipc_kernel_manager() -> type:
    """A kernel manager that talks to the report kernel over Unix sockets (0600), not TCP ports.

    The kernel then holds decrypted records behind file permissions rather than
    loopback ports any local user could connect to (and ipykernel stops warning
    about unencrypted TCP).
    """
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport = "ipc"

    return IPCKernelManager


def template_dirs() -> list[Path]:
    return [d for d in (REPO_TEMPLATES, PACKAGE_TEMPLATES) if d.is_dir()]


def find_template(name: str | Path) -> Path:
    """A template by path or by name (``templates/<name>.ipynb``). Raises ReportError."""
    candidate = Path(name)
    if candidate.suffix == ".ipynb" and candidate.exists():
        return candidate
    for folder in template_dirs():
        path = folder / f"{Path(name).stem}.ipynb"
        if path.exists():
            return path
    known = sorted({p.stem for d in template_dirs() for p in d.glob("*.ipynb")})
    raise ReportError(f"no report template {str(name)!r}", hint=f"templates: {', '.join(known) or 'none found'}")


def list_templates() -> list[Path]:
    seen: dict[str, Path] = {}
    for folder in template_dirs():
        for path in sorted(folder.glob("*.ipynb")):
            seen.setdefault(path.stem, path)
    return [seen[k] for k in sorted(seen)]


@contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set environment variables for the kernel papermill starts (it inherits them), then restore.

    A value of None removes the variable for the kernel (key-server mode removes the secrets).
    """
    saved = {k: os.environ.get(k) for k in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def execute(template: Path, output: Path, parameters: Mapping[str, Any], *, env: Mapping[str, str | None],
            cwd: Path | None = None) -> tuple[str, str]:
    """Execute ``template`` into ``output`` with papermill. Returns (started, ended) UTC texts.

    Raises ReportError naming the failing cell; the failed notebook is renamed
    ``<name>.FAILED.ipynb`` (:func:`failed_path`), so no failed run carries a report's name. An interrupted
    run (KeyboardInterrupt, any other exception) is renamed the same way and the exception re-raised.
    """
    import logging

    import papermill
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    started = format_ts(datetime.now(timezone.utc))
    logging.getLogger("papermill").setLevel(logging.WARNING)
    try:
        with environment(env):
            # sorted: the injected cell is part of the digest, so its order must not depend on the caller
            papermill.execute_notebook(str(template), str(output), parameters=dict(sorted(parameters.items())),
                                       kernel_name=KERNEL, kernel_manager_class=_ipc_kernel_manager(),
                                       progress_bar=False, log_output=False, cwd=str(cwd or output.parent))
    except PapermillExecutionError as exc:
        failed = failed_path(output)
        if output.exists():
            output.replace(failed)  # a failed run never keeps a normal report name
        raise ReportError(f"the report failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}",
                          hint=f"the failed notebook is at {failed}") from None
    except BaseException:  # interrupted (Ctrl-C) or the kernel died: the half-run notebook is no report either
        if output.exists():
            output.replace(failed_path(output))
        raise
    return started, format_ts(datetime.now(timezone.utc))


def failed_path(output: Path) -> Path:
    """Where a failed run's notebook goes: ``<name>.FAILED.ipynb`` beside the intended report."""
    return output.with_name(f"{output.stem}.FAILED.ipynb")


def kernel_env(archive: "Archive", env: Mapping[str, str | None]) -> dict[str, str | None]:
    """The kernel's environment: ``env`` plus the archive to open ($INVESTIGATOR_REPORT_ARCHIVE: where it is now)."""
    return {**env, REPORT_ARCHIVE_ENV: str(Path(archive.root).resolve())}


def output_path(out_dir: Path, case: str, template: str, when: datetime) -> Path:
    safe_case = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in case) or "case"
    return Path(out_dir) / safe_case / f"{when.strftime('%Y%m%dT%H%M%SZ')}-{template}.ipynb"


def template_parameters(path: Path) -> dict[str, Any]:
    """The template's parameters and their defaults (papermill's inspection of the ``parameters`` cell)."""
    import logging

    import papermill

    logging.getLogger("papermill").setLevel(logging.ERROR)
    return dict(papermill.inspect_notebook(str(path)))


@dataclass
class RunResult:
    notebook: Path
    html: Path
    digest: str
    report_id: str
    held: bool
    reasons: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)


def check_template_allowed(archive: "Archive", grant: Any, name: str, person: str, now: datetime) -> None:
    """A standing (service) grant limited to named templates refuses the others (audited)."""
    if not grant.allows_template(name):
        reason = f"grant {grant.id} is limited to the templates {', '.join(grant.templates)}; not {name}"
        archive.audit.append(person, "report.run", grant.id, {"rule": "grant.templates", "reason": reason,
                                                              "template": name}, outcome="denied", now=now)
        raise PolicyDenied(reason, rule="grant.templates")


@dataclass
class KernelCredentials:
    """What the kernel gets in its environment (``env``; None removes a variable) and how the run was opened."""

    env: dict[str, str | None]
    audit: dict[str, Any] = field(default_factory=dict)  # extra details for the run's audit entry (never a secret)


@contextmanager
def kernel_credentials(archive: "Archive", grant: Grant, person: str, *, purpose: str, label: str, needs: str,
                       passphrase: str | None = None, totp: str | None = None, session: str | None = None,
                       keyserver: str | None = None, cafile: str | None = None,
                       signer: "_crypto.SigningKey | None" = None, lifetime: timedelta = TICKET_LIFETIME,
                       now: datetime | None = None) -> Iterator[KernelCredentials]:
    """The kernel's credentials for one run, ended when the run ends.

    Embedded (no ``keyserver``): the archive passphrase and a session (``session``, or one
    logged in here with ``totp`` and revoked afterwards; ``purpose`` names that unlock in the
    audit log), as ``$INVESTIGATOR_PASSPHRASE`` and ``$INVESTIGATOR_SESSION``. Key server: the
    operator's case opened there (signed with ``signer``), a process ticket named ``label`` for
    the kernel as ``$INVESTIGATOR_PROCESS_TICKET`` beside ``$INVESTIGATOR_KEYSERVER``, every
    variable of :data:`KERNEL_SECRETS` removed; the ticket is revoked afterwards. ``needs`` is
    the message when neither ``totp`` nor ``session`` is given. Raises ReportError,
    ConfigError, and what opening the case or issuing the ticket raises.
    """
    when = now or datetime.now(timezone.utc)
    if not (totp or session):
        raise ReportError(needs)
    if not keyserver:
        own_session: str | None = None  # a session made for this run, revoked when it ends
        if totp:
            keys = unlock_archive(archive, passphrase, actor=person, purpose=purpose)
            session = own_session = login(archive, keys, person, totp=totp, now=when)
        # a process ticket left in the runner's environment must not divert the kernel from this session
        env: dict[str, str | None] = {SESSION_ENV: session, PROCESS_TICKET_ENV: None}
        if passphrase is not None:
            env[PASSPHRASE_ENV] = passphrase
        try:
            yield KernelCredentials(env)
        finally:
            if own_session:
                revoke_session(archive, own_session, actor=person, now=datetime.now(timezone.utc))
        return
    if passphrase:
        raise ConfigError("a report run through the key server reads no archive passphrase",
                          hint=f"unset {PASSPHRASE_ENV}: the key server is the only holder of the master keys")
    if signer is None:
        raise ConfigError("the key server accepts only requests signed with the operator's personal key",
                          hint="pass signer= (the operator's unlocked personal key)")
    case = open_case(archive, grant=grant, person=person, totp=totp, session=session, keyserver=keyserver,
                     cafile=cafile, signing_key=signer)
    token = case.process_ticket(label, lifetime=min(lifetime, MAX_LIFETIME))
    ticket = decode(token, archive.signing_keys(), archive_id=archive.archive_id)
    env = {name: None for name in KERNEL_SECRETS}
    env.update({KEYSERVER_ENV: keyserver, PROCESS_TICKET_ENV: token})
    try:
        yield KernelCredentials(env, {"process": label, "process_ticket": ticket.id,
                                      "ticket_expires": format_ts(ticket.expires)})
    except BaseException:
        try:
            case.revoke_process_ticket(ticket.id)
        except InvestigatorError:  # the run's own failure is the one to report; the ticket still expires
            pass
        raise
    else:
        try:
            case.revoke_process_ticket(ticket.id)
        except InvestigatorError as exc:
            raise ReportError(f"the kernel finished, but its process ticket {ticket.id} could not be revoked: {exc}",
                              hint=f"it ends by itself at {format_ts(ticket.expires)}; the executed notebook is "
                                   "kept, unsealed (seal it with 'investigator report seal')") from exc


def run_report(template: str | Path, *, archive: "Archive", grant: str, person: str, signer: "_crypto.SigningKey",
               passphrase: str | None = None, totp: str | None = None, session: str | None = None,
               parameters: Mapping[str, Any] | None = None, out_dir: Path = Path("reports"),
               output: Path | None = None, html: bool = True, now: datetime | None = None,
               keyserver: str | None = None, cafile: str | None = None,
               ticket_lifetime: timedelta = TICKET_LIFETIME) -> RunResult:
    """Execute a template under ``grant`` as ``person``, seal it, write the HTML copy.

    Embedded (``passphrase``) or through the key server at ``keyserver`` (the kernel then
    gets a process ticket, never the passphrase or a session; see the module docstring).
    Raises PolicyDenied (template not allowed by a standing grant),
    IdentityCheckFailed, GrantInvalid, ConfigError, KeyServiceError, ReportError (the run
    failed, or it cannot be sealed).
    """
    import nbformat


    when = now or datetime.now(timezone.utc)
    path = find_template(template)
    name = path.stem
    loaded = Grant.from_file(find_grant(archive, grant))
    check_template_allowed(archive, loaded, name, person, when)
    params = dict(parameters or {})
    secret = sorted(k for k in params if k in RUN_SECRET_PARAMETERS)
    if secret:
        raise ReportError(f"{', '.join(secret)} may not be a parameter (it would be written into the report)",
                          hint="use --totp or --session; the run passes the session to the kernel privately")
    params.update({"archive": str(Path(archive.root).resolve()), "grant": loaded.id, "person": person})
    params.setdefault("case", loaded.case)
    declared = template_parameters(path)
    if "until" in declared and not params.get("until"):
        # audit_review reads the log up to a fixed entry, so its reproduction reads the same entries

        params["until"] = head_seq(archive)
    target = output or output_path(out_dir, str(params["case"]), name, when)
    with kernel_credentials(archive, loaded, person, purpose="report run", label=f"report run {name}",
                            needs="a report run needs --totp CODE or --session TOKEN", passphrase=passphrase,
                            totp=totp, session=session, keyserver=keyserver, cafile=cafile, signer=signer,
                            lifetime=ticket_lifetime, now=when) as credentials:
        archive.audit.append(person, "report.run", loaded.id,
                             {"template": name, "output": target.name, **credentials.audit}, outcome="allowed",
                             now=when)
        started, ended = execute(path, target, params, env=kernel_env(archive, credentials.env))
    nb = nbformat.read(str(target), as_version=4)
    sealed = seal_notebook(nb, archive=archive, signer=signer, person=person, template=path, started=started,
                           ended=ended)
    nbformat.write(nb, str(target))
    html_path = write_html(target, page=sealed.page) if html else target.with_suffix(".html")
    return RunResult(notebook=target, html=html_path, digest=sealed.digest, report_id=sealed.report_id,
                     held=sealed.held, reasons=sealed.reasons, parameters=params)
