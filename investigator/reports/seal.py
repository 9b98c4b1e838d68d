"""Sealing a report: provenance + content digest, signed by the operator and registered in the audit log.

    >>> nb = nbformat.read("reports/C-1/20261118T061500Z-complaint_investigation.ipynb", 4)   # doctest: +SKIP
    >>> seal_notebook(nb, archive=archive, signer=operator_key, person="sunli")              # doctest: +SKIP
    >>> verify_report(nb, archive=archive).ok                                                 # doctest: +SKIP
    True

The seal lives in the notebook's metadata (``metadata.investigator.seal``)::

    {"body": {"format": "investigator-report-seal/1", "report_id", "digest", "cell_digests",
              "metadata_digest", "canonical", "template": {"name", "sha256"}, "parameters",
              "grant": {"id", "hash", "case", "purpose", "window", "request_id", "request_hash",
                        "requester", "operator", "approvals": [{"approver", "hash"}]},
              "data": {"archive_id", "chunks", "merkle_roots", "rows"},
              "run": {"started", "ended"}, "package": {...}, "breaker": {...}, "sealed_at",
              "html": {"sha256", "covers"}},
     "signer": "sunli", "key_id": "...", "public": "b64", "signature": "b64 Ed25519 over JCS(body)"}

The digest (:mod:`investigator.reports.canonical`) leaves the metadata out, so
sealing, reviews and releases never change it. Verification needs the
operator's public key only: from the archive's signed directory (``--archive``)
or a key file (``--pubkey``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from zoneinfo import ZoneInfo

from investigator import _crypto
from investigator.authority.directory import DirectoryStore
from investigator.authority.grants import Grant, find_grant
from investigator.authority.policy import load_org, record_decision
from investigator.errors import IntegrityError, PolicyDenied, ReportError
from investigator.schema import canonical_json, format_ts
from investigator.textnorm import norm_version
from investigator.verification import Verification
from investigator.vault.verify import check_archive_pin
from investigator.reports.breaker import assess_report
from investigator.reports.html import HTML_COVERS, page_digest, render_page
from investigator.reports.canonical import (CANONICAL_FORMAT, cell_digests, content_digest, diff_cells, metadata_digest,
                                           sealed_canonical_format)
from investigator.reports.notebook import PROVENANCE_MIME
from investigator.reports.signature import (  # noqa: F401 - load_pubkey: the CLI imports it from here
    check_reviews, check_signature, load_pubkey, sign_body, signature_hash, status_of,
)

if TYPE_CHECKING:
    from investigator.vault.store import Archive

SEAL_FORMAT = "investigator-report-seal/1"
META_KEY = "investigator"
SECRET_PARAMETERS = ("session", "totp", "passphrase", "token", "process_ticket", "key_passphrase")
#: a provenance record's ``basis`` for a report that reads no content and has no grant (the doctor)
AUDIT_BASIS = "audit-metadata"


def meta_of(nb: Any) -> dict[str, Any]:
    """``metadata.investigator`` of ``nb`` (created empty when absent)."""
    metadata = nb.setdefault("metadata", {})
    return metadata.setdefault(META_KEY, {})


def provenance_output(nb: Any) -> dict[str, Any] | None:
    """The last provenance record the notebook displayed (investigator.reports.notebook.record_provenance)."""
    found = None
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            data = output.get("data") or {}
            if PROVENANCE_MIME in data:
                value = data[PROVENANCE_MIME]
                found = json.loads(value) if isinstance(value, str) else dict(value)
    return found


def notebook_parameters(nb: Any) -> dict[str, Any]:
    """The parameters papermill injected (``metadata.papermill.parameters``)."""
    return dict(((nb.get("metadata") or {}).get("papermill") or {}).get("parameters") or {})


def template_name(nb: Any, template: Path | None = None) -> str:
    name = meta_of(nb).get("template")
    if name:
        return str(name)
    if template is not None:
        return Path(template).stem
    source = ((nb.get("metadata") or {}).get("papermill") or {}).get("input_path") or ""
    return Path(source).stem if source else "unknown"


def field_hashes(body: dict[str, Any]) -> dict[str, str]:
    """Each top-level field of a seal body -> hash (kept in the audit entry, so an edit names the field)."""
    return {key: hashlib.sha256(canonical_json({"field": key, "value": value})).hexdigest()[:32]
            for key, value in sorted(body.items())}


def file_sha256(path: Path) -> str:
    return "sha256:" + _crypto.sha256_file(path)


def package_versions() -> dict[str, str]:
    """Versions that decide what the report computed: Python, packages, the package's code, the search normalization.

    ``investigator_code`` is :func:`code_digest` of the installed package: the version number stays the
    same between commits, so without it a report that reproduces differently could not say whether the
    code changed or the data did. ``search_normalization`` is the fingerprint of the normalization tables
    (``textnorm.norm_version``): which messages a keyword finds. A reviewer re-running the template needs
    the same ones to expect the same cells (docs/reviewer.md, "Reproduce").
    """
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("investigator", "papermill", "polars", "plotly"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover
            out[name] = "unknown"
    out["investigator_code"] = code_digest()
    out["search_normalization"] = str(norm_version())
    return out


def code_digest(root: Path | None = None) -> str:
    """``sha256:`` over the files of the installed ``investigator`` package (code and shipped data), by relative path.

    Compiled caches (``__pycache__``, ``*.pyc``) are left out. ``root`` defaults to the package's own
    folder (hashed once per process, ~10 ms). The same source tree gives the same digest on every
    machine and install path.
    """
    return _installed_code_digest() if root is None else _tree_digest(Path(root))


@functools.lru_cache(maxsize=1)
def _installed_code_digest() -> str:
    return _tree_digest(Path(__file__).resolve().parents[1])


def _tree_digest(base: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       and p.suffix not in (".pyc", ".pyo")):
        relative = path.relative_to(base).as_posix()
        digest.update(f"{relative}\x00{_crypto.sha256_file(path)}\n".encode("utf-8", "surrogateescape"))
    return "sha256:" + digest.hexdigest()


def environment_differences(sealed: dict[str, Any], current: dict[str, str]) -> list[str]:
    """What differs between a seal's ``package`` record and ``current`` (:func:`package_versions`), one line each.

    A reproduction that comes out DIFFERENT under other code, another Polars or other normalization
    tables may differ for that reason, not because the data changed. A field the seal does not record
    (sealed before it was) is said to be unknown.
    """
    lines = []
    for key, now in current.items():
        then = sealed.get(key) if isinstance(sealed, dict) else None
        if then is None:
            lines.append(f"{key}: not recorded in the seal (sealed by an older release); here {now}")
        elif str(then) != now:
            lines.append(f"{key}: sealed with {then}, reproduced with {now}")
    return lines


def grant_record(grant: Any) -> dict[str, Any]:
    start, end = grant.window
    return {"id": grant.id, "hash": grant.hash, "case": grant.case, "purpose": grant.purpose,
            "window": [format_ts(start), format_ts(end)], "fields": list(grant.fields), "scope": grant.scope,
            "templates": list(grant.templates), "request_id": grant.request.id, "request_hash": grant.request.hash,
            "requester": grant.requester, "operator": grant.operator, "expiry": grant.body.get("expiry"),
            "approvals": [{"approver": a.approver, "hash": a.hash} for a in grant.approvals]}


@dataclass
class SealResult:
    digest: str
    report_id: str
    held: bool
    reasons: list[str]
    page: str = field(default="", repr=False)  # the sealed HTML page, banner slot empty (html.write_html fills it)


def seal_notebook(nb: Any, *, archive: "Archive", signer: _crypto.SigningKey, person: str,
                  template: Path | None = None, started: str = "", ended: str = "",
                  now: datetime | None = None) -> SealResult:
    """Seal ``nb`` in place (metadata.investigator.seal) and register the seal in the audit log.

    Raises ReportError when the notebook has no provenance record, carries a
    secret in its parameters, failed while running, or names another archive;
    GrantInvalid when its grant does not load.
    """
    when = now or datetime.now(timezone.utc)
    parameters = notebook_parameters(nb)
    leaked = sorted(k for k in parameters if k in SECRET_PARAMETERS and parameters[k])
    if leaked:
        raise ReportError(f"the notebook carries a secret parameter ({', '.join(leaked)}); it must not be sealed",
                          hint="pass the session through INVESTIGATOR_SESSION ('investigator report run' does)")
    for cell in nb.get("cells", []):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", []) or []):
            raise ReportError("the notebook ended with an error; fix and re-run before sealing")
    data = provenance_output(nb)
    if data is None:
        raise ReportError("the notebook has no provenance record (the template's last cell calls "
                          "investigator.reports.notebook.record_provenance)")
    if data.get("archive_id") != archive.archive_id:
        raise ReportError("the notebook read another archive than the one given")
    grant_id = str(data.get("grant_id") or parameters.get("grant") or "")
    grant, basis = None, None
    if not grant_id and data.get("basis") == AUDIT_BASIS:  # metadata only: sealed under the signer's audit role
        basis = audit_basis(archive, person, when)
    else:
        grant = Grant.from_file(find_grant(archive, grant_id))
        if grant.operator != person:
            raise ReportError(f"{person} is not the operator of grant {grant.id}; only the operator seals its reports")
    name = template_name(nb, template)
    papermill = (nb.get("metadata") or {}).get("papermill") or {}
    verdict = assess_report(nb, archive=archive, grant=grant)
    page = render_page(nb)  # the reader's copy is sealed with the notebook (its banner, the status, is not)
    body: dict[str, Any] = {
        "format": SEAL_FORMAT, "report_id": str(uuid.uuid4()), "canonical": CANONICAL_FORMAT,
        "digest": content_digest(nb), "cell_digests": cell_digests(nb), "metadata_digest": metadata_digest(nb),
        "template": {"name": name, "sha256": file_sha256(template) if template and Path(template).exists() else ""},
        "parameters": parameters, "grant": grant_record(grant) if grant else None, "data": data,
        "run": {"started": started or str(papermill.get("start_time") or ""),
                "ended": ended or str(papermill.get("end_time") or "")},
        "package": package_versions(), "breaker": verdict.to_json(), "sealed_at": format_ts(when),
        "html": {"sha256": page_digest(page), "covers": HTML_COVERS},
    }
    if basis is not None:
        body["basis"] = basis
    seal = sign_body(body, signer, person)
    meta = meta_of(nb)
    meta["template"] = name
    meta["seal"] = seal
    meta["reviews"] = []  # a new seal starts a new review
    archive.audit.append(person, "report.seal", body["digest"],
                         {"report_id": body["report_id"], "template": name, "grant_id": grant.id if grant else "",
                          "signature_sha256": signature_hash(seal["signature"]), "held": verdict.held,
                          "field_hashes": field_hashes(body)},
                         outcome="ok", now=when)
    if verdict.held:
        archive.audit.append(person, "breaker.alert", body["digest"],
                             {"rule": "breaker.report", "grant_id": grant.id if grant else "",
                              "report_id": body["report_id"],
                              "reason": "; ".join(verdict.reasons)}, outcome="denied", now=when)
    return SealResult(body["digest"], body["report_id"], verdict.held, verdict.reasons, page)


def audit_basis(archive: "Archive", person: str, now: datetime, *, action: str = "report.seal") -> dict[str, Any]:
    """The seal's basis of a metadata-only report (no grant): the signer's ``audit`` permission, decided now.

    Such a report reads the audit log and archive metadata only (the doctor), so it needs no grant;
    the policy must give ``person`` the ``audit`` permission. Raises PolicyDenied (audited) otherwise.
    """
    directory, policy = load_org(archive, actor=person, action=action, target=AUDIT_BASIS, now=now)
    found = directory.find(person)
    if found is None:
        reason = f"no person {person!r} in the org directory"
        archive.audit.append(person, action, AUDIT_BASIS, {"rule": "person.unknown", "reason": reason},
                             outcome="denied", now=now)
        raise PolicyDenied(reason, rule="person.unknown")
    decision = policy.decide("audit", person=found, directory=directory, now=now,
                             tz=ZoneInfo(archive.config.timezone))
    if not decision.allowed:
        record_decision(archive, decision, actor=person, action=action, target=AUDIT_BASIS, now=now)
        raise PolicyDenied(decision.reason, rule=decision.rule)
    return {"kind": AUDIT_BASIS, "person": person, "permission": "audit", "rule": decision.rule,
            "roles": list(found.roles)}


# --- verification ---------------------------------------------------------------------------

def _check_data(body: dict[str, Any], archive: "Archive", problems: list[str], checked: list[str]) -> None:
    data = body.get("data") or {}
    if data.get("archive_id") != archive.archive_id:
        problems.append("provenance: the report names another archive")
        return
    try:
        manifests = {m.seq: m for m in archive.manifests()}
    except IntegrityError as exc:
        problems.append(f"provenance: the archive's manifests do not verify ({exc})")
        return
    for seq, root in sorted((data.get("merkle_roots") or {}).items(), key=lambda kv: int(kv[0])):
        manifest = manifests.get(int(seq))
        if manifest is None:
            problems.append(f"provenance: batch {seq} is not in the archive")
        elif manifest.body.get("merkle", {}).get("root") != root:
            problems.append(f"provenance: the Merkle root of batch {seq} differs from its signed manifest")
    known = {f"{e.batch_seq}/{e.chunk_id}" for m in manifests.values() for e in m.chunks}
    missing = [c for c in data.get("chunks") or [] if c not in known]
    if missing:
        problems.append(f"provenance: {len(missing)} chunk(s) not in the signed manifests, e.g. {missing[0]}")
    checked.append(f"provenance: {len(data.get('chunks') or [])} chunks and "
                   f"{len(data.get('merkle_roots') or {})} Merkle roots match the archive's signed manifests")


def _check_grant(body: dict[str, Any], archive: "Archive", problems: list[str], checked: list[str]) -> None:
    if body.get("grant") is None and "basis" in body:  # metadata only: _check_seal checks the basis
        return
    recorded = body.get("grant") or {}
    try:
        grant = Grant.from_file(find_grant(archive, str(recorded.get("id"))))
    except Exception as exc:  # noqa: BLE001 - any failure is a finding, not a crash
        problems.append(f"grant: {recorded.get('id')} cannot be read from the archive ({exc})")
        return
    if grant.hash != recorded.get("hash"):
        problems.append(f"grant: {grant.id} in the archive differs from the sealed grant hash")
    else:
        checked.append(f"grant {grant.id}: hash matches the archive's grant file")


def _check_audit(body: dict[str, Any], seal: dict[str, Any], archive: "Archive", problems: list[str],
                 checked: list[str]) -> None:
    want = signature_hash(str(seal.get("signature")))
    candidates = [e for e in archive.audit.entries() if e.action == "report.seal"
                  and (e.target == body.get("digest") or (e.details or {}).get("signature_sha256") == want
                       or (e.details or {}).get("report_id") == body.get("report_id"))]
    exact = [e for e in candidates if e.target == body.get("digest")
             and (e.details or {}).get("signature_sha256") == want]
    registered = exact[-1] if exact else (candidates[-1] if candidates else None)
    if registered is None:
        problems.append("audit: the seal is not registered in the archive's audit log")
        return
    recorded = (registered.details or {}).get("field_hashes") or {}
    current = field_hashes(body)
    changed = sorted(k for k in set(recorded) | set(current) if recorded.get(k) != current.get(k))
    if changed:
        problems.append("provenance changed since sealing (audit entry #%d): %s" % (registered.seq, ", ".join(changed)))
    elif not exact:
        problems.append("audit: the seal's signature differs from the one registered at sealing")
    else:
        checked.append(f"audit: sealed at entry #{registered.seq} by {registered.actor}")


def verify_report(nb: Any, *, archive: "Archive | None" = None, pubkeys: list[_crypto.VerifyKey] | None = None,
                  actor: str = "verifier", now: datetime | None = None, record: bool = True,
                  pin: str | None = None) -> Verification:
    """Check digest, signatures (seal and reviews), provenance and the audit registration.

    Never raises, whatever the notebook holds: each problem is named (the
    changed cell, the changed provenance field, the malformed metadata field
    ...). With ``archive``, the data read is checked against the signed
    manifests, the archive's key against ``pin`` (a fingerprint,
    investigator.vault.verify.parse_fingerprint; unpinned: a warning says the
    key came from the archive itself), and, with ``record``, the check itself
    is audited in that archive (``record=False``: read-only). The result's facts
    are the report's ``digest``, ``status`` and ``signer`` (empty and
    ``unsealed`` when the notebook carries no seal).
    """
    result = Verification("report", facts={"digest": "", "status": "unsealed", "signer": ""})
    metadata = nb.get("metadata") if isinstance(nb, dict) else None
    meta = (metadata or {}).get(META_KEY) if isinstance(metadata, dict) else None
    if not isinstance(meta, dict):
        meta = {}
    seal = meta.get("seal")
    if not isinstance(seal, dict) or not isinstance(seal.get("body"), dict):
        result.problem("metadata.investigator.seal: the notebook is not sealed (no seal object with a body)")
        return result
    body = seal["body"]
    try:
        status = status_of(meta)
    except Exception:  # noqa: BLE001 - hostile reviews are reported below
        status = "unknown"
    result.facts.update(digest=str(body.get("digest")), status=status, signer=str(seal.get("signer")))
    if body.get("format") != SEAL_FORMAT:
        result.problem(f"metadata.investigator.seal.body.format: unknown seal format {body.get('format')!r}")
        return result
    if pin is not None and archive is None:
        result.problem("a pinned archive key (--pubkey / --fingerprint) needs the archive: pass --archive")
    if archive is not None:
        check_archive_pin(archive, pin, result)
    directory = None
    if archive is not None:
        try:
            directory = DirectoryStore(archive).load()
        except IntegrityError as exc:
            result.problem(f"the archive's directory does not verify ({exc})")
    keys = list(pubkeys or [])
    stages: list[tuple[str, Callable[[], None]]] = [
        ("cells", lambda: _check_digest(nb, body, result)),
        ("metadata.investigator.seal", lambda: _check_seal(seal, body, archive, keys, result, directory)),
        ("metadata.investigator.reviews", lambda: check_reviews(meta, body, seal, archive=archive, pubkeys=keys,
                                                                directory=directory, result=result))]
    if archive is not None:
        opened = archive
        stages += [
            ("metadata.investigator.seal.body.data", lambda: _check_data(body, opened, result.problems,
                                                                          result.checked)),
            ("metadata.investigator.seal.body.grant", lambda: _check_grant(body, opened, result.problems,
                                                                            result.checked)),
            ("metadata.investigator.seal (audit registration)",
             lambda: _check_audit(body, seal, opened, result.problems, result.checked))]
    for where, stage in stages:
        try:
            stage()
        except Exception as exc:  # noqa: BLE001 - hostile metadata is a finding, never a crash
            result.problem(f"{where}: malformed, not of the expected shape ({exc.__class__.__name__})")
    if archive is not None and record:
        archive.audit.append(actor, "report.verify", str(body.get("digest")),
                             {"ok": result.ok, "problems": len(result.problems),
                              "report_id": str(body.get("report_id"))},
                             outcome="ok" if result.ok else "error", now=now)
    return result


def _check_digest(nb: Any, body: dict[str, Any], result: Verification) -> None:
    try:
        fmt = sealed_canonical_format(body)
    except ValueError as exc:
        result.problem(f"metadata.investigator.seal.body.canonical: {exc}")
        return
    actual = content_digest(nb, fmt)
    if actual != body.get("digest"):
        changed = list(diff_cells(list(body.get("cell_digests") or []), nb, fmt))
        if metadata_digest(nb, fmt) != body.get("metadata_digest"):
            changed.append("the notebook's kernel or widget metadata changed")
        result.problem("content digest differs: " + ("; ".join(changed) or "the notebook changed"))
    else:
        result.check(f"content digest {actual} ({fmt})")
    if body.get("cell_digests") != cell_digests(nb, fmt) and actual == body.get("digest"):
        result.problem("the per-cell digests in the seal do not match the notebook (seal edited)")
    shown = provenance_output(nb)
    if shown is not None and shown != body.get("data"):
        result.problem("provenance: the sealed data record differs from the one the notebook shows")


def _check_seal(seal: dict[str, Any], body: dict[str, Any], archive: "Archive | None", keys: list[_crypto.VerifyKey],
                result: Verification, directory: Any) -> None:
    before = len(result.problems)
    check_signature(seal, what="seal", archive=archive, pubkeys=keys, problems=result.problems, directory=directory)
    if len(result.problems) == before:
        result.check(f"seal signature of {seal.get('signer')} (key {seal.get('key_id')})")
    basis = body.get("basis")
    if body.get("grant") is None and basis is not None:
        if not isinstance(basis, dict) or basis.get("kind") != AUDIT_BASIS or basis.get("permission") != "audit":
            result.problem("seal: no grant, and the basis is not a metadata-only report under the audit role")
        elif seal.get("signer") != basis.get("person"):
            result.problem("seal: the signer is not the auditor the basis names")
        else:
            result.check(f"no grant: metadata only, sealed by {basis.get('person')} under the audit permission "
                         f"(rule {basis.get('rule')})")
    elif seal.get("signer") != (body.get("grant") or {}).get("operator"):
        result.problem("seal: the signer is not the grant's operator")
