"""Legal review (法律顾问审核) and release of sealed reports; only a released report may be exported.

    >>> review_report(nb, archive=archive, reviewer="zhouzong", signer=key, decision="approve", note="ok")  # doctest: +SKIP
    >>> release_report(nb, archive=archive, releaser="sunli2", signer=key2)                               # doctest: +SKIP
    >>> status_of(nb.metadata["investigator"])                                                          # doctest: +SKIP
    'released'

Status: ``draft`` (sealed) -> ``reviewed`` (a reviewer approved) -> ``released``
(a legal reviewer released it); ``rejected`` when the last review rejected it.
Each review and release is a record signed by its author over the report's
digest and the seal's signature, kept in ``metadata.investigator.reviews`` and
registered in the audit log. The reviewer is never the operator. When the
circuit breaker holds the report, release needs a person with a legal-review
role (policy ``[approval.sensitive] legal_review_roles``) who acknowledges the
hold; otherwise a legal reviewer or a person with the approve permission may release.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from investigator import _crypto
from investigator.authority.directory import DirectoryStore
from investigator.authority.policy import PolicyStore, load_org, record_decision
from investigator.errors import PolicyDenied, ReportError
from investigator.schema import format_ts
from investigator.reports.seal import META_KEY, verify_report
from investigator.reports.signature import sign_body, signature_hash, status_of

if TYPE_CHECKING:
    from investigator.vault.store import Archive

DECISIONS = ("approve", "reject")


def _seal(nb: Any) -> dict[str, Any]:
    seal = ((nb.get("metadata") or {}).get(META_KEY) or {}).get("seal")
    if not seal:
        raise ReportError("the notebook is not sealed; run 'investigator report seal' first")
    return seal


def _require_intact(nb: Any, archive: "Archive", actor: str, now: datetime) -> None:
    result = verify_report(nb, archive=archive, actor=actor, now=now)
    if not result.ok:
        raise ReportError("the report does not verify: " + "; ".join(result.problems[:3]))


def _person_roles(archive: "Archive", person_id: str) -> tuple[Any, Any]:
    directory = DirectoryStore(archive).load()
    policy = PolicyStore(archive).load(directory)
    return directory.person(person_id), policy


def _deny(archive: "Archive", actor: str, action: str, target: str, rule: str, reason: str, now: datetime) -> None:
    archive.audit.append(actor, action, target, {"rule": rule, "reason": reason}, outcome="denied", now=now)
    raise PolicyDenied(reason, rule=rule)


def _append(nb: Any, archive: "Archive", *, kind: str, person: str, signer: _crypto.SigningKey,
            extra: dict[str, Any], now: datetime) -> dict[str, Any]:
    seal = _seal(nb)
    body = {"kind": kind, "report_digest": seal["body"]["digest"],
            "seal_signature_sha256": signature_hash(seal["signature"]), "reviewer": person, "ts": format_ts(now),
            **extra}
    record = sign_body(body, signer, person)
    nb["metadata"][META_KEY].setdefault("reviews", []).append(record)
    archive.audit.append(person, f"report.{kind}", seal["body"]["digest"],
                         {"report_id": seal["body"].get("report_id"), "signature_sha256":
                          signature_hash(record["signature"]), **{k: v for k, v in extra.items() if k != "note"}},
                         outcome="ok", now=now)
    return record


def review_report(nb: Any, *, archive: "Archive", reviewer: str, signer: _crypto.SigningKey, decision: str,
                  note: str, now: datetime | None = None) -> str:
    """Add ``reviewer``'s signed decision. Returns the new status.

    Raises ReportError (not sealed, does not verify, bad decision) or
    PolicyDenied (the operator reviewing their own report; no approve or
    legal-review right) — refusals are audited.
    """
    when = now or datetime.now(timezone.utc)
    if decision not in DECISIONS:
        raise ReportError(f"decision must be one of {', '.join(DECISIONS)}")
    seal = _seal(nb)
    digest = seal["body"]["digest"]
    if reviewer == seal.get("signer"):
        _deny(archive, reviewer, "report.review", digest, "review.separation",
              "the operator may not review their own report", when)
    person, policy = _person_roles(archive, reviewer)
    legal = bool(set(person.roles) & set(policy.legal_review_roles))
    if not (legal or policy.rights(person).may("approve")):
        _deny(archive, reviewer, "report.review", digest, "review.role",
              f"{reviewer} holds neither a legal-review role nor the approve permission", when)
    _require_intact(nb, archive, reviewer, when)
    _append(nb, archive, kind="review", person=reviewer, signer=signer,
            extra={"decision": decision, "note": note}, now=when)
    return status_of(nb["metadata"][META_KEY])


def release_report(nb: Any, *, archive: "Archive", releaser: str, signer: _crypto.SigningKey,
                   acknowledge_hold: bool = False, note: str = "", now: datetime | None = None) -> str:
    """Release a reviewed report for export (a legal reviewer's act). Returns the new status.

    Raises ReportError (not reviewed) or PolicyDenied (not a legal reviewer,
    the operator, or a breaker hold not acknowledged — audited as an alert).
    """
    when = now or datetime.now(timezone.utc)
    seal = _seal(nb)
    digest = seal["body"]["digest"]
    meta = nb["metadata"][META_KEY]
    if status_of(meta) != "reviewed":
        raise ReportError(f"only a reviewed (approved) report can be released; this one is {status_of(meta)}")
    if releaser == seal.get("signer"):
        _deny(archive, releaser, "report.release", digest, "review.separation",
              "the operator may not release their own report", when)
    person, policy = _person_roles(archive, releaser)
    breaker = seal["body"].get("breaker") or {}
    legal = bool(set(person.roles) & set(policy.legal_review_roles))
    if breaker.get("held") and not legal:
        archive.audit.append(releaser, "breaker.alert", digest, {"rule": "breaker.legal_role",
                                                                 "reason": "; ".join(breaker.get("reasons", []))},
                             outcome="denied", now=when)
        _deny(archive, releaser, "report.release", digest, "release.legal_role",
              f"the circuit breaker holds this report; only a legal reviewer "
              f"({', '.join(policy.legal_review_roles)}) may release it, and {releaser} is none", when)
    if not (legal or policy.rights(person).may("approve")):
        _deny(archive, releaser, "report.release", digest, "release.role",
              f"{releaser} holds neither a legal-review role nor the approve permission", when)
    if breaker.get("held") and not acknowledge_hold:
        archive.audit.append(releaser, "breaker.alert", digest, {"rule": "breaker.hold",
                                                                 "reason": "; ".join(breaker.get("reasons", []))},
                             outcome="denied", now=when)
        raise PolicyDenied("the circuit breaker holds this report: " + "; ".join(breaker.get("reasons", []))
                           + " — a legal reviewer must acknowledge the hold to release it", rule="breaker.hold")
    _require_intact(nb, archive, releaser, when)
    _append(nb, archive, kind="release", person=releaser, signer=signer,
            extra={"acknowledged_hold": bool(breaker.get("held")), "note": note}, now=when)
    return status_of(meta)


def export_report(notebook: Path, *, archive: "Archive", person: str, out_dir: Path,
                  now: datetime | None = None) -> list[Path]:
    """Copy a released, intact report (notebook + HTML) to ``out_dir``; needs the export permission.

    Raises PolicyDenied (no export permission; not released; held) or
    ReportError (does not verify). Every outcome is audited.
    """
    import nbformat  # third-party, loaded here: importing investigator.reports stays free of nbformat

    when = now or datetime.now(timezone.utc)
    nb = nbformat.read(str(notebook), as_version=4)
    seal = _seal(nb)
    digest = seal["body"]["digest"]
    directory, policy = load_org(archive, actor=person, action="export", target=digest, now=when)
    decision = policy.decide("export", person=directory.person(person), directory=directory, now=when,
                             tz=archive.config.zone)
    record_decision(archive, decision, actor=person, action="report.export", target=digest, now=when)
    decision.raise_if_denied()
    status = status_of(nb["metadata"][META_KEY])
    if status != "released":
        _deny(archive, person, "report.export", digest, "report.released",
              f"only a released report may be exported; this one is {status}", when)
    _require_intact(nb, archive, person, when)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [Path(shutil.copy2(notebook, out_dir / Path(notebook).name))]
    html = Path(notebook).with_suffix(".html")
    if html.exists():
        written.append(Path(shutil.copy2(html, out_dir / html.name)))
    archive.audit.append(person, "report.export", digest, {"files": [p.name for p in written],
                                                            "report_id": seal["body"].get("report_id")},
                         outcome="ok", now=when)
    return written
