"""Evidence bundles (电子取证): export under a grant, verify offline with only the archive's public key.

    >>> result = export_bundle(archive, grant="G-...", person="sunli", session=token, passphrase=...,
    ...                        signer=sunli_key, out=Path("case.zip"))          # doctest: +SKIP
    >>> verify_bundle(Path("case.zip"), pubkeys=[archive.signing_public]).ok   # doctest: +SKIP
    True

The format is docs/evidence-bundle.md. Every exported message gets an
evidence number (``EV-000001`` ..., prefix configurable, like eDiscovery Bates
numbers), its record hash is recomputed from its content, and it carries an
RFC 9162 inclusion proof against the Merkle root of its signed ingest manifest
(the manifests travel in the bundle). The bundle manifest lists the SHA-256 of
every file; the operator signs it and the archive key attests the operator's
key, so ``verify_bundle`` needs no archive and no secret.

Inclusion proofs need every leaf (record hash) of a batch, and a case holds
keys only for its window: the case's key service computes them
(``key_service.proofs``, :mod:`investigator.vault.proofs`) for leaves inside the
grant's window and returns only hashes — never keys or other records' content
(docs/evidence-bundle.md, "Proofs without keys").
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from investigator import _crypto
from investigator.verification import Verification
from investigator.errors import BundleError, IntegrityError
from investigator.vault.keychain import KeyChain
from investigator.vault.manifest import Manifest
from investigator.vault.merkle import verify_inclusion
from investigator.schema import canonical_json, format_ts, record_hash
from investigator.access.keyservice import unlock_archive
from investigator.settings import Settings
from investigator.authority.grants import Grant, find_grant
from investigator.access.custodian import CustodianDesk, ExportAttestation
from investigator.access.exportcheck import JUDGE, leaf_set_sha256
from investigator.access.held import read_held, write_held
from investigator.access.lockdown import Lockdown
from investigator.access.keyserver import RemoteKeyService
from investigator.access.keyservice import EmbeddedKeyService, KeyService, Ticket
from investigator.access.case import open_case
from investigator.analysis.dedupe import RECORD_HASHES, dedupe
from investigator.analysis.people import People
from investigator.authority.policy import load_org, record_decision
from investigator.reports.audit_view import grant_entries
from investigator.reports.breaker import assess_messages
from investigator.vault.audit import _entry_hash
from investigator.schema import record_hashes
from investigator.vault.store import Archive


BUNDLE_FORMAT = "investigator-bundle/2"  # 2: the key service's verdict and record set in the attestation
LEGACY_FORMATS = ("investigator-bundle/1",)  # verified by their own rules: the breaker's verdict was the client's
SIGNED_FILES = ("manifest.json", "signature.json", "release.json")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
SUMMARY_COLUMNS = ("evidence_no", "message_id", "source", "conversation_id", "conversation_name", "ts_utc",
                   "ts_local", "sender_id", "sender_name", "msg_type", "attachment_name", "attachment_sha256",
                   "record_hash", "batch_seq", "leaf_index", "copy_of", "sender_person")


# --- proofs: computed by the key service (investigator.vault.proofs), hashes only -------------------------------

# --- export -------------------------------------------------------------------------------------

@dataclass
class BundleResult:
    bundle_id: str
    path: Path
    items: int
    held: bool
    reasons: list[str] = field(default_factory=list)
    lockdown: Lockdown | None = None  # held: whom the key service locked, how its notifier ended
    missing: list[str] = field(default_factory=list)  # ids asked for that are no message of the grant's window/scope


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (format_ts(v) if isinstance(v, datetime) else v) for k, v in row.items()}


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[name])
    return buffer.getvalue()


def _attest(keyserver: RemoteKeyService | None, desk: CustodianDesk | None, ticket: Ticket, body: dict[str, Any],
            leaves: list[list[int]], *, person: str, grant: Grant, now: datetime) -> ExportAttestation:
    """The archive key's attestation of ``body`` with the key service's own verdict on the records ``leaves``
    names: from the key server, or the embedded desk (the same checks, in this process)."""
    if keyserver is not None:
        return keyserver.attest_export(ticket, body, leaves)
    assert desk is not None
    return desk.attest_export(body, leaves, person=person, grant=grant, now=now)


def export_bundle(archive: "Archive", *, grant: str, person: str, signer: _crypto.SigningKey,
                  passphrase: str | None = None, custody_secrets: Settings | None = None,
                  keyserver: RemoteKeyService | None = None, totp: str | None = None,
                  session: str | None = None, ids: Sequence[str] | None = None,
                  prefix: str = "EV", out: Path, notifiers: Sequence[str] = (),
                  now: datetime | None = None) -> BundleResult:
    """Build a signed evidence bundle of the grant's messages (or ``ids``) at ``out``.

    Needs the export permission (PolicyDenied otherwise, audited). When the
    circuit breaker holds the bundle (personal data, sensitive grant), it is
    kept inside the archive (``exports/held/<id>.zip``) with an audit alert and
    ``held=True``; :func:`release_bundle` lets a legal reviewer release it.

    With ``keyserver`` (a client signed as ``person``) the case is opened and
    the bundle attested by the key server; no master key is unlocked here.
    ``notifiers``: in embedded mode, the circuit breaker's notifier commands this
    process may run (the key server has its own list, ``keyserver --notifier``).
    """

    when = now or datetime.now(timezone.utc)
    loaded = Grant.from_file(find_grant(archive, grant))
    directory, policy = load_org(archive, actor=person, action="export", target=loaded.id, now=when)
    decision = policy.decide("export", person=directory.person(person), directory=directory, now=when,
                             tz=archive.config.zone)
    record_decision(archive, decision, actor=person, action="bundle.export", target=loaded.id, now=when)
    decision.raise_if_denied()
    # embedded: this process unlocks the custody (typed by access.keyservice; reports never import custody)
    keys = None if keyserver is not None else unlock_archive(archive, passphrase, actor=person,
                                                             purpose="bundle export", secrets=custody_secrets)
    key_service: KeyService
    if keyserver is not None:
        key_service = keyserver
    else:
        assert keys is not None
        key_service = EmbeddedKeyService(archive, keys)
    case = open_case(archive, grant=loaded, person=person, totp=totp, session=session, key_service=key_service,
                     now=now)
    messages = case.messages(progress=False)
    missing: list[str] = []
    if ids is not None:
        wanted = list(dict.fromkeys(ids))
        messages = messages.filter(pl.col("message_id").is_in(wanted))
        if messages.height == 0:
            raise BundleError("none of the given ids is in the grant's window and scope")
        found = set(messages["message_id"].to_list())
        missing = [i for i in wanted if i not in found]  # said, not silently dropped: the bundle is not what was asked
    messages = messages.sort(["ts", "source", "message_id", "version"])
    digits = max(6, len(str(messages.height)))
    messages = messages.with_columns(
        pl.format(f"{prefix}-{{}}", pl.int_range(1, messages.height + 1).cast(pl.String).str.zfill(digits))
        .alias("evidence_no"))
    drop = [c for c in ("text_norm", "chunk_id") if c in messages.columns]
    rows = [_jsonable(r) for r in messages.drop(drop).iter_rows(named=True)]
    for row in rows:
        # a record with parts the grant does not open (attachments) cannot be re-hashed from what is exported;
        # it still carries its stored hash and inclusion proof, and the signed file hashes cover its content
        row["complete"] = record_hash(row, "messages") == row["record_hash"]
    proofs: list[dict[str, Any]] = []
    by_batch: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_batch.setdefault(int(row["batch_seq"]), []).append(row)
    manifests = {m.seq: m for m in archive.manifests()}
    for seq, items in sorted(by_batch.items()):
        leaves = [int(r["leaf_index"]) for r in items]
        for row, proof in zip(items, case.key_service.proofs(case.ticket, seq, leaves, now=now)):
            proofs.append({"evidence_no": row["evidence_no"], "message_id": row["message_id"], **proof})
    proofs.sort(key=lambda p: p["evidence_no"])
    files: dict[str, bytes] = {}
    parquet = io.BytesIO()
    messages.drop(drop).with_columns(pl.Series("complete", [r["complete"] for r in rows])).write_parquet(parquet)
    files["messages.parquet"] = parquet.getvalue()
    files["messages.jsonl"] = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode()
    files["proofs.jsonl"] = "".join(json.dumps(p, sort_keys=True) + "\n" for p in proofs).encode()
    attachments = [{"evidence_no": r["evidence_no"], "message_id": r["message_id"],
                    **{k: r.get(k) for k in ("attachment_name", "attachment_type", "attachment_size",
                                             "attachment_sha256", "attachment_md5")}}
                   for r in rows if r.get("attachment_name") or r.get("attachment_sha256")]
    files["attachments.jsonl"] = "".join(json.dumps(a, ensure_ascii=False, sort_keys=True) + "\n"
                                         for a in attachments).encode()
    people = People.from_identities(case.identities(), names={p.id: p.name for p in case.directory().people})
    files["summary.csv"] = _summary_csv(rows, archive.config.timezone, _copies(messages, people),
                                        _senders(messages, people))
    for seq in sorted(by_batch):
        files[f"manifests/{seq:08d}.json"] = manifests[seq].file_bytes
    files["grant.json"] = (json.dumps(loaded.to_json(), ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode()
    audit = grant_entries(archive, loaded.id, request_id=loaded.request.id)
    files["audit.jsonl"] = "".join(json.dumps(e.to_json(), ensure_ascii=False, sort_keys=True) + "\n"
                                   for e in audit).encode()
    files["archive.pub"] = (archive.signing_public.b64() + "\n").encode()
    if archive.layout.transitions.exists():  # the key chain: a verifier who trusts the genesis key trusts the rest
        files["archive-keys.jsonl"] = archive.layout.transitions.read_bytes()
    # the client's own verdict, recorded in the manifest; what decides is the key service's (in the attestation)
    verdict = assess_messages([r.get("text") for r in rows], archive=archive, grant=loaded)
    records = [[int(r["batch_seq"]), int(r["leaf_index"])] for r in rows]
    leaf_set = leaf_set_sha256([(r["batch_seq"], r["leaf_index"], r["record_hash"]) for r in rows])
    bundle_id = "B-" + uuid.uuid4().hex[:16]
    manifest = {"format": BUNDLE_FORMAT, "bundle_id": bundle_id, "archive_id": archive.archive_id,
                "created": format_ts(when), "operator": person, "grant_id": loaded.id, "grant_hash": loaded.hash,
                "case": loaded.case, "evidence_prefix": prefix, "items": len(rows),
                "first": rows[0]["evidence_no"] if rows else "", "last": rows[-1]["evidence_no"] if rows else "",
                "breaker": verdict.to_json(), "leaf_set_sha256": leaf_set,
                "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                          for name, data in sorted(files.items())}}
    manifest_bytes = canonical_json(manifest)
    files["manifest.json"] = manifest_bytes
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    # the key service reads the records itself, judges them and signs the record set's hash and its verdict; a
    # hold gives no release attestation, but the key that seals the held zip and the lock-down, done in the same
    # request (access/exportcheck.py, access/lockdown.py)
    desk = None if keys is None else CustodianDesk(archive, keys, notifiers=frozenset(notifiers))
    body = {"purpose": "bundle-operator", "archive_id": archive.archive_id, "bundle_id": bundle_id,
            "manifest_sha256": manifest_sha, "operator": person, "operator_key_id": signer.public.key_id,
            "grant_id": loaded.id}
    done = _attest(keyserver, desk, case.ticket, body, records, person=person, grant=loaded, now=when)
    signature = {"operator": {"signer": person, "key_id": signer.public.key_id, "public": signer.public.b64(),
                              "signature": signer.sign(manifest_bytes)},
                 "archive": done.attestation}
    files["signature.json"] = canonical_json(signature)
    data = _zip_bytes(files)
    details = {"bundle_id": bundle_id, "items": len(rows), "manifest_sha256": manifest_sha, "prefix": prefix,
               "held": done.held, "leaf_set_sha256": leaf_set, **({"ids_missing": len(missing)} if ids is not None else {})}
    if done.held:
        # kept encrypted under a key only the key service releases (to a legal reviewer's release); this
        # process holds it only while sealing the zip
        key, sealed_key = done.key, done.sealed_key
        assert key is not None and sealed_key is not None
        write_held(archive, bundle_id, data, operator=person, created=format_ts(when), key=key, sealed_key=sealed_key)
        del key
        target = archive.layout.held_bundle(bundle_id)
        reasons = list(done.verdict.reasons)
        archive.audit.append(person, "breaker.alert", loaded.id, {"rule": "breaker.bundle", "bundle_id": bundle_id,
                                                                  "reason": "; ".join(reasons)},
                             outcome="denied", now=when)
        archive.audit.append(person, "bundle.export", loaded.id, {**details, "rule": "breaker.hold"},
                             outcome="denied", now=when)
        return BundleResult(bundle_id, target, len(rows), True, reasons, done.lockdown, missing)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    archive.audit.append(person, "bundle.export", loaded.id, details, outcome="ok", now=when)
    return BundleResult(bundle_id, out, len(rows), False, [], missing=missing)


def _copies(messages: pl.DataFrame, identities: Any) -> dict[str, str]:
    """Evidence number of each exported copy -> that of its message's canonical copy (analysis.dedupe).

    The same message exported by WeCom, WeChat and Slack is three items, each provable on its own; the
    load file says which items are one message, so a reader does not count it three times.
    """
    numbers = dict(zip(messages["record_hash"].to_list(), messages["evidence_no"].to_list()))
    copies: dict[str, str] = {}
    for canonical, hashes in dedupe(messages, identities=identities).select("evidence_no", RECORD_HASHES).iter_rows():
        for other in hashes[1:]:
            if other in numbers:
                copies[numbers[other]] = canonical
    return copies


def _senders(messages: pl.DataFrame, people: People) -> dict[str, str]:
    """Evidence number -> ``name (person id)`` of the directory person behind the sender's account.

    A WeCom row names an external contact ``wmgcCs42YaNEANiWge``, a WeChat row ``wxid_wangfang``: the load
    file says they are 王芳 (wangfang), as the reports do. Accounts the directory does not know are left out.
    """
    resolved = people.resolve(messages).filter(pl.col("person_id").is_not_null())
    return {number: f"{name} ({pid})" for number, pid, name
            in resolved.select("evidence_no", "person_id", "person").iter_rows()}


def _summary_csv(rows: list[dict[str, Any]], tz: str, copies: dict[str, str] | None = None,
                 senders: dict[str, str] | None = None) -> bytes:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    for r in rows:
        ts = datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        # the offset names the zone's hour: a load file read on its own must not leave local time ambiguous
        values = {**r, "ts_utc": r["ts"], "ts_local": ts.astimezone(zone).isoformat(sep=" ", timespec="seconds"),
                  "copy_of": (copies or {}).get(r["evidence_no"], ""),
                  "sender_person": (senders or {}).get(r["evidence_no"], "")}
        writer.writerow(["" if values.get(c) is None else values.get(c) for c in SUMMARY_COLUMNS])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: spreadsheet tools read UTF-8 Chinese correctly


def release_bundle(archive: "Archive", bundle_id: str, *, releaser: str, signer: _crypto.SigningKey,
                   passphrase: str | None = None, note: str, out: Path, custody_secrets: Settings | None = None,
                   keyserver: RemoteKeyService | None = None, now: datetime | None = None) -> Path:
    """A legal reviewer releases a held bundle: adds a signed ``release.json`` and writes it to ``out``.

    Raises PolicyDenied (not a legal reviewer, or the operator) or BundleError.
    """

    when = now or datetime.now(timezone.utc)
    held = read_held(archive, bundle_id)
    # who may release (a legal reviewer, never the operator) is decided where the archive key attests it: the
    # custodian's desk, in this process or on the key server (audited there, refused before anything is written);
    # only then does the desk hand out the key that opens the held bundle
    body = {"purpose": "bundle-release", "bundle_id": bundle_id, "manifest_sha256": held.manifest_sha256,
            "reviewer": releaser, "reviewer_key_id": signer.public.key_id, "ts": format_ts(when), "note": note}
    if keyserver is not None:
        archive_attestation, key = keyserver.release_held(body)
    else:
        keys = unlock_archive(archive, passphrase, actor=releaser, purpose="bundle release", secrets=custody_secrets)
        archive_attestation, key = CustodianDesk(archive, keys).release_held(body, reviewer=releaser, held=held,
                                                                             now=when)
    files = held.open(key)
    if hashlib.sha256(files["manifest.json"]).hexdigest() != body["manifest_sha256"]:
        raise BundleError(f"held bundle {bundle_id}: its manifest is not the one the release names")
    # the desk, which read the manifest, adds the breaker's reasons the reviewer acknowledges; nothing else
    attested = dict(archive_attestation.get("body") or {})
    if {k: v for k, v in attested.items() if k != "acknowledged"} != body:
        raise BundleError(f"held bundle {bundle_id}: the key service attested another release than the one asked")
    body = attested
    files["release.json"] = canonical_json({"reviewer": {"signer": releaser, "key_id": signer.public.key_id,
                                                         "public": signer.public.b64(),
                                                         "signature": signer.sign(canonical_json(body))},
                                            "body": body, "archive": archive_attestation})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(_zip_bytes(files))
    archive.audit.append(releaser, "bundle.release", bundle_id, {"rule": "release.legal_role", "out": out.name},
                         outcome="ok", now=when)
    return out


# --- verification ------------------------------------------------------------------------------

def _trusted(pubkeys: Sequence[_crypto.VerifyKey], key_id: str) -> _crypto.VerifyKey | None:
    return next((k for k in pubkeys if k.key_id == key_id), None)


def _with_chain(pubkeys: Sequence[_crypto.VerifyKey], chain: bytes | None, archive_id: str,
                problems: list[str]) -> list[_crypto.VerifyKey]:
    """The trusted keys plus every key of the bundle's key chain (``archive-keys.jsonl``) rooted in one of them."""
    if not chain:
        return list(pubkeys)
    for root in pubkeys:
        try:
            return [*pubkeys, *KeyChain.parse(chain, genesis=root, archive_id=archive_id).keys[1:]]
        except IntegrityError as exc:
            if "unknown root" not in str(exc):
                problems.append(f"archive-keys.jsonl: {exc}")
                return list(pubkeys)
    return list(pubkeys)  # rooted in no trusted key: only the trusted keys count


def _json_lines(files: dict[str, bytes], name: str, problems: list[str]) -> list[dict[str, Any]]:
    """The objects of a JSON-lines member; each line that is not a JSON object is a problem naming its line."""
    out: list[dict[str, Any]] = []
    try:
        text = files.get(name, b"").decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"{name}: not UTF-8 at byte {exc.start}")
        return out
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            problems.append(f"{name}, line {number}: not JSON ({getattr(exc, 'msg', 'unreadable')}, column "
                            f"{getattr(exc, 'colno', 0)})")
            continue
        if isinstance(value, dict):
            out.append(value)
        else:
            problems.append(f"{name}, line {number}: not a JSON object")
    return out


def _bundle_genesis(files: dict[str, bytes], problems: list[str]) -> _crypto.VerifyKey | None:
    """The archive key the bundle itself names as its root: the chain's first old key, else ``archive.pub``."""
    chain = files.get("archive-keys.jsonl")
    try:
        if chain:
            first = json.loads(chain.split(b"\n", 1)[0])
            return _crypto.VerifyKey.from_b64(str(first["body"]["old"]["public"]))
        return _crypto.VerifyKey.from_b64(files["archive.pub"].decode("ascii").strip())
    except KeyError:
        problems.append("archive.pub: missing (the bundle names no archive key; pass --pubkey)")
    except (ValueError, TypeError, IntegrityError, AttributeError):
        problems.append("archive-keys.jsonl, line 1: not a key transition" if chain
                        else "archive.pub: not an Ed25519 public key")
    return None


def _anchor(files: dict[str, bytes], pubkeys: Sequence[_crypto.VerifyKey], pin: str | None,
            result: Verification) -> list[_crypto.VerifyKey]:
    """The keys to trust: the --pubkey keys, or the bundle's own root key checked against ``pin`` (or, unpinned, said so)."""
    if pubkeys:
        result.check(f"signing key pinned: trusted key(s) {', '.join(k.key_id for k in pubkeys)} given (--pubkey)")
        return list(pubkeys)
    genesis = _bundle_genesis(files, result.problems)
    if genesis is None:
        return []
    fingerprint = _crypto.sha256_hex(genesis.raw)
    if pin is None:
        result.warn("the archive's signing key was taken from the bundle itself (archive.pub), not pinned: pass "
                    "--pubkey FILE or --fingerprint HEX to check it against a key known out of band")
    elif fingerprint != pin:
        result.problem(f"archive.pub: the bundle's archive key (fingerprint {fingerprint[:16]}...) is not the pinned "
                       f"key ({pin[:16]}...): its keys do not root in the pinned key")
        return []
    else:
        result.check(f"signing key pinned: the bundle's archive key chain roots in {pin[:16]}...")
    return [genesis]


def verify_bundle(path: Path, *, pubkeys: Sequence[_crypto.VerifyKey] = (), pin: str | None = None) -> Verification:
    """Check a bundle offline against trusted public keys (the archive's). Never raises, whatever the bundle holds.

    The archive key comes from ``pubkeys`` (trusted copies of the archive's key),
    else from the bundle's own ``archive.pub`` / ``archive-keys.jsonl``: then
    ``pin`` (a fingerprint, SHA-256 of the raw genesis key in hex) must match it,
    and without a pin a warning says the key was taken from the bundle itself.
    Every problem names the member and, for JSON lines, the line.
    """
    result = Verification("bundle", counts={"items": 0}, facts={"released": False})
    problems = result.problems
    try:
        with zipfile.ZipFile(path) as zf:
            files = {name: zf.read(name) for name in zf.namelist()}
    except (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError, ValueError, EOFError) as exc:
        problems.append(f"{path}: not a readable zip file ({exc.__class__.__name__})")
        return result
    manifest: Any = None
    signature: Any = None
    for name in ("manifest.json", "signature.json"):
        try:
            value = json.loads(files[name])
            if not isinstance(value, dict):
                raise TypeError(name)
        except KeyError:
            problems.append(f"{name}: missing")
            continue
        except json.JSONDecodeError as exc:
            problems.append(f"{name}: not JSON (line {exc.lineno}, column {exc.colno})")
            continue
        except (ValueError, TypeError):
            problems.append(f"{name}: not a JSON object")
            continue
        if name == "manifest.json":
            manifest = value
        else:
            signature = value
    if manifest is None or signature is None:
        return result
    try:
        _check_bundle(files, manifest, signature, _anchor(files, pubkeys, pin, result), result)
    except Exception as exc:  # noqa: BLE001 - a hostile bundle is a finding, never a crash
        problems.append(f"the bundle is malformed where the checks above stop ({exc.__class__.__name__})")
    return result


def _check_bundle(files: dict[str, bytes], manifest: dict[str, Any], signature: dict[str, Any],
                  pubkeys: list[_crypto.VerifyKey], result: Verification) -> None:
    problems = result.problems
    manifest_sha = hashlib.sha256(files["manifest.json"]).hexdigest()
    pubkeys = _with_chain(pubkeys, files.get("archive-keys.jsonl"), str(manifest.get("archive_id")), problems)
    # 1. the archive attests the operator's key for this manifest
    attest = _obj(signature.get("archive"))
    archive_key = _trusted(pubkeys, str(attest.get("key_id")))
    body = _obj(attest.get("body"))
    if archive_key is None:
        problems.append(f"signature.json: the archive key {attest.get('key_id')!r} is not among the trusted keys")
    elif not archive_key.is_valid(str(attest.get("signature")), canonical_json(body)):
        problems.append("signature.json: the archive's attestation does not verify")
    elif body.get("manifest_sha256") != manifest_sha:
        problems.append("manifest.json changed: its SHA-256 differs from the one the archive attested")
    else:
        result.checked.append("archive attestation of the operator and the manifest")
    operator = _obj(signature.get("operator"))
    try:
        op_key = _crypto.VerifyKey.from_b64(str(operator.get("public")))
        if op_key.key_id != body.get("operator_key_id") and _trusted(pubkeys, op_key.key_id) is None:
            problems.append("signature.json: the operator's key is not the one the archive attested")
        elif not op_key.is_valid(str(operator.get("signature")), files["manifest.json"]):
            problems.append("manifest.json: the operator's signature does not verify")
        else:
            result.checked.append(f"operator signature of {operator.get('signer')}")
    except Exception:  # noqa: BLE001 - a malformed key is a finding
        problems.append("signature.json: the operator's public key is malformed")
    # 2. every file listed, none added, hashes match
    listed = _obj(manifest.get("files"))
    if not all(isinstance(v, dict) for v in listed.values()):
        problems.append("manifest.json: 'files' is not a table of {sha256} records")
        listed = {k: v for k, v in listed.items() if isinstance(v, dict)}
    for name in sorted(set(files) - set(SIGNED_FILES)):
        if name not in listed:
            problems.append(f"{name}: not listed in the manifest (added)")
        elif hashlib.sha256(files[name]).hexdigest() != listed[name].get("sha256"):
            problems.append(f"{name}: SHA-256 differs from the manifest (changed)")
    for name in sorted(set(listed) - set(files)):
        problems.append(f"{name}: listed in the manifest but missing (removed)")
    # 3. ingest manifests signed by the archive key
    roots: dict[int, tuple[str, int]] = {}
    for name in sorted(n for n in files if n.startswith("manifests/")):
        try:
            ingest = Manifest.parse(files[name], what=name)
            key = _trusted(pubkeys, ingest.key_id)
            if key is None:
                raise IntegrityError(f"signed by an untrusted key {ingest.key_id!r}", path=name)
            ingest.verify_signature(key, what=name)
            roots[ingest.seq] = (ingest.body["merkle"]["root"], int(ingest.body["merkle"]["leaves"]))
        except IntegrityError as exc:
            problems.append(str(exc) if str(exc).startswith(name) else f"{name}: {exc}")
        except (KeyError, ValueError, TypeError, AttributeError):
            problems.append(f"{name}: not a manifest of the expected shape (merkle root and leaves)")
    # 4. each message: record hash from content, inclusion proof against its signed root
    rows = _json_lines(files, "messages.jsonl", problems)  # a bad line is a problem; the others are checked
    proofs = {str(p.get("evidence_no")): p for p in _json_lines(files, "proofs.jsonl", problems)}
    bad = partial = 0
    for position, row in enumerate(rows, start=1):
        number = row.get("evidence_no")
        try:
            recomputed = record_hash({k: v for k, v in row.items()}, "messages")
            int(row["leaf_index"]), int(row.get("batch_seq", -1))
        except Exception:  # noqa: BLE001 - a row of the wrong shape is a finding
            problems.append(f"messages.jsonl, line {position}: not a message record of the expected shape")
            bad += 1
            continue
        proof = proofs.get(str(number))
        if recomputed != row.get("record_hash"):
            if row.get("complete") is False:
                partial += 1
                recomputed = str(row.get("record_hash"))
            else:
                problems.append(f"{number}: message content does not match its record hash")
                bad += 1
                continue
        if proof is None or proof.get("record_hash") != recomputed:
            problems.append(f"{number}: no inclusion proof for its record hash")
            bad += 1
            continue
        signed = roots.get(int(row.get("batch_seq", -1)))
        if signed is None:
            member = f"manifests/{int(row.get('batch_seq', -1)):08d}.json"
            # present but not verified (reported above) is not the same finding as absent
            problems.append(f"{number}: its ingest manifest (batch {row.get('batch_seq')}) "
                            + (f"did not verify ({member}, above)" if member in files else "is not in the bundle"))
            bad += 1
            continue
        root, size = signed
        try:
            ok = verify_inclusion(bytes.fromhex(recomputed), int(row["leaf_index"]), size,
                                  [bytes.fromhex(p) for p in proof.get("path", [])], bytes.fromhex(root))
            ok = ok and int(proof.get("leaf_index", -1)) == int(row["leaf_index"])
        except (ValueError, TypeError, AttributeError):
            ok = False
        if not ok:
            problems.append(f"{number}: inclusion proof does not check against the signed root of batch "
                            f"{row.get('batch_seq')}")
            bad += 1
    if len(rows) != manifest.get("items"):
        problems.append(f"messages.jsonl holds {len(rows)} messages, the manifest says {manifest.get('items')}")
    result.counts["items"] = len(rows)
    if rows and not bad:
        result.checked.append(f"{len(rows)} messages: inclusion proofs check against {len(roots)} signed manifest "
                              f"roots; {len(rows) - partial} record hashes recomputed from content"
                              + (f", {partial} hold parts the grant did not open (stored hash proven)"
                                 if partial else ""))
    # 5. the Parquet copy holds the same records
    try:
        frame = pl.read_parquet(io.BytesIO(files["messages.parquet"]))
        if frame["record_hash"].to_list() != [r.get("record_hash") for r in rows] \
                or frame["evidence_no"].to_list() != [r.get("evidence_no") for r in rows]:
            problems.append("messages.parquet differs from messages.jsonl")
        else:

            complete = frame.filter(pl.col("complete"))
            if record_hashes(complete, "messages") != complete["record_hash"].to_list():
                problems.append("messages.parquet: a message's content does not match its record hash")
    except Exception as exc:  # noqa: BLE001 - unreadable parquet is a finding
        problems.append(f"messages.parquet unreadable ({exc.__class__.__name__})")
    # 6. the grant's archive signature
    try:

        grant = Grant.from_json(json.loads(files["grant.json"]))
        if not any(k.is_valid(grant.signature, canonical_json(grant.body)) for k in pubkeys):  # any archive key
            problems.append("grant.json: the archive's signature on the grant does not verify")
        elif grant.id != manifest.get("grant_id") or grant.hash != manifest.get("grant_hash"):
            problems.append("grant.json: not the grant the manifest names")
        else:
            result.checked.append(f"grant {grant.id} signed by the archive")
    except Exception:  # noqa: BLE001
        problems.append("grant.json missing or malformed")
    # 7. audit excerpt: each entry's own hash

    audit_problems = len(problems)
    for position, entry in enumerate(_json_lines(files, "audit.jsonl", problems), start=1):
        try:
            altered = _entry_hash({k: v for k, v in entry.items() if k != "hash"}) != entry.get("hash")
        except Exception:  # noqa: BLE001 - an entry that cannot be hashed is altered
            altered = True
        if altered:
            problems.append(f"audit.jsonl: entry {entry.get('seq')!r} (object {position}) was altered")
    if "audit.jsonl" in files and len(problems) == audit_problems:
        result.checked.append("audit.jsonl: each entry's own hash")
    # 8. the key service's verdict and record set (format 2), then the release (for a bundle the breaker held)
    held = bool(_obj(manifest.get("breaker")).get("held"))
    held = _check_verdict(manifest, body, rows, result) or held
    if "release.json" in files:
        try:
            release = _obj(json.loads(files["release.json"]))
            attested, rel_body, reviewer = (_obj(release.get(k)) for k in ("archive", "body", "reviewer"))
            reviewer_key = _crypto.VerifyKey.from_b64(str(reviewer.get("public")))
            ok = (attested.get("body") == rel_body  # any trusted archive key (a release may follow a migration)
                  and any(k.is_valid(str(attested.get("signature")), canonical_json(rel_body)) for k in pubkeys)
                  and rel_body.get("manifest_sha256") == manifest_sha
                  and reviewer_key.key_id == rel_body.get("reviewer_key_id")
                  and reviewer_key.is_valid(str(reviewer.get("signature")), canonical_json(rel_body)))
        except (ValueError, TypeError, IntegrityError):
            ok = False
        if ok:
            result.facts["released"] = True
            result.checked.append(f"released by {rel_body.get('reviewer')}")
        else:
            problems.append("release.json does not verify")
    elif held:
        problems.append("the circuit breaker held this bundle and it carries no release")


def _check_verdict(manifest: dict[str, Any], attested: dict[str, Any], rows: list[dict[str, Any]],
                   result: Verification) -> bool:
    """Whether the key service held the bundle; a problem when its attested record set is not the bundle's
    records, or when a format-2 bundle carries no key-service verdict. An older bundle: a note that its
    breaker verdict was the exporting client's."""
    if manifest.get("format") in LEGACY_FORMATS and "verdict" not in attested:
        result.warn(f"{manifest.get('format')}: the circuit breaker's verdict in this bundle is the exporting client's "
                    "(no key-service verdict or attested record set; bundles since investigator-bundle/2 carry both)")
        result.facts["verdict"] = "client"
        return False
    verdict = _obj(attested.get("verdict"))
    if verdict.get("judged_by") != JUDGE or verdict.get("decision") not in ("hold", "release") \
            or not isinstance(attested.get("leaf_set_sha256"), str):
        result.problem("signature.json: the archive's attestation carries no key-service verdict on the bundle's "
                       "records (leaf_set_sha256, verdict): the circuit breaker's decision cannot be checked")
        return True
    try:
        mine = leaf_set_sha256([(r["batch_seq"], r["leaf_index"], r["record_hash"]) for r in rows])
    except (KeyError, TypeError, ValueError):
        mine = ""
    if mine != attested["leaf_set_sha256"] or attested.get("items") != len(rows):
        result.problem(f"messages.jsonl: the bundle's {len(rows)} records are not the record set the key service "
                       f"read and judged ({attested.get('items')} records, leaf-set hash "
                       f"{str(attested['leaf_set_sha256'])[:16]}...): records were added, removed or swapped")
    held = verdict.get("decision") == "hold" or verdict.get("held") is True
    if not held:
        result.check(f"the key service read the {len(rows)} records itself and judged them: release "
                     "(leaf-set hash matches)")
    else:
        result.check("the key service read the records itself and held them: "
                     + "; ".join(str(r) for r in verdict.get("reasons") or []))
    result.facts["verdict"] = "hold" if held else "release"
    return held


def _obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else empty (a hostile member of the wrong shape checks as absent)."""
    return value if isinstance(value, dict) else {}
