"""Every path under an archive root, in one place (docs/archive-format.md, "Layout").

    >>> layout = Layout(Path("case-archive"))
    >>> layout.key_file.as_posix()
    'case-archive/keys/master.json'
    >>> layout.batch_dir(7).as_posix()
    'case-archive/batches/00000007'
    >>> layout.relative(layout.grant("G-1a2b"))
    'org/grants/G-1a2b.json'
    >>> [area.name for area in Layout.tracked()][:4]
    ['archive.toml', 'keys', 'batches', 'audit']

No other module joins a path onto an archive root: they ask the layout (``archive.layout``, or
``Layout(root)`` for a folder that is not opened as an archive) for the file or folder by name,
and ``tests/unit/core/test_layout.py`` checks that. :meth:`Layout.areas` enumerates the top-level
areas with what each holds and how it may change, so a backup (or a check) can list what an
archive is made of without knowing who writes it.

The vault knows no people and no policy: methods that take a person, session, request, grant,
case or bundle id use it as a file name only, and refuse one that is not a plain name (a
separator, ``..``), so no layout path leaves its root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from investigator.errors import ConfigError, IntegrityError
from investigator.vault.format import batch_dir_name

# --- names (archive-format.md, "Layout") -----------------------------------------------------

CONFIG_NAME = "archive.toml"
AUDIT_LOG_NAME = "log.jsonl"
AUDIT_CHECKPOINTS_NAME = "checkpoints.jsonl"
LOCK_NAME = ".lock"
MANIFEST_NAME = "manifest.json"
UNSIGNED_MANIFEST_NAME = "manifest.unsigned.json"
INDEX_NAME = "index.chk"
TAGS_NAME = "tags.jsonl"
SEARCHES_NAME = "searches.jsonl"
STATE_HEADS_NAME = "heads.jsonl"
# the journal of a restore still filling a folder (backup/restore.py writes it, verify tells a half-restored folder by it)
RESTORE_JOURNAL_NAME = ".investigator-restore.json"
DEMO_MARKER_NAME = "DEMO-ARCHIVE-NOT-FOR-REAL-DATA.txt"
DEMO_SESSION_NAME = "DEMO-SESSION.txt"
# top-level folders
KEYS = "keys"
BATCHES = "batches"
AUDIT = "audit"
ORG = "org"
CASES = "cases"
EXPORTS = "exports"
STAGING = "staging"
LOCKS = "locks"
DEMO_KEYS = "demo-keys"
DEMO_REPORTS = "reports"

# How a path may change (the "changes" column of archive-format.md).
WRITE_ONCE = "write-once"  # created whole, never changed
APPEND_ONLY = "append-only"  # lines are only added
REPLACED = "replaced"  # rewritten whole with an atomic rename
SCRATCH = "scratch"  # locks, staging, temporary files: never read as data, not worth a backup
MIXED = "mixed"  # an area whose entries change in different ways

_CASE_RE = re.compile(r"[^A-Za-z0-9._-]")


def case_folder(case: str) -> str:
    """A file-system-safe folder name for a case id (characters outside ``[A-Za-z0-9._-]`` become ``_``)."""
    name = _CASE_RE.sub("_", case.strip())
    if not name or name in {".", ".."}:
        raise ConfigError("a case needs a name to store tags under")
    return name


def _name(value: str, what: str) -> str:
    """``value`` if it is one plain file name; ConfigError for a separator, ``.``/``..``, NUL or nothing."""
    if not value or value in {".", ".."} or "/" in value or "\\" in value or "\x00" in value:
        raise ConfigError(f"{what} {value!r} is not a plain name")
    return value


# --- the enumeration ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """A kind of file inside an area: a relative POSIX pattern (``*`` one name, ``**`` any depth)."""

    pattern: str
    holds: str
    changes: str

    def matches(self, relative: str) -> bool:
        """Does the relative POSIX path ``relative`` fit this entry's pattern?"""
        return _match(tuple(PurePosixPath(relative).parts), tuple(self.pattern.split("/")))


@dataclass(frozen=True)
class Area:
    """A top-level file or folder of an archive root: what it holds and how its entries change."""

    name: str
    holds: str
    entries: tuple[Entry, ...]
    demo_only: bool = False

    @property
    def changes(self) -> str:
        """The one way its data entries change (scratch entries aside), or ``mixed``; ``scratch`` if all are."""
        kinds = {e.changes for e in self.entries if e.changes != SCRATCH}
        if not kinds:
            return SCRATCH
        return kinds.pop() if len(kinds) == 1 else MIXED

    @property
    def scratch(self) -> bool:
        """True for an area a backup skips (locks, staging)."""
        return self.changes == SCRATCH


# Left by an interrupted _fs.atomic_write anywhere (".<name>.<8 hex>.tmp"); never read.
TEMPORARY = Entry("**/.*.tmp", "temporary file of an interrupted atomic write", SCRATCH)

_AREAS: tuple[Area, ...] = (
    Area(CONFIG_NAME, "settings: id, format version, time zone, chunk size, public key",
         (Entry(CONFIG_NAME, "the settings, written last at creation; `investigator upgrade` rewrites its "
                "format_version", REPLACED),)),
    Area(KEYS, "master keys and wrapped keys kept outside the batches", (
        Entry("keys/master.json", "passphrase-protected master key versions and the archive signing key", REPLACED),
        Entry("keys/archive-signing.pub", "the archive's Ed25519 public key", WRITE_ONCE),
        Entry("keys/index-key.json", "wrapped key of the deduplication index", REPLACED),
        Entry("keys/totp-key.json", "wrapped key of the TOTP secrets", REPLACED),
        Entry("keys/rewrapped/*/*.json", "partition keys wrapped again after a rotation", REPLACED),
        Entry("keys/transitions.jsonl", "signed key transitions (custody migrations), each signed by both keys",
              APPEND_ONLY),
        Entry("keys/migration.json", "journal of a custody migration under way (gone once it finished)", REPLACED),
        Entry("keys/custody/*/master.json", "the key file of a later custody generation (file backend)", REPLACED),
        Entry("keys/master.lock", "lock file of key-file changes (period keys made or destroyed)", SCRATCH),
        Entry("keys/custody/*/master.lock", "lock file of a later generation's key-file changes", SCRATCH),
        Entry("keys/custody/*/index-key.json", "index key wrapped by a later custody generation", REPLACED),
        Entry("keys/custody/*/totp-key.json", "TOTP key wrapped by a later custody generation", REPLACED),
        Entry("keys/custody/*/rewrapped/*/*.json", "partition keys wrapped by a later custody generation", REPLACED),
        Entry("keys/**/consents/*.json", "consent file keys sealed by a later custody generation", REPLACED),
    )),
    Area(BATCHES, "committed ingest batches, one folder each", (
        Entry(f"batches/*/{MANIFEST_NAME}", "signed manifest", WRITE_ONCE),
        Entry(f"batches/*/{INDEX_NAME}", "encrypted deduplication index of a format-1 batch", WRITE_ONCE),
        Entry("batches/*/keys/*/*.json", "wrapped data keys of partitions the batch created", WRITE_ONCE),
        Entry("batches/*/*/*/*.chk", "encrypted chunk files (format 1: one per part; format 2: one per chunk)",
              WRITE_ONCE),
    )),
    Area(AUDIT, "hash-chained audit log and signed checkpoints", (
        Entry(f"audit/{AUDIT_LOG_NAME}", "audit entries", APPEND_ONLY),
        Entry(f"audit/{AUDIT_CHECKPOINTS_NAME}", "signed chain heads", APPEND_ONLY),
        Entry(f"audit/{LOCK_NAME}", "lock file of appenders", SCRATCH),
    )),
    Area(ORG, "signed state beside the vault: directory, policy, TOTP, sessions, requests, grants, consents", (
        Entry("org/directory/*.json", "signed directory versions", WRITE_ONCE),
        Entry("org/policy/*.toml", "policy versions as installed", WRITE_ONCE),
        Entry("org/policy/*.sig.json", "signature records of policy versions", WRITE_ONCE),
        Entry("org/totp/*.json", "sealed TOTP secret and state, one file per name", REPLACED),
        Entry(f"org/totp/{LOCK_NAME}", "lock file of TOTP checks", SCRATCH),
        Entry("org/sessions/*.json", "issued session records (replaced once, on revocation)", REPLACED),
        Entry("org/requests/*/request.json", "signed requests", WRITE_ONCE),
        Entry("org/requests/*/approvals/*.json", "signed approvals and rejections", WRITE_ONCE),
        Entry("org/requests/*/grant", "the id of the grant issued for a request", WRITE_ONCE),
        Entry("org/grants/*.json", "issued grants", WRITE_ONCE),
        Entry("org/revocations.jsonl", "signed grant revocations", APPEND_ONLY),
        Entry("org/consents/*.json", "signed consent records, each with its file's wrapped key", WRITE_ONCE),
        Entry("org/consents/*.bin", "encrypted consent files", WRITE_ONCE),
        Entry("org/holds/*.json", "signed legal holds (法律保全) and their signed releases", WRITE_ONCE),
        Entry("org/destroyed/*.json", "signed destruction records of shredded retention periods", WRITE_ONCE),
        Entry(f"org/state/{STATE_HEADS_NAME}", "signed state heads of org/ and cases/, chained, each pinned by a "
              "state.head audit entry (vault/statehead.py)", APPEND_ONLY),
        Entry(f"org/state/{LOCK_NAME}", "lock file of state-head writers", SCRATCH),
        Entry("org/locks/*.json", "account locks by the circuit breaker (熔断, signed by the archive key) and their "
              "unlocks (signed by an admin, with a reason)", WRITE_ONCE),
    )),
    Area(CASES, "per-case tags, notes and saved searches", (
        Entry(f"cases/*/{TAGS_NAME}", "tag and note entries of a case", APPEND_ONLY),
        Entry(f"cases/*/{SEARCHES_NAME}", "saved searches of a case (parameters only, never results)", APPEND_ONLY),
        Entry(f"cases/*/{LOCK_NAME}", "lock file of tag writers", SCRATCH),
    )),
    Area(EXPORTS, "held evidence bundles", (
        Entry("exports/held/*.held", "a bundle the circuit breaker held, encrypted (access/held.py)", WRITE_ONCE),
        Entry("exports/held/*.held.partial", "a held bundle being written (replaced by the .held)", SCRATCH),
        Entry("exports/held/*.zip", "a held bundle from before they were encrypted (plain)", WRITE_ONCE),
    )),
    Area(STAGING, "batches being written; removed by the next writer", (
        Entry("staging/**", "an uncommitted batch", SCRATCH),
    )),
    Area(LOCKS, "writer lock", (
        Entry("locks/write.lock", "lock file serializing writers", SCRATCH),
        Entry("locks/staging.lock", "lock file of clients staging through the key server (held shared; the "
              "staging sweep of an embedded ingest waits for none and skips while one is held)", SCRATCH),
    )),
    Area(RESTORE_JOURNAL_NAME, "the journal of a restore still filling this folder (gone when it finished)",
         (Entry(RESTORE_JOURNAL_NAME, "target, snapshot and progress of `investigator backup restore`; verify reports "
                "the folder as an unfinished restore while it exists", SCRATCH),)),
    Area(DEMO_MARKER_NAME, "DEMO ONLY: marks a demo archive, with its public passphrase",
         (Entry(DEMO_MARKER_NAME, "the marker", WRITE_ONCE),), demo_only=True),
    Area(DEMO_SESSION_NAME, "DEMO ONLY: the demo operator's current session token",
         (Entry(DEMO_SESSION_NAME, "the token, rewritten when expired", REPLACED),), demo_only=True),
    Area(DEMO_KEYS, "DEMO ONLY: personal key files of the demo people",
         (Entry("demo-keys/*.key", "a personal key file", WRITE_ONCE),), demo_only=True),
    Area(DEMO_REPORTS, "DEMO ONLY: the demo's sealed report notebooks and their HTML copies", (
        Entry("reports/*/*.ipynb", "a sealed report (review and release rewrite it)", REPLACED),
        Entry("reports/*/*.html", "the reviewer's HTML copy", REPLACED),
    ), demo_only=True),
)


# The decision state a signed state head covers (vault/statehead.py; docs/archive-format.md, "State heads"):
# component -> (patterns relative to the root, how its files change). Every file is hashed on each check,
# so only small files belong here; a component whose folder does not exist yet simply has no files.
STATE_COMPONENTS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("directory", ("org/directory/*.json",), WRITE_ONCE),
    ("policy", ("org/policy/*.toml", "org/policy/*.sig.json"), WRITE_ONCE),
    ("requests", ("org/requests/*/request.json", "org/requests/*/grant"), WRITE_ONCE),
    ("approvals", ("org/requests/*/approvals/*.json",), WRITE_ONCE),  # approvals and rejections
    ("grants", ("org/grants/*.json",), WRITE_ONCE),
    ("revocations", ("org/revocations.jsonl",), APPEND_ONLY),
    ("consents", ("org/consents/*.json",), REPLACED),  # the record's sealed key is rewrapped by a key rotation
    ("consent_files", ("org/consents/*.bin",), WRITE_ONCE),
    ("holds", ("org/holds/*.json",), WRITE_ONCE),
    ("destroyed", ("org/destroyed/*.json",), WRITE_ONCE),
    ("locks", ("org/locks/*.json",), WRITE_ONCE),
    ("sessions", ("org/sessions/*.json",), REPLACED),
    ("totp", ("org/totp/*.json",), REPLACED),
    ("tags", (f"cases/*/{TAGS_NAME}",), APPEND_ONLY),
    ("searches", (f"cases/*/{SEARCHES_NAME}",), APPEND_ONLY),
)


def _match(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(parts[i:], rest) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and _match(parts[1:], rest)


# --- one batch's files ---------------------------------------------------------------------------

def object_name(prefix: str, relative: str) -> str:
    """The object name of an archive path under an object-store ``prefix`` (vault/remote.py): ``prefix/relative``.

    The archive's layout on a bucket is its layout on disk, with ``/`` joins; ``relative`` is
    checked as :meth:`Layout.resolve` checks it (IntegrityError if it would leave the prefix).
    """
    pure = PurePosixPath(relative)
    if not pure.parts or pure.is_absolute() or ".." in pure.parts or "\\" in relative or "\x00" in relative:
        raise IntegrityError("path does not stay inside the archive", path=relative)
    return "/".join(p for p in (*prefix.strip("/").split("/"), *pure.parts) if p)


@dataclass(frozen=True)
class BatchFolder:
    """The files of one batch, where it is committed (``batches/NNNNNNNN``) or staged (``staging/<id>``)."""

    folder: Path

    @property
    def manifest(self) -> Path:
        """The signed manifest (``manifest.json``)."""
        return self.folder / MANIFEST_NAME

    @property
    def index(self) -> Path:
        """The encrypted deduplication index of the batch (``index.chk``)."""
        return self.folder / INDEX_NAME

    @property
    def unsigned_manifest(self) -> Path:
        """Staging only: the manifest body an ingest client hands the key server to check and sign."""
        return self.folder / UNSIGNED_MANIFEST_NAME

    def data_key(self, kind: str, partition: str) -> Path:
        """The wrapped data key of a partition this batch created (``keys/<kind>/<day>.json``)."""
        return self.folder / "keys" / _name(kind, "kind") / f"{_name(partition, 'partition')}.json"

    def chunk_part(self, kind: str, partition: str, chunk: str, part: str) -> Path:
        """One encrypted part of one time chunk, format 1 (``<kind>/<day>/<HHMMSS>.<part>.chk``)."""
        return (self.folder / _name(kind, "kind") / _name(partition, "partition")
                / f"{_name(chunk, 'chunk')}.{_name(part, 'part')}.chk")

    def chunk_file(self, kind: str, partition: str, chunk: str) -> Path:
        """The one encrypted file of one time chunk, format 2 (``<kind>/<day>/<HHMMSS>.chk``)."""
        return self.folder / _name(kind, "kind") / _name(partition, "partition") / f"{_name(chunk, 'chunk')}.chk"


# --- the layout ----------------------------------------------------------------------------------

_GENERATION_RE = re.compile(r"^[1-9][0-9]{0,5}$")


@dataclass(frozen=True)
class Layout:
    """Every file and folder under one archive root, by name (nothing is read or made here).

    ``generation`` is the custody generation whose wrapped keys the key paths
    name: "" (or "1") for the archive's first custody (``keys/`` itself); after
    ``investigator keys migrate``, "2", "3" ... (``keys/custody/<n>/``). An
    archive passes the generation its ``[custody]`` table names.
    """

    root: Path
    generation: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        if self.generation == "1":
            object.__setattr__(self, "generation", "")
        if self.generation and not _GENERATION_RE.match(self.generation):
            raise ConfigError(f"custody generation {self.generation!r} is not a number")

    def with_generation(self, generation: str) -> "Layout":
        """This root's layout for the wrapped keys of custody ``generation``."""
        return Layout(self.root, generation)

    # --- the enumeration ---------------------------------------------------------------

    @staticmethod
    def areas() -> tuple[Area, ...]:
        """Every top-level area of an archive root (scratch and demo-only ones too), in layout order."""
        return _AREAS

    @staticmethod
    def tracked() -> tuple[Area, ...]:
        """The areas a backup copies: all but the scratch ones (staging, locks)."""
        return tuple(a for a in _AREAS if not a.scratch)

    def area_path(self, area: Area) -> Path:
        """Where ``area`` is under this root."""
        return self.root / area.name

    def area_of(self, path: Path) -> Area | None:
        """The area a path under this root belongs to, or None (outside the root, or not a declared area)."""
        relative = self._relative_parts(path)
        return next((a for a in _AREAS if relative and relative[0] == a.name), None)

    def entry_of(self, path: Path) -> Entry | None:
        """The declared entry a file under this root fits (temporary files too), or None."""
        area = self.area_of(path)
        if area is None:
            return None
        relative = self.relative(path)
        return next((e for e in (*area.entries, TEMPORARY) if e.matches(relative)), None)

    def contains(self, path: Path) -> bool:
        """True for a path inside this root (not the root itself)."""
        return bool(self._relative_parts(path))

    def relative(self, path: Path) -> str:
        """A path under this root as the relative POSIX text manifests and messages use."""
        return Path(path).relative_to(self.root).as_posix()

    def state_files(self) -> dict[str, list[Path]]:
        """The files of each :data:`STATE_COMPONENTS` component that exist now, sorted (hidden and temporary skipped)."""
        out: dict[str, list[Path]] = {}
        for name, patterns, _ in STATE_COMPONENTS:
            found: set[Path] = set()
            for pattern in patterns:
                found.update(p for p in self.root.glob(pattern) if not p.name.startswith(".") and p.is_file())
            out[name] = sorted(found)
        return out

    def resolve(self, relative: str) -> Path:
        """The path of a relative POSIX path recorded in a manifest. IntegrityError if it would leave the root."""
        pure = PurePosixPath(relative)
        if not pure.parts or pure.is_absolute() or ".." in pure.parts or "\\" in relative or "\x00" in relative:
            raise IntegrityError("path does not stay inside the archive", path=relative)
        return self.root.joinpath(*pure.parts)

    def _relative_parts(self, path: Path) -> tuple[str, ...]:
        try:
            return Path(path).relative_to(self.root).parts
        except ValueError:
            return ()

    # --- settings and keys ---------------------------------------------------------------

    @property
    def config(self) -> Path:
        """The settings file, ``archive.toml`` (written last: until it exists the folder is no archive)."""
        return self.root / CONFIG_NAME

    @property
    def keys_dir(self) -> Path:
        """``keys/``: the master key file and the wrapped keys kept outside the batches."""
        return self.root / KEYS

    @property
    def wrapped_keys_dir(self) -> Path:
        """Where this custody generation keeps its keys: ``keys/`` (the first), ``keys/custody/<n>/`` later."""
        return self.keys_dir / "custody" / self.generation if self.generation else self.keys_dir

    @property
    def key_file(self) -> Path:
        """``keys/master.json``: passphrase-protected master key versions and the archive signing key.

        (``keys/custody/<n>/master.json`` for a later custody generation on the file backend.)
        """
        return self.wrapped_keys_dir / "master.json"

    @property
    def transitions(self) -> Path:
        """``keys/transitions.jsonl``: the signed key transitions (``vault/keychain.py``), one per line."""
        return self.keys_dir / "transitions.jsonl"

    @property
    def migration_journal(self) -> Path:
        """``keys/migration.json``: the journal of a custody migration under way (``custody/migration.py``)."""
        return self.keys_dir / "migration.json"

    def consent_key(self, name: str) -> Path:
        """``<generation's keys>/consents/<CONSENT-id>.json``: a consent file's key sealed by a later custody.

        A consent's record holds the key its first custody sealed; a migration
        seals it again here, and readers take this copy when it exists.
        """
        return self.wrapped_keys_dir / "consents" / f"{_name(name, 'consent id')}.json"

    @property
    def signing_public_key(self) -> Path:
        """``keys/archive-signing.pub``: the archive's base64 Ed25519 public key."""
        return self.keys_dir / "archive-signing.pub"

    @property
    def index_key(self) -> Path:
        """``keys/index-key.json``: the wrapped key of the deduplication index."""
        return self.wrapped_keys_dir / "index-key.json"

    @property
    def totp_key(self) -> Path:
        """``keys/totp-key.json``: the wrapped key of the sealed TOTP secrets (after the first enrolment)."""
        return self.wrapped_keys_dir / "totp-key.json"

    @property
    def fixed_wrapped_keys(self) -> tuple[Path, ...]:
        """The wrapped keys kept in ``keys/`` itself, which a rotation rewraps in place."""
        return (self.index_key, self.totp_key)

    @property
    def rewrapped_dir(self) -> Path:
        """``keys/rewrapped/``: partition keys wrapped again after a master-key rotation."""
        return self.wrapped_keys_dir / "rewrapped"

    def rewrapped_key(self, kind: str, partition: str, seq: int | None = None) -> Path:
        """``keys/rewrapped/<kind>/<day>.json``: a partition's first data key, rewrapped; with ``seq``,
        ``keys/rewrapped/<kind>/<day>.<NNNNNNNN>.json``: the data key batch ``seq`` made for it."""
        suffix = f".{batch_dir_name(seq)}" if seq is not None else ""
        return self.rewrapped_dir / _name(kind, "kind") / f"{_name(partition, 'partition')}{suffix}.json"

    # --- batches, staging, locks ---------------------------------------------------------

    @property
    def batches_dir(self) -> Path:
        """``batches/``: the committed batches."""
        return self.root / BATCHES

    def batch_dir(self, seq: int) -> Path:
        """``batches/NNNNNNNN``: the folder of committed batch ``seq``."""
        return self.batches_dir / batch_dir_name(seq)

    def batch(self, seq: int) -> BatchFolder:
        """The files of committed batch ``seq``."""
        return BatchFolder(self.batch_dir(seq))

    def manifest(self, seq: int) -> Path:
        """``batches/NNNNNNNN/manifest.json``: the signed manifest of batch ``seq``."""
        return self.batch(seq).manifest

    @property
    def staging_dir(self) -> Path:
        """``staging/``: batches being written (never read; removed by the next writer)."""
        return self.root / STAGING

    def staged_batch(self, batch_id: str) -> BatchFolder:
        """``staging/<batch id>``: the files of a batch while it is written."""
        return BatchFolder(self.staging_dir / _name(batch_id, "batch id"))

    @property
    def locks_dir(self) -> Path:
        """``locks/``: the writer lock's folder."""
        return self.root / LOCKS

    @property
    def write_lock(self) -> Path:
        """``locks/write.lock``: the flock serializing writers (ingest, rotation, retirement)."""
        return self.locks_dir / "write.lock"

    @property
    def restore_journal(self) -> Path:
        """``.investigator-restore.json``: present while ``investigator backup restore`` is filling this folder."""
        return self.root / RESTORE_JOURNAL_NAME

    @property
    def staging_lock(self) -> Path:
        """``locks/staging.lock``: held shared by clients staging through the key server, so that the staging
        sweep of an embedded ingest never removes a batch being written."""
        return self.locks_dir / "staging.lock"

    @property
    def created_dirs(self) -> tuple[Path, ...]:
        """The folders a new archive starts with."""
        return (self.keys_dir, self.batches_dir, self.audit_dir, self.staging_dir, self.locks_dir)

    # --- audit ---------------------------------------------------------------------------

    @property
    def audit_dir(self) -> Path:
        """``audit/``: the audit log's folder."""
        return self.root / AUDIT

    @property
    def audit_log(self) -> Path:
        """``audit/log.jsonl``: the hash-chained audit entries."""
        return self.audit_dir / AUDIT_LOG_NAME

    @property
    def audit_checkpoints(self) -> Path:
        """``audit/checkpoints.jsonl``: the signed chain heads."""
        return self.audit_dir / AUDIT_CHECKPOINTS_NAME

    @property
    def audit_lock(self) -> Path:
        """``audit/.lock``: the flock of audit appenders."""
        return self.audit_dir / LOCK_NAME

    # --- org/ ----------------------------------------------------------------------------

    @property
    def org_dir(self) -> Path:
        """``org/``: the signed state written beside the vault by the authority code."""
        return self.root / ORG

    @property
    def directory_dir(self) -> Path:
        """``org/directory/``: the signed directory versions."""
        return self.org_dir / "directory"

    def directory_version(self, version: int) -> Path:
        """``org/directory/NNNNNN.json``: directory version ``version``."""
        return self.directory_dir / f"{version:06d}.json"

    @property
    def policy_dir(self) -> Path:
        """``org/policy/``: the installed policy versions and their signature records."""
        return self.org_dir / "policy"

    def policy_text(self, version: int) -> Path:
        """``org/policy/NNNNNN.toml``: policy version ``version``, exactly as installed."""
        return self.policy_dir / f"{version:06d}.toml"

    def policy_signature(self, version: int) -> Path:
        """``org/policy/NNNNNN.sig.json``: the signature record of policy version ``version``."""
        return self.policy_dir / f"{version:06d}.sig.json"

    @property
    def totp_dir(self) -> Path:
        """``org/totp/``: sealed TOTP secrets and their state."""
        return self.org_dir / "totp"

    def totp_state(self, name: str) -> Path:
        """``org/totp/<name>.json``: one sealed TOTP secret and its state."""
        return self.totp_dir / f"{_name(name, 'TOTP name')}.json"

    @property
    def totp_lock(self) -> Path:
        """``org/totp/.lock``: the flock of TOTP checks."""
        return self.totp_dir / LOCK_NAME

    @property
    def sessions_dir(self) -> Path:
        """``org/sessions/``: records of issued session tokens."""
        return self.org_dir / "sessions"

    def session(self, sid: str) -> Path:
        """``org/sessions/<sid>.json``: one session's body and when it was revoked."""
        return self.sessions_dir / f"{_name(sid, 'session id')}.json"

    @property
    def requests_dir(self) -> Path:
        """``org/requests/``: one folder per retrieval request."""
        return self.org_dir / "requests"

    def request_dir(self, request_id: str) -> Path:
        """``org/requests/<REQ-id>/``: one request's folder."""
        return self.requests_dir / _name(request_id, "request id")

    def request_file(self, request_id: str) -> Path:
        """``org/requests/<REQ-id>/request.json``: the signed request."""
        return self.request_dir(request_id) / "request.json"

    def approvals_dir(self, request_id: str) -> Path:
        """``org/requests/<REQ-id>/approvals/``: the signed approvals and rejections of a request."""
        return self.request_dir(request_id) / "approvals"

    def approval(self, request_id: str, number: int, name: str) -> Path:
        """``org/requests/<REQ-id>/approvals/NN-<name>.json``: the ``number``-th decision, by ``name``."""
        return self.approvals_dir(request_id) / f"{number:02d}-{_name(name, 'approver')}.json"

    def request_grant(self, request_id: str) -> Path:
        """``org/requests/<REQ-id>/grant``: one line, the id of the grant issued for the request."""
        return self.request_dir(request_id) / "grant"

    @property
    def grants_dir(self) -> Path:
        """``org/grants/``: the issued grants."""
        return self.org_dir / "grants"

    def grant(self, grant_id: str) -> Path:
        """``org/grants/<G-id>.json``: one issued grant."""
        return self.grants_dir / f"{_name(grant_id, 'grant id')}.json"

    @property
    def revocations(self) -> Path:
        """``org/revocations.jsonl``: signed grant revocations, one per line."""
        return self.org_dir / "revocations.jsonl"

    @property
    def consent_dir(self) -> Path:
        """``org/consents/``: registered consent records and their encrypted files."""
        return self.org_dir / "consents"

    def consent(self, name: str) -> Path:
        """``org/consents/<CONSENT-id>.json``: one signed consent record."""
        return self.consent_dir / f"{_name(name, 'consent id')}.json"

    def consent_file(self, name: str) -> Path:
        """``org/consents/<CONSENT-id>.bin``: the encrypted file of one consent record."""
        return self.consent_dir / f"{_name(name, 'consent id')}.bin"

    @property
    def holds_dir(self) -> Path:
        """``org/holds/``: signed legal holds and their releases."""
        return self.org_dir / "holds"

    def hold(self, hold_id: str) -> Path:
        """``org/holds/<HOLD-id>.json``: one signed legal hold."""
        return self.holds_dir / f"{_name(hold_id, 'hold id')}.json"

    def hold_release(self, hold_id: str) -> Path:
        """``org/holds/<HOLD-id>.release.json``: the signed release of a legal hold."""
        return self.holds_dir / f"{_name(hold_id, 'hold id')}.release.json"

    @property
    def destroyed_dir(self) -> Path:
        """``org/destroyed/``: signed destruction records, one per shredded retention period."""
        return self.org_dir / "destroyed"

    def destruction_record(self, period: str) -> Path:
        """``org/destroyed/<period>.json``: the signed destruction record of a shredded period (``2026Q1``)."""
        return self.destroyed_dir / f"{_name(period, 'period')}.json"

    @property
    def account_locks_dir(self) -> Path:
        """``org/locks/``: account locks of the circuit breaker and their unlocks (authority/locks.py)."""
        return self.org_dir / "locks"

    def account_lock(self, record_id: str) -> Path:
        """``org/locks/<LOCK-id|UNLOCK-id>.json``: one signed lock or unlock record."""
        return self.account_locks_dir / f"{_name(record_id, 'lock record id')}.json"

    @property
    def state_dir(self) -> Path:
        """``org/state/``: the signed state heads (vault/statehead.py)."""
        return self.org_dir / "state"

    @property
    def state_heads(self) -> Path:
        """``org/state/heads.jsonl``: the signed, chained state heads, one per line (append-only)."""
        return self.state_dir / STATE_HEADS_NAME

    @property
    def state_lock(self) -> Path:
        """``org/state/.lock``: the flock of state-head writers."""
        return self.state_dir / LOCK_NAME

    @property
    def key_file_lock(self) -> Path:
        """``keys/master.lock``: the flock of key-file changes (this custody generation's)."""
        return self.wrapped_keys_dir / "master.lock"

    # --- cases/ and exports/ ------------------------------------------------------------------

    @property
    def cases_dir(self) -> Path:
        """``cases/``: one folder per case."""
        return self.root / CASES

    def case_dir(self, case: str) -> Path:
        """``cases/<case>/``: a case's folder (the id made file-system safe by :func:`case_folder`)."""
        return self.cases_dir / case_folder(case)

    def case_tags(self, case: str) -> Path:
        """``cases/<case>/tags.jsonl``: a case's tags and notes."""
        return self.case_dir(case) / TAGS_NAME

    def case_searches(self, case: str) -> Path:
        """``cases/<case>/searches.jsonl``: a case's saved searches (parameters only)."""
        return self.case_dir(case) / SEARCHES_NAME

    def case_lock(self, case: str) -> Path:
        """``cases/<case>/.lock``: the flock of a case's tag writers."""
        return self.case_dir(case) / LOCK_NAME

    @property
    def exports_dir(self) -> Path:
        """``exports/``: exports kept inside the archive."""
        return self.root / EXPORTS

    @property
    def held_dir(self) -> Path:
        """``exports/held/``: evidence bundles the circuit breaker held."""
        return self.exports_dir / "held"

    def held_bundle(self, bundle_id: str) -> Path:
        """``exports/held/<B-id>.held``: one held bundle, encrypted (access/held.py)."""
        return self.held_dir / f"{_name(bundle_id, 'bundle id')}.held"

    def legacy_held_bundle(self, bundle_id: str) -> Path:
        """``exports/held/<B-id>.zip``: a held bundle from before they were encrypted (plain; still read)."""
        return self.held_dir / f"{_name(bundle_id, 'bundle id')}.zip"

    # --- DEMO ONLY ------------------------------------------------------------------------

    @property
    def demo_marker(self) -> Path:
        """DEMO ONLY: ``DEMO-ARCHIVE-NOT-FOR-REAL-DATA.txt``, which marks a demo archive."""
        return self.root / DEMO_MARKER_NAME

    @property
    def demo_session(self) -> Path:
        """DEMO ONLY: ``DEMO-SESSION.txt``, the demo operator's current session token."""
        return self.root / DEMO_SESSION_NAME

    @property
    def demo_keys_dir(self) -> Path:
        """DEMO ONLY: ``demo-keys/``, the demo people's personal key files."""
        return self.root / DEMO_KEYS

    @property
    def demo_reports_dir(self) -> Path:
        """DEMO ONLY: ``reports/``, the output folder of the demo's sealed report."""
        return self.root / DEMO_REPORTS
