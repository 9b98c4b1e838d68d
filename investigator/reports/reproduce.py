"""Reproducing a sealed report: re-execute its template with the recorded parameters, compare digests.

    >>> result = reproduce_report(Path("report.ipynb"), archive=archive, person="sunli", passphrase=...,
    ...                           session=token)        # doctest: +SKIP
    >>> result.same, result.differences                 # doctest: +SKIP
    (True, [])

Runs under the same grant (it must still be valid) as its operator, from the
template the seal names (its SHA-256 must match, or the run is refused), and
compares the new notebook's content digest with the sealed one; when they
differ, the cells that differ are named. Reports are built to be
deterministic (sorted tables, fixed seeds, no wall-clock values in outputs).
What ran differently from the sealed run (the package's code digest, Python,
Polars, the search normalization) is listed beside the result, so a difference
can be told from one in the data.

The kernel gets its credentials as in :func:`investigator.reports.run.run_report`: embedded,
the archive passphrase and a session; with ``keyserver=`` (and ``signer=``, the operator's
personal key), only the key server's URL and a process ticket labelled
``report reproduce <template>``, revoked when the run ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from investigator import _crypto
from investigator.errors import ReportError
from investigator.reports.canonical import content_digest, diff_cells, sealed_canonical_format
from investigator.reports.run import (TICKET_LIFETIME, check_template_allowed, execute, find_template, kernel_credentials,
                                      kernel_env)
from investigator.reports.seal import META_KEY, environment_differences, file_sha256, package_versions
from investigator.authority.grants import Grant, find_grant
from investigator.vault.store import Archive



@dataclass
class ReproduceResult:
    original: Path
    reproduction: Path
    sealed_digest: str
    new_digest: str
    differences: list[str] = field(default_factory=list)
    environment: list[str] = field(default_factory=list)  # what ran differently (seal.environment_differences)

    @property
    def same(self) -> bool:
        return self.sealed_digest == self.new_digest

    def to_json(self) -> dict[str, object]:
        return {"same": self.same, "sealed_digest": self.sealed_digest, "new_digest": self.new_digest,
                "reproduction": str(self.reproduction), "differences": self.differences,
                "environment": self.environment}


def reproduce_report(notebook: Path, *, archive: "Archive", person: str, passphrase: str | None = None,
                     totp: str | None = None, session: str | None = None, output: Path | None = None,
                     now: datetime | None = None, keyserver: str | None = None, cafile: str | None = None,
                     signer: "_crypto.SigningKey | None" = None, template: Path | None = None,
                     ticket_lifetime: timedelta = TICKET_LIFETIME) -> ReproduceResult:
    """Re-execute ``notebook``'s template with its sealed parameters and compare content digests.

    Embedded (``passphrase``) or through the key server at ``keyserver`` (requests signed with
    ``signer``; the kernel gets a process ticket, never the passphrase or a session).
    ``template`` is a file holding the template version the seal names (an older one than the
    installed template); its SHA-256 must be the sealed one, and it runs under the sealed name.
    Raises ReportError (not sealed, template changed or missing, run failed), ConfigError,
    PolicyDenied / GrantInvalid / IdentityCheckFailed from opening the case.
    """
    import nbformat


    when = now or datetime.now(timezone.utc)
    nb = nbformat.read(str(notebook), as_version=4)
    seal = ((nb.get("metadata") or {}).get(META_KEY) or {}).get("seal")
    if not seal:
        raise ReportError("the notebook is not sealed; nothing to reproduce")
    body = seal["body"]
    name = Path(str(body["template"]["name"])).stem
    recorded = body["template"].get("sha256")
    if template is not None and not recorded:
        raise ReportError("the seal records no template SHA-256: a template file cannot be matched to it",
                          hint="reproduce with the installed template (without --template)")
    if template is not None and not Path(template).is_file():
        raise ReportError(f"template file {template} not found")
    path = Path(template) if template is not None else find_template(name)
    if recorded and file_sha256(path) != recorded:
        what = (f"template file {path.name} is not the version the seal names" if template is not None
                else f"template {path.name} changed since the report was sealed")
        raise ReportError(what, hint=f"pass the version the seal names (SHA-256 {recorded}) with --template FILE, "
                                     f"e.g. templates/{name}.ipynb of the repository's commit the report was run at")

    grant = Grant.from_file(find_grant(archive, body["grant"]["id"]))
    check_template_allowed(archive, grant, name, person, when)
    params = dict(body.get("parameters") or {})
    target = output or Path(notebook).with_name(Path(notebook).stem + ".reproduced.ipynb")
    with kernel_credentials(archive, grant, person, purpose="report reproduce",
                            label=f"report reproduce {name}",
                            needs="reproducing needs --totp CODE or --session TOKEN", passphrase=passphrase, totp=totp,
                            session=session, keyserver=keyserver, cafile=cafile, signer=signer,
                            lifetime=ticket_lifetime, now=when) as credentials:
        # the kernel opens ``archive`` (the --archive given now), not the path the seal recorded
        execute(path, target, params, env=kernel_env(archive, credentials.env))
    again = nbformat.read(str(target), as_version=4)
    fmt = sealed_canonical_format(body)  # a report sealed under format 1 is compared by format 1's rules
    result = ReproduceResult(original=Path(notebook), reproduction=target, sealed_digest=str(body["digest"]),
                             new_digest=content_digest(again, fmt),
                             differences=list(diff_cells(list(body.get("cell_digests") or []), again, fmt)),
                             environment=environment_differences(body.get("package") or {}, package_versions()))
    archive.audit.append(person, "report.reproduce", str(body["digest"]),
                         {"report_id": body.get("report_id"), "same": result.same, "new_digest": result.new_digest},
                         outcome="ok" if result.same else "error", now=when)
    return result
