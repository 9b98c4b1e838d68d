"""Legal holds (法律保全): a signed hold on a time window wins over retention and shredding, everywhere.

    >>> hold = add_hold(archive, signer=("lixia", key), case="C-042", start=start, end=end,
    ...                 reason="labour arbitration", now=now)                           # doctest: +SKIP
    >>> [h.id for h in active_holds(archive)]                                           # doctest: +SKIP
    ['HOLD-20261128-1a2b3c4d']
    >>> release_hold(archive, custody, hold.id, signer=("lixia", key), totp="123456",
    ...              reason="case closed", now=later)                                   # doctest: +SKIP

Named apart from the circuit breaker's *held bundles* (exports/held/). A hold is a record in
``org/holds/<HOLD-id>.json`` signed with the personal key of the person who adds it (a person with
the legal or admin role); its release, ``org/holds/<HOLD-id>.release.json``, is signed by a person
with the legal role after a TOTP check. While a hold is active, nothing whose day partition overlaps
its window is shredded, no snapshot or object holding such data is forgotten or pruned, and backup
runs set the S3 legal hold on those objects. ``--conversation`` / ``--person`` name what the hold is
about; what is kept is always the whole time window (chunks mix conversations).

Fail closed: a hold that does not verify still counts as active (and is reported); a release that
does not verify releases nothing. Every add and release, allowed or refused, is audited.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from investigator import _crypto
from investigator._fs import atomic_write, make_dirs
from investigator.authority.directory import Directory, DirectoryStore
from investigator.authority.identity import verify_totp
from investigator.custody.base import Custody
from investigator.errors import ConfigError, IntegrityError, PolicyDenied
from investigator.schema import canonical_json, format_ts
from investigator.vault.format import INDEX_KEY_KIND
from investigator.vault.store import Archive, utc_day_bounds

HOLD_FORMAT = "investigator-legal-hold/1"
RELEASE_FORMAT = "investigator-legal-hold-release/1"
ADD_ROLES = ("legal", "admin")
RELEASE_ROLES = ("legal",)
# Files every restore needs, held with the data (they hold no content).
_ALWAYS_HELD = ("archive.toml", "keys/archive-signing.pub", "keys/index-key.json", "keys/transitions.jsonl")


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


@dataclass(frozen=True)
class Hold:
    """One legal hold as stored: its body, its signature, its release (if any) and what verifying found."""

    body: dict[str, Any]
    signature: dict[str, str]
    release: dict[str, Any] | None = None
    problem: str = ""  # why the hold or its release does not verify ('' when both do)

    @property
    def id(self) -> str:
        return str(self.body["id"])

    @property
    def case(self) -> str:
        return str(self.body.get("case", ""))

    @property
    def window(self) -> tuple[datetime, datetime]:
        return _parse_ts(str(self.body["start"])), _parse_ts(str(self.body["end"]))

    @property
    def digest(self) -> str:
        return _crypto.sha256_hex(canonical_json(self.body))

    @property
    def active(self) -> bool:
        """Until a verified release: a hold that does not verify stays active (fail closed)."""
        return self.release is None

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """True when the hold's window meets [start, end)."""
        hold_start, hold_end = self.window
        return hold_start < end and start < hold_end

    def summary(self) -> dict[str, Any]:
        out = {k: self.body.get(k) for k in ("id", "case", "start", "end", "conversations", "persons", "reason",
                                             "created", "by")}
        out["active"] = self.active
        if self.release is not None:
            out["released"] = self.release["body"]["released"]
            out["released_by"] = self.release["body"]["by"]
        if self.problem:
            out["problem"] = self.problem
        return out


def _sign(person: str, key: Any, body: dict[str, Any]) -> dict[str, Any]:
    return {"body": body, "signature": {"signer": person, "key_id": key.public.key_id,
                                        "signature": key.sign(canonical_json(body))}}


def _check_person_signature(directory: Directory, record: dict[str, Any], roles: tuple[str, ...], what: str) -> None:
    """Raise IntegrityError unless ``record`` is signed by a person of ``directory`` with one of ``roles``."""
    try:
        sig = record["signature"]
        signer, key_id, signature = str(sig["signer"]), str(sig["key_id"]), str(sig["signature"])
        body = record["body"]
    except (KeyError, TypeError) as exc:
        raise IntegrityError("not a signed record", path=what) from exc
    person = directory.find(signer)
    if person is None or not set(roles) & set(person.roles):
        raise IntegrityError(f"signed by {signer!r}, who has no {' or '.join(roles)} role", path=what)
    if body.get("by") != signer:
        raise IntegrityError("signer and the body's 'by' differ", path=what)
    key = person.key(key_id)
    if key is None:
        raise IntegrityError(f"signed by {signer!r} with an unknown key", path=what)
    key.verify_key().verify(signature, canonical_json(body), what=what)


def _refuse(archive: Archive, actor: str, action: str, target: str, reason: str, now: datetime,
            rule: str = "legalhold") -> None:
    archive.audit.append(actor, action, target, {"rule": rule, "reason": reason}, outcome="denied", now=now)


def add_hold(archive: Archive, *, signer: tuple[str, Any], case: str, start: datetime, end: datetime,
             reason: str, conversations: tuple[str, ...] = (), persons: tuple[str, ...] = (),
             now: datetime | None = None) -> Hold:
    """Add a legal hold signed by ``signer`` (person id, unlocked personal key). Audited as ``legalhold.add``.

    Raises ConfigError for an empty case or window, PolicyDenied (audited) when the signer has no legal
    or admin role or the key is not theirs.
    """
    when = now or datetime.now(timezone.utc)
    person, key = signer
    hold_id = f"HOLD-{when.strftime('%Y%m%d')}-{secrets.token_hex(4)}"
    if not case.strip() or end <= start:
        problem = "no case given" if not case.strip() else "the window ends before it starts"
        _refuse(archive, person, "legalhold.add", hold_id, problem, when)
        raise ConfigError("--case is required: a hold is always for a case" if not case.strip()
                          else "--end must be after --start")
    body = {"format": HOLD_FORMAT, "id": hold_id, "archive_id": archive.archive_id, "case": case.strip(),
            "start": format_ts(start.astimezone(timezone.utc)), "end": format_ts(end.astimezone(timezone.utc)),
            "conversations": sorted(set(conversations)), "persons": sorted(set(persons)), "reason": reason,
            "created": format_ts(when), "by": person}
    record = _sign(person, key, body)
    try:
        _check_person_signature(DirectoryStore(archive).load(), record, ADD_ROLES, "legal hold")
    except IntegrityError as exc:
        _refuse(archive, person, "legalhold.add", hold_id, str(exc), when)
        raise PolicyDenied(f"a legal hold is added by a person with the legal or admin role ({exc})",
                           rule="legalhold.add") from exc
    path = archive.layout.hold(hold_id)
    make_dirs(path.parent)
    with archive.write_lock():  # a shredding checks holds under the same lock: it sees this hold or precedes it
        atomic_write(path, (json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode())
    archive.audit.append(person, "legalhold.add", hold_id,
                         {"case": body["case"], "start": body["start"], "end": body["end"],
                          "conversations": len(body["conversations"]), "persons": len(body["persons"]),
                          "hold_sha256": _crypto.sha256_hex(canonical_json(body))}, now=when)
    return Hold(body, record["signature"])


def load_holds(archive: Archive) -> list[Hold]:
    """Every hold, oldest first, each with its verified release (if any) and what did not verify."""
    folder = archive.layout.holds_dir
    if not folder.is_dir():
        return []
    directory = DirectoryStore(archive).load()
    holds = []
    for path in sorted(folder.glob("HOLD-*.json")):
        if path.name.endswith(".release.json"):
            continue
        what = archive.layout.relative(path)
        problem = ""
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            body = record["body"]
            if body.get("format") != HOLD_FORMAT or body.get("id") != path.stem:
                raise IntegrityError(f"not a {HOLD_FORMAT} record named after its id", path=what)
            _parse_ts(str(body["start"])), _parse_ts(str(body["end"]))
        except (OSError, ValueError, KeyError, TypeError, IntegrityError) as exc:
            # unreadable: held all the same, over all time (fail closed), and reported
            body = {"id": path.stem, "case": "?", "start": "0001-01-01T00:00:00Z", "end": "9999-12-31T00:00:00Z"}
            holds.append(Hold(body, {}, None, f"{what}: does not parse ({type(exc).__name__}); held over all time"))
            continue
        try:
            _check_person_signature(directory, record, ADD_ROLES, what)
        except IntegrityError as exc:
            problem = str(exc)
        release = None
        release_path = archive.layout.hold_release(path.stem)
        if release_path.exists():
            rwhat = archive.layout.relative(release_path)
            try:
                candidate = json.loads(release_path.read_text(encoding="utf-8"))
                rbody = candidate["body"]
                if rbody.get("format") != RELEASE_FORMAT or rbody.get("hold") != path.stem \
                        or rbody.get("hold_sha256") != _crypto.sha256_hex(canonical_json(body)):
                    raise IntegrityError("release names another hold or another version of it", path=rwhat)
                _check_person_signature(directory, candidate, RELEASE_ROLES, rwhat)
                release = candidate
            except (OSError, ValueError, KeyError, TypeError, IntegrityError) as exc:
                problem = problem or f"{rwhat}: release does not verify ({exc}); the hold stays active"
        holds.append(Hold(body, record.get("signature", {}), release, problem))
    return holds


def active_holds(archive: Archive) -> list[Hold]:
    """The holds not (verifiably) released."""
    return [h for h in load_holds(archive) if h.active]


def release_hold(archive: Archive, keys: Custody, hold_id: str, *, signer: tuple[str, Any], totp: str, reason: str,
                 now: datetime | None = None) -> Hold:
    """Release a hold: a person with the legal role, after a TOTP check, signs the release. Audited.

    Raises ConfigError for an unknown or already released hold, PolicyDenied (audited) when the
    signer has no legal role, IdentityCheckFailed (audited) for a wrong or replayed code.
    """
    when = now or datetime.now(timezone.utc)
    person, key = signer
    hold = next((h for h in load_holds(archive) if h.id == hold_id), None)
    if hold is None or not archive.layout.hold(hold_id).exists():
        _refuse(archive, person, "legalhold.release", hold_id, "no such hold", when)
        raise ConfigError(f"no legal hold {hold_id!r} (see 'investigator legalhold list')")
    if not hold.active:
        _refuse(archive, person, "legalhold.release", hold_id, "already released", when)
        raise ConfigError(f"{hold_id} was already released")
    directory = DirectoryStore(archive).load()
    found = directory.find(person)
    if found is None or not found.active or not set(RELEASE_ROLES) & set(found.roles):
        reason_text = "releasing a legal hold needs a person with the legal role"
        _refuse(archive, person, "legalhold.release", hold_id, reason_text, when, rule="legalhold.release")
        raise PolicyDenied(reason_text, rule="legalhold.release")
    verify_totp(archive, keys, person, totp, now=when, purpose="legalhold.release")
    body = {"format": RELEASE_FORMAT, "hold": hold_id, "hold_sha256": hold.digest, "archive_id": archive.archive_id,
            "released": format_ts(when), "by": person, "reason": reason, "totp_checked": True}
    record = _sign(person, key, body)
    try:
        _check_person_signature(directory, record, RELEASE_ROLES, "hold release")
    except IntegrityError as exc:
        _refuse(archive, person, "legalhold.release", hold_id, str(exc), when, rule="legalhold.release")
        raise PolicyDenied(f"the release is not signed by {person}'s key ({exc})", rule="legalhold.release") from exc
    atomic_write(archive.layout.hold_release(hold_id),
                 (json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode())
    archive.audit.append(person, "legalhold.release", hold_id, {"case": hold.case, "reason": reason,
                                                                "hold_sha256": hold.digest}, now=when)
    return Hold(hold.body, hold.signature, record)


def partition_held(holds: list[Hold], partition: str) -> list[Hold]:
    """The holds whose window meets the UTC day ``partition`` (YYYY-MM-DD); every hold for other partitions."""
    try:
        start, end = utc_day_bounds(partition)
    except ValueError:
        return list(holds)
    return [h for h in holds if h.overlaps(start, end)]


def held_paths(archive: Archive, holds: list[Hold]) -> set[str]:
    """Archive-relative paths of the files that hold data of an active hold's window (chunk parts, their
    batch's manifest and index, the partitions' wrapped keys) and the few files every restore needs."""
    if not holds:
        return set()
    out = {p for p in _ALWAYS_HELD}
    layout = archive.layout
    for manifest in archive.manifests():
        batch = layout.batch(manifest.seq)
        touched = False
        for chunk in manifest.chunks:
            if partition_held(holds, chunk.partition):
                touched = True
                out.update(relative for _part, relative, _sha in chunk.parts)
                out.add(layout.relative(batch.data_key(chunk.kind, chunk.partition)))
                out.add(layout.relative(archive.rewrapped_data_key_path(chunk.kind, chunk.partition, manifest.seq)))
        if touched:
            out.add(layout.relative(batch.manifest))
            out.add(layout.relative(batch.index))
            out.add(layout.relative(batch.data_key(INDEX_KEY_KIND, batch.folder.name)))
    return out

