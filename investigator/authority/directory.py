"""The org directory: people, their groups, supervisors, roles, chat accounts and public keys.

    >>> store = DirectoryStore(archive)                                     # doctest: +SKIP
    >>> directory = store.load()            # every version's signature checked
    >>> directory.person("zhangwei").supervisor
    'zhaomin'
    >>> directory.identities()["zhangwei"][:3]
    ['zhangwei', '张伟', 'U0ZHANGWEI']

The directory lives in the archive as a chain of signed versions
(``ARCHIVE/org/directory/NNNNNN.json``). Version 1 is signed with the archive
signing key (bootstrap, by whoever holds the archive passphrase); every later
version is signed either by an admin of the *previous* version with their
personal key, or by the archive key. So a copy edited by hand, or one where
someone added themselves as admin and signed with their own key, fails to load
(docs/admin.md, "Bootstrap"). Changes are made through :meth:`DirectoryStore.commit`
(the ``people`` CLI commands), each one audited.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from investigator import _crypto
from investigator.errors import ConfigError, IntegrityError
from investigator._fs import atomic_write, make_dirs
from investigator.schema import canonical_json, format_ts
from investigator.errors import ImportFormatError
from investigator.errors import PolicyDenied
from investigator.vault.store import Archive
from investigator.vault.format import ArchiveSigner
from investigator.vault.keychain import KeyChain


DIRECTORY_FORMAT = "investigator-directory/1"
ADMIN_ROLE = "admin"
ARCHIVE_SIGNER = "archive"
STATUSES = ("active", "left")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_person_id(value: str) -> str:
    """Raise ConfigError unless ``value`` is a safe person id (letters, digits, ``._-``)."""
    if not _ID_RE.match(value or "") or value == ARCHIVE_SIGNER:
        raise ConfigError(f"invalid person id {value!r}", hint="use letters, digits, '.', '_' or '-' (max 64)")
    return value


@dataclass(frozen=True)
class PersonKey:
    """One Ed25519 public key of a person. ``revoked`` is the revocation time, or ''."""

    key_id: str
    public: str
    created: str
    revoked: str = ""

    def verify_key(self) -> _crypto.VerifyKey:
        return _crypto.VerifyKey.from_b64(self.public)

    def to_json(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "public": self.public, "created": self.created, "revoked": self.revoked}


@dataclass(frozen=True)
class Person:
    """A person of the org directory (or a service identity)."""

    id: str
    name: str
    department: str = ""
    groups: tuple[str, ...] = ()
    supervisor: str = ""
    roles: tuple[str, ...] = ()
    status: str = "active"
    identities: tuple[str, ...] = ()  # "platform:account"
    keys: tuple[PersonKey, ...] = ()
    totp_enrolled: str = ""  # time of TOTP enrolment, or ''

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def current_key(self) -> PersonKey | None:
        """The newest key that is not revoked, or None."""
        live = [k for k in self.keys if not k.revoked]
        return live[-1] if live else None

    def key(self, key_id: str) -> PersonKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)

    def accounts(self) -> list[str]:
        """Bare account ids / names on every platform (the part after ``platform:``)."""
        return [ident.split(":", 1)[1] if ":" in ident else ident for ident in self.identities]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "department": self.department, "groups": list(self.groups),
                "supervisor": self.supervisor, "roles": list(self.roles), "status": self.status,
                "identities": list(self.identities), "keys": [k.to_json() for k in self.keys],
                "totp_enrolled": self.totp_enrolled}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Person":
        try:
            return cls(id=str(obj["id"]), name=str(obj["name"]), department=str(obj.get("department", "")),
                       groups=tuple(obj.get("groups", ())), supervisor=str(obj.get("supervisor", "")),
                       roles=tuple(obj.get("roles", ())), status=str(obj.get("status", "active")),
                       identities=tuple(obj.get("identities", ())),
                       keys=tuple(PersonKey(**k) for k in obj.get("keys", ())),
                       totp_enrolled=str(obj.get("totp_enrolled", "")))
        except (KeyError, TypeError) as exc:
            raise IntegrityError("malformed person record in the directory") from exc


@dataclass(frozen=True)
class Directory:
    """One verified version of the org directory."""

    people: tuple[Person, ...] = ()
    version: int = 0
    digest: str = ""
    # the first version with an enrolled admin (0: none yet) and its time: after it, the archive key signs no
    # directory or policy version (the bootstrap is over)
    first_admin_version: int = 0
    first_admin_ts: str = ""
    _by_id: dict[str, Person] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id.update({p.id: p for p in self.people})

    def find(self, person_id: str) -> Person | None:
        return self._by_id.get(person_id)

    def person(self, person_id: str) -> Person:
        """The person with this id. Raises ConfigError for an unknown id."""
        found = self._by_id.get(person_id)
        if found is None:
            raise ConfigError(f"no person {person_id!r} in the org directory",
                              hint="see 'investigator people list ARCHIVE'")
        return found

    def __contains__(self, person_id: object) -> bool:
        return person_id in self._by_id

    def public_keys(self) -> dict[str, _crypto.VerifyKey]:
        """Every person's public keys by key id (revoked ones too: they verify what was signed before)."""
        return {k.key_id: k.verify_key() for p in self.people for k in p.keys}

    def identities(self) -> dict[str, list[str]]:
        """person id -> every id and name they appear under (id, name, each platform account)."""
        out: dict[str, list[str]] = {}
        for p in self.people:
            names = [p.id, p.name, *p.accounts()]
            out[p.id] = list(dict.fromkeys(n for n in names if n))
        return out

    def identity_pairs(self) -> dict[str, list[str]]:
        """person id -> ``platform:account`` pairs as stored."""
        return {p.id: list(p.identities) for p in self.people}

    def groups(self) -> dict[str, list[str]]:
        """group or department -> person ids (active and former members)."""
        out: dict[str, list[str]] = {}
        for p in self.people:
            for name in dict.fromkeys([*p.groups, p.department]):
                if name:
                    out.setdefault(name, []).append(p.id)
        return out

    def teammates(self, person_id: str) -> set[str]:
        """Ids of everyone sharing a group with ``person_id`` (themselves included)."""
        me = self.find(person_id)
        if me is None:
            return set()
        mine = set(me.groups)
        return {p.id for p in self.people if mine & set(p.groups)} | {me.id}

    def admins(self) -> list[Person]:
        """Active admins with a live key: those who may sign directory and policy changes."""
        return [p for p in self.people if p.active and ADMIN_ROLE in p.roles and p.current_key]

    def with_person(self, person: Person) -> tuple[Person, ...]:
        """The people tuple with ``person`` added or replaced (keeps order)."""
        if person.id in self._by_id:
            return tuple(person if p.id == person.id else p for p in self.people)
        return (*self.people, person)


@dataclass(frozen=True)
class Signer:
    """Who signs a directory or policy change: a person's key, or the archive key (bootstrap).

    ``notary`` has the audit log checkpointed after the change (anything with
    ``checkpoint(now=...)``: the key server's client, the custodian's desk). The
    archive key checkpoints itself; a person's key without a notary leaves the
    change to the next checkpoint of the key service (embedded mode).
    """

    id: str
    key: ArchiveSigner  # a person's in-memory key, or the archive's (which may live in an HSM)
    notary: Any = field(default=None, compare=False)

    @classmethod
    def archive(cls, signing: ArchiveSigner) -> "Signer":
        return cls(ARCHIVE_SIGNER, signing)

    def checkpoint(self, archive: "Archive", *, now: datetime) -> None:
        """Checkpoint the audit log after a decision this signer signed (issue #13: after every decision).

        Raises AuditError (or the notary's KeyServiceError) when the checkpoint cannot be written.
        """
        if self.notary is not None:
            self.notary.checkpoint(now=now)
        elif self.id == ARCHIVE_SIGNER:
            archive.audit.checkpoint(self.key, archive_id=archive.archive_id, now=now)

    def __repr__(self) -> str:
        return f"Signer(id={self.id!r}, key_id={self.key.public.key_id!r})"


def check_signer(signer_id: str, key_id: str, signature: str, body: bytes, *, archive_public: KeyChain,
                 directory: Directory | None, what: str) -> None:
    """Raise IntegrityError unless ``signature`` is by an archive key (of its chain) or an admin of ``directory``."""
    if signer_id == ARCHIVE_SIGNER:
        if not archive_public.accepts(key_id):
            raise IntegrityError("signed by a key that is not the archive key", path=what)
        archive_public.verify(signature, body, what=what, key_id=key_id)
        return
    person = directory.find(signer_id) if directory else None
    if person is None or ADMIN_ROLE not in person.roles:
        raise IntegrityError(f"signed by {signer_id!r}, who is not an admin", path=what)
    if not person.active:
        raise IntegrityError(f"signed by {signer_id!r}, who has left", path=what)
    key = person.key(key_id)
    if key is None or key.revoked:
        raise IntegrityError(f"signed by {signer_id!r} with a revoked or unknown key", path=what)
    key.verify_key().verify(signature, body, what=what)


# (archive id, its signing keys, fingerprint of the version files) -> the directory they verified to (per process)
_VERIFIED: dict[tuple[str, tuple[bytes, ...], str], Directory] = {}


class DirectoryStore:
    """The signed version chain of the directory in ``ARCHIVE/org/directory`` (``archive.layout.directory_dir``)."""

    def __init__(self, archive: "Archive") -> None:
        self.archive = archive
        self.folder = archive.layout.directory_dir

    def _versions(self) -> list[Path]:
        if not self.folder.exists():
            return []
        return sorted(p for p in self.folder.glob("[0-9]*.json"))

    def exists(self) -> bool:
        return bool(self._versions())

    def load(self) -> Directory:
        """The newest version, after checking every version's signature and chain link.

        An archive without a directory gives an empty one. Raises IntegrityError
        naming the first version that does not verify.
        """
        files: list[tuple[Path, bytes]] = []
        for path in self._versions():
            try:
                files.append((path, path.read_bytes()))
            except OSError as exc:
                raise IntegrityError("unreadable directory version", path=self.archive.layout.relative(path)) from exc
        # The same bytes under the same archive keys verify to the same directory: a long-lived store (the key
        # server's, which loads on every request so that a revocation counts from the next one), and the several
        # loads of one open (the decision, the witness list), check signatures only when a version file was
        # added, changed or removed, or the archive's key chain changed. Only a directory that verified is kept.
        fingerprint = _crypto.sha256_hex(b"".join(path.name.encode() + b"\0" + _crypto.sha256_hex(data).encode()
                                                  for path, data in files))
        archive_keys = self.archive.signing_keys()
        memo = (self.archive.archive_id, tuple(k.raw for k in archive_keys.keys), fingerprint)
        known = _VERIFIED.get(memo)
        if known is not None:
            return known
        directory: Directory | None = None
        prev = ""
        for number, (path, data_bytes) in enumerate(files, start=1):
            what = self.archive.layout.relative(path)
            try:
                doc = json.loads(data_bytes)
                body, sig = doc["body"], doc["signature"]
            except (ValueError, KeyError, TypeError) as exc:
                raise IntegrityError("unreadable directory version", path=what) from exc
            if path.name != f"{number:06d}.json" or body.get("version") != number:
                raise IntegrityError("directory version out of sequence", path=what)
            if body.get("format") != DIRECTORY_FORMAT or body.get("archive_id") != self.archive.archive_id:
                raise IntegrityError("not a directory of this archive", path=what)
            if body.get("prev", "") != prev:
                raise IntegrityError("chain link to the previous directory version is broken", path=what)
            if number == 1 and sig.get("signer") != ARCHIVE_SIGNER:
                raise IntegrityError("the first directory version must be signed with the archive key", path=what)
            if sig.get("signer") == ARCHIVE_SIGNER and directory is not None and directory.admins():
                # commit() refuses this too: once an admin is enrolled, only an admin signs, so whoever holds
                # the master keys (the key server's host) cannot slip in a version of their own
                raise IntegrityError("signed with the archive key although the directory has an enrolled admin",
                                     path=what)
            data = canonical_json(body)
            check_signer(str(sig.get("signer")), str(sig.get("key_id")), str(sig.get("signature")), data,
                         archive_public=archive_keys, directory=directory, what=what)
            prev = _crypto.sha256_hex(data)
            people = tuple(Person.from_json(p) for p in body.get("people", ()))
            directory = Directory(people=people, version=number, digest=prev,
                                  first_admin_version=directory.first_admin_version if directory else 0,
                                  first_admin_ts=directory.first_admin_ts if directory else "")
            if not directory.first_admin_version and directory.admins():
                directory = replace(directory, first_admin_version=number, first_admin_ts=str(body.get("ts") or ""))
        result = directory or Directory()
        if len(_VERIFIED) >= 8:
            _VERIFIED.clear()  # one or two archives per process is the common case: keep it small
        _VERIFIED[memo] = result
        return result

    def commit(self, people: Sequence[Person], *, signer: Signer, action: str, target: str,
               details: dict[str, Any] | None = None, now: datetime) -> Directory:
        """Write the next version with ``people``, signed by ``signer``, and audit it.

        Checks first what :meth:`load` will check: the signer must be the archive
        key or an active admin (with that key) of the current version, and while
        the directory has an enrolled admin, the archive key may not be used
        (an admin signs). Raises PolicyDenied (audited) when the signer may not sign.
        """

        current = self.load()
        _check_people(people)
        if signer.id == ARCHIVE_SIGNER:
            if current.admins():
                reason = "the directory has an enrolled admin: changes must be signed by an admin (--as ADMIN)"
                self._deny(signer, action, target, "directory.signer", reason, now)
            if signer.key.public.key_id != self.archive.signing_public.key_id:
                self._deny(signer, action, target, "directory.signer", "not the archive signing key", now)
        else:
            admin = current.find(signer.id)
            key = admin.key(signer.key.public.key_id) if admin else None
            if admin is None or not admin.active or ADMIN_ROLE not in admin.roles:
                self._deny(signer, action, target, "directory.signer", f"{signer.id!r} is not an active admin", now)
            if key is None or key.revoked:
                self._deny(signer, action, target, "directory.signer",
                           f"{signer.id!r} signs with a revoked or unknown key", now)
        body = {"format": DIRECTORY_FORMAT, "archive_id": self.archive.archive_id, "version": current.version + 1,
                "prev": current.digest, "ts": format_ts(now),
                "change": {"action": action, "target": target, "by": signer.id},
                "people": [p.to_json() for p in people]}
        data = canonical_json(body)
        doc = {"body": body, "signature": {"signer": signer.id, "key_id": signer.key.public.key_id,
                                           "signature": signer.key.sign(data)}}
        make_dirs(self.folder)
        path = self.archive.layout.directory_version(current.version + 1)
        if path.exists():
            raise IntegrityError("directory changed meanwhile; retry", path=self.archive.layout.relative(path))
        # the version first, then its entry: a process killed in between leaves a signed change in force that the
        # next state head covers; the other order left an audited version without its file, which every load then
        # refused (the state cross-check: a directory version deleted) until an admin made the change again
        atomic_write(path, (json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode())
        self.archive.audit.append(signer.id, f"people.{action}", target,
                                  {**(details or {}), "directory_version": current.version + 1,
                                   "directory_hash": _crypto.sha256_hex(data), "rule": "directory.signer"},
                                  outcome="ok", now=now)
        signer.checkpoint(self.archive, now=now)
        return self.load()

    def _deny(self, signer: Signer, action: str, target: str, rule: str, reason: str, now: datetime) -> None:

        self.archive.audit.append(signer.id, f"people.{action}", target, {"rule": rule, "reason": reason},
                                  outcome="denied", now=now)
        raise PolicyDenied(reason, rule=rule)


def _check_people(people: Sequence[Person]) -> None:
    ids = [p.id for p in people]
    if len(ids) != len(set(ids)):
        raise ConfigError("duplicate person id in the directory")
    known = set(ids)
    for p in people:
        check_person_id(p.id)
        if p.status not in STATUSES:
            raise ConfigError(f"{p.id}: status must be one of {', '.join(STATUSES)}")
        if p.supervisor and p.supervisor not in known:
            raise ConfigError(f"{p.id}: supervisor {p.supervisor!r} is not in the directory",
                              hint="add the supervisor first (or import them in the same file)")
        if p.supervisor == p.id:
            raise ConfigError(f"{p.id}: a person cannot be their own supervisor")
        for ident in p.identities:
            if ":" not in ident or not ident.split(":", 1)[1]:
                raise ConfigError(f"{p.id}: identity {ident!r} must look like platform:account")


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in (value or "").split(";") if x.strip())


def read_people_csv(path: Path) -> list[Person]:
    """People from a CSV file with columns id,name,department,groups,supervisor,roles,identities.

    Lists are ``;``-separated; identities are ``platform:account``. Raises
    ImportFormatError naming the line of a bad row.
    """

    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFormatError(str(path), "", "a readable UTF-8 CSV file") from exc
    reader = csv.DictReader(text.splitlines())
    missing = {"id", "name"} - set(reader.fieldnames or ())
    if missing:
        raise ImportFormatError(str(path), "line 1", f"a header with columns {', '.join(sorted(missing))}")
    out = []
    width = len(reader.fieldnames or ())
    for number, row in enumerate(reader, start=2):
        if None in row or None in row.values():  # a short or long row: a truncated file would blank people
            found = sum(v is not None for k, v in row.items() if k is not None) + len(row.get(None) or ())
            raise ImportFormatError(str(path), f"line {number}", f"{width} fields as in the header, found {found}")
        pid = (row.get("id") or "").strip()
        try:
            check_person_id(pid)
        except ConfigError as exc:
            raise ImportFormatError(str(path), f"line {number}", "a valid person id in column 'id'") from exc
        out.append(Person(id=pid, name=(row.get("name") or "").strip(),
                          department=(row.get("department") or "").strip(), groups=_split(row.get("groups")),
                          supervisor=(row.get("supervisor") or "").strip(), roles=_split(row.get("roles")),
                          status=(row.get("status") or "active").strip() or "active",
                          identities=_split(row.get("identities"))))
    return out


def merge_people(current: Directory, incoming: Iterable[Person]) -> tuple[Person, ...]:
    """``current`` people updated by ``incoming`` (keys and TOTP enrolment are kept)."""
    people = list(current.people)
    index = {p.id: i for i, p in enumerate(people)}
    for person in incoming:
        if person.id in index:
            old = people[index[person.id]]
            people[index[person.id]] = replace(person, keys=old.keys, totp_enrolled=old.totp_enrolled,
                                               identities=tuple(dict.fromkeys([*old.identities,
                                                                               *person.identities])))
        else:
            index[person.id] = len(people)
            people.append(person)
    return tuple(people)


# --- admin operations (the ``people`` commands) ------------------------------------------

def _check_roles(people: Iterable[Person], policy: Any) -> None:
    """Raise ConfigError for a role the policy does not know, or roles that must be apart."""
    if policy is None:
        return
    for p in people:
        unknown = [r for r in p.roles if r not in policy.roles]
        if unknown:
            raise ConfigError(f"{p.id}: unknown role {unknown[0]!r}",
                              hint=f"roles of the policy: {', '.join(policy.roles)}")
        conflicts = policy.conflicting_roles(p.roles)
        if conflicts:
            raise ConfigError(f"{p.id}: roles {' + '.join(conflicts[0])} must be held by different people "
                              "(separation of duties)")


def add_people(archive: "Archive", people: Sequence[Person], *, signer: Signer, now: datetime,
               policy: Any = None, action: str = "add") -> Directory:
    """Add or update ``people`` in one signed, audited directory change.

    Existing keys and TOTP enrolment are kept. Raises ConfigError (unknown
    role, conflicting roles, unknown supervisor) or PolicyDenied (signer).
    """
    _check_roles(people, policy)
    store = DirectoryStore(archive)
    current = store.load()
    merged = merge_people(current, people)
    target = people[0].id if len(people) == 1 else f"{len(people)} people"
    return store.commit(merged, signer=signer, action=action, target=target,
                        details={"people": [p.id for p in people][:50]}, now=now)


def set_status(archive: "Archive", person_id: str, status: str, *, signer: Signer, now: datetime,
               reason: str = "") -> Directory:
    """Mark a person active or left (``people deactivate``). Signed and audited."""
    if status not in STATUSES:
        raise ConfigError(f"status must be one of {', '.join(STATUSES)}")
    store = DirectoryStore(archive)
    current = store.load()
    person = current.person(person_id)
    return store.commit(current.with_person(replace(person, status=status)), signer=signer,
                        action="deactivate" if status == "left" else "activate", target=person_id,
                        details={"reason": reason}, now=now)


def link_identity(archive: "Archive", person_id: str, identities: Sequence[str], *, signer: Signer,
                  now: datetime) -> Directory:
    """Add ``platform:account`` identities to a person. Signed and audited."""
    store = DirectoryStore(archive)
    current = store.load()
    person = current.person(person_id)
    merged = tuple(dict.fromkeys([*person.identities, *identities]))
    return store.commit(current.with_person(replace(person, identities=merged)), signer=signer,
                        action="link-identity", target=person_id, details={"identities": list(identities)}, now=now)
