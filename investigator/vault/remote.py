"""An archive in its vault layout on an object store (S3-compatible, or a folder URL), read in place.

    >>> store = ObjectStore("s3://evidence/case-archive", endpoint="https://s3.example",     # doctest: +SKIP
    ...                     access_key_id="reader", secret_access_key="...")
    >>> publish(Archive.open("case-archive"), store)          # the custodian's folder -> the bucket  # doctest: +SKIP
    >>> remote = RemoteArchive.open(store)                      # manifests verified on first use     # doctest: +SKIP
    >>> remote.open_part(entry, "content", key)                 # one chunk part, fetched and decrypted  # doctest: +SKIP

The objects are the archive's files under ``<prefix>/``, named as on disk (docs/archive-format.md,
"Layout"; :func:`investigator.vault.layout.object_name` joins them), so a worker reads a chunk
with one GET and nothing is unpacked: this is not the backup's content-addressed target
(backup/s3.py). What is published is what a reader needs and nothing that is plaintext:
``archive.toml``, the signing public key and key transitions, and each committed batch's
encrypted chunk parts, its manifest last. The authority's state (org/, audit/, the master and
wrapped keys) stays with the key server's folder; a :class:`RemoteArchive` is read-only (its
``audit`` refuses appends, it has no write lock).

A reader trusts nothing the store says: the settings give the genesis signing key, the key
chain is verified, every manifest's signature and chain link is verified as
:meth:`Archive.manifests` does, and every chunk part must match its manifest's SHA-256 and
authenticate under its key with the archive id, batch, kind, partition, chunk and part as
associated data. A store can withhold or fail; it cannot make a reader accept other bytes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from investigator import _crypto
from investigator.errors import ArchiveError, ConfigError, IntegrityError, InvestigatorError
from investigator.vault.audit import AuditLog
from investigator.vault.config import ArchiveConfig, parse_custody_table
from investigator.vault.format import batch_dir_name
from investigator.vault.keychain import KeyChain
from investigator.vault.layout import CONFIG_NAME, MANIFEST_NAME, Layout, object_name
from investigator.vault.manifest import ChunkEntry, Manifest
from investigator.vault.store import Archive

# The layout's relative names, asked of a layout on a placeholder root (only the layout names paths).
_NAMES = Layout(Path("/archive"))
_STORES: dict[tuple[str, str, str], Any] = {}  # one client per store per process (obstore clients are thread-safe)
_STORES_LOCK = threading.Lock()


@dataclass(frozen=True)
class ObjectStore:
    """Where an archive's objects are: ``s3://bucket/prefix`` (with an endpoint and credentials) or ``file:///folder``.

    Plain values, so it pickles to Dask workers; the repr shows no secret. ``endpoint`` is an
    S3-compatible server's URL (AWS S3 when absent); plain ``http://`` is allowed only to a
    loopback endpoint (tests, a local SeaweedFS). Credentials are passed in (the edge reads
    them); give readers credentials that can only read.
    """

    url: str
    endpoint: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    region: str = "us-east-1"

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("s3", "file") or (parts.scheme == "s3" and not parts.netloc):
            raise ConfigError(f"an archive on an object store is an s3://bucket/prefix or file:///folder URL, "
                              f"not {self.url!r}")
        if self.endpoint and self.endpoint.startswith("http://"):
            host = urlsplit(self.endpoint).hostname or ""
            if host not in ("127.0.0.1", "localhost", "::1"):
                raise ConfigError("an object store endpoint over plain http is allowed on loopback only",
                                  hint="use https:// for a store on another host")

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def bucket(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def prefix(self) -> str:
        """The folder of the archive in the bucket (``s3``), or "" (``file``: the store is the folder)."""
        return urlsplit(self.url).path.strip("/") if self.scheme == "s3" else ""

    def _client(self) -> Any:
        import obstore.store  # third-party, heavy: only where an object store is used

        cache_key = (self.url, self.endpoint or "", self.access_key_id or "")
        with _STORES_LOCK:
            client = _STORES.get(cache_key)
            if client is None:
                if self.scheme == "file":
                    folder = Path(urlsplit(self.url).path)
                    folder.mkdir(parents=True, exist_ok=True)
                    client = obstore.store.LocalStore(prefix=folder)
                else:
                    options: dict[str, Any] = {"region": self.region}
                    if self.endpoint:
                        options["endpoint"] = self.endpoint
                    if self.access_key_id:
                        options["access_key_id"] = self.access_key_id
                        options["secret_access_key"] = self.secret_access_key or ""
                    client = obstore.store.S3Store(
                        self.bucket, virtual_hosted_style_request=False,
                        client_options={"allow_http": bool(self.endpoint and self.endpoint.startswith("http://"))},
                        **options)
                _STORES[cache_key] = client
            return client

    def name(self, relative: str) -> str:
        return object_name(self.prefix, relative)

    def get(self, relative: str) -> bytes:
        """The bytes of the archive file ``relative``. IntegrityError (naming the path only) if absent or unreadable."""
        import obstore

        try:
            return bytes(obstore.get(self._client(), self.name(relative)).bytes())
        except FileNotFoundError as exc:
            raise IntegrityError("missing from the object store", path=relative) from exc
        except Exception as exc:  # obstore's errors carry the request; say only which object
            raise IntegrityError(f"unreadable on the object store ({type(exc).__name__})", path=relative) from exc

    def exists(self, relative: str) -> bool:
        import obstore

        try:
            obstore.head(self._client(), self.name(relative))
            return True
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise IntegrityError(f"unreadable on the object store ({type(exc).__name__})", path=relative) from exc

    def put(self, relative: str, data: bytes) -> None:
        import obstore

        try:
            obstore.put(self._client(), self.name(relative), data)
        except Exception as exc:
            raise ArchiveError(f"{relative}: the object store refused the write ({type(exc).__name__})") from exc

    def folders(self, relative: str) -> list[str]:
        """The names of the folders directly under the archive folder ``relative``."""
        import obstore

        try:
            listed = obstore.list_with_delimiter(self._client(), self.name(relative) + "/")
        except Exception as exc:
            raise IntegrityError(f"unlistable on the object store ({type(exc).__name__})", path=relative) from exc
        return sorted(PurePosixPath(p.rstrip("/")).name for p in listed["common_prefixes"])

    def sizes(self) -> dict[str, int]:
        """Object name -> size of every object under the prefix (what :func:`publish` may skip)."""
        import obstore

        out: dict[str, int] = {}
        try:
            for batch in obstore.list(self._client(), prefix=self.prefix or None):
                for meta in batch:
                    out[str(meta["path"])] = int(meta["size"])
        except Exception as exc:
            raise ArchiveError(f"the object store refused the listing ({type(exc).__name__})") from exc
        return out


class _ReadOnlyAudit(AuditLog):
    """The audit of a remote archive: none. Appends happen where the authority is (the key server's folder)."""

    def append(self, *args: Any, **kwargs: Any) -> Any:
        raise ArchiveError("an archive on an object store is read-only: audit entries go to the key server's folder")

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        raise ArchiveError("an archive on an object store is read-only")


class RemoteArchive(Archive):
    """A read-only :class:`Archive` whose files are objects on a store, read in place (see the module docstring).

    Open with :meth:`open`. The manifests, chunk entries and :meth:`open_part` work as on a
    folder; the key chain is the one read at open (open again to see a later custody migration).
    """

    def __init__(self, store: ObjectStore, config: ArchiveConfig, chain: KeyChain) -> None:
        super().__init__(Path("/nonexistent-remote-archive"), config)
        self.store = store
        self._chain = chain
        self.audit = _ReadOnlyAudit(Path("/nonexistent-remote-archive/audit"))

    def __repr__(self) -> str:
        return f"RemoteArchive(url={self.store.url!r}, id={self.config.archive_id!r})"

    @classmethod
    def open(cls, root: Any) -> "RemoteArchive":
        """Open the archive at ``root`` (an :class:`ObjectStore`): settings read, key chain verified.

        Raises ArchiveError if no archive is there, IntegrityError for a key chain that does not verify.
        """
        if not isinstance(root, ObjectStore):
            raise ConfigError("RemoteArchive.open takes an ObjectStore")
        store = root
        where = Path(store.url) / CONFIG_NAME
        try:
            raw = store.get(CONFIG_NAME)
        except IntegrityError as exc:
            raise ArchiveError(f"{store.url}: not an investigator archive (no {CONFIG_NAME})") from exc
        config = ArchiveConfig.parse(raw, where)
        transitions = _NAMES.relative(_NAMES.transitions)
        data = store.get(transitions) if store.exists(transitions) else b""
        chain = KeyChain.parse(data, genesis=_crypto.VerifyKey.from_b64(config.signing_public_key),
                               archive_id=config.archive_id)
        if chain.custody is not None:
            config = replace(config, custody=parse_custody_table(chain.custody, Path(transitions)))
        return cls(store, config, chain)

    def signing_keys(self) -> KeyChain:
        return self._chain

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        raise ArchiveError("an archive on an object store is read-only")
        yield  # pragma: no cover

    def discard_staging(self) -> list[str]:
        raise ArchiveError("an archive on an object store is read-only")

    def batch_names(self) -> list[str]:
        """Committed batches: folders under ``batches/`` whose manifest is there (published last), in order."""
        known = self._manifest_cache[0] if self._manifest_cache else ()
        names = list(known)
        batches = _NAMES.relative(_NAMES.batches_dir)
        for position, name in enumerate(self.store.folders(batches)[len(known):], start=len(known) + 1):
            if name != batch_dir_name(position) or not self.store.exists(f"{batches}/{name}/{MANIFEST_NAME}"):
                break  # out of sequence (verification names it) or still being published: stop here
            names.append(name)
        return names

    def _load_manifest(self, seq: int) -> Manifest:
        relative = _NAMES.relative(_NAMES.manifest(seq))
        return Manifest.parse(self.store.get(relative), what=relative)

    def read_part_bytes(self, entry: ChunkEntry, part: str) -> bytes:
        relative, digest = entry.part(part)
        data = self.store.get(relative)
        if _crypto.sha256_hex(data) != digest:
            raise IntegrityError("chunk file does not match its manifest", path=relative)
        return data


@dataclass(frozen=True)
class Published:
    """What :func:`publish` did: objects written and skipped (already there), bytes written."""

    written: int
    skipped: int
    bytes: int


def publish(archive: Archive, store: ObjectStore, *, actor: str = "publisher") -> Published:
    """Copy what a reader needs of ``archive`` to ``store``, in the vault layout; again later for new batches.

    Settings, signing public key and key transitions (rewritten each time), then per committed
    batch its chunk parts and, last, its manifest (write-once: an object already there with the
    manifest's size is skipped). Never org/, audit/ or any key but public ones. Audited as
    ``publish`` (a copy of the archive leaves it), with ``actor``; a failure as ``publish`` / error.
    Raises ArchiveError when the store holds another archive, IntegrityError for a chunk file that
    does not match its manifest (nothing unverified is published).
    """
    try:
        done = _publish(archive, store)
    except InvestigatorError as exc:
        archive.audit.append(actor, "publish", store.url, {"reason": str(exc)}, outcome="error")
        raise
    archive.audit.append(actor, "publish", store.url,
                         {"written": done.written, "skipped": done.skipped, "bytes": done.bytes})
    return done


def _publish(archive: Archive, store: ObjectStore) -> Published:
    layout = archive.layout
    if store.exists(CONFIG_NAME):
        there = ArchiveConfig.parse(store.get(CONFIG_NAME), Path(store.url) / CONFIG_NAME)
        if there.archive_id != archive.archive_id:
            raise ArchiveError(f"{store.url} holds another archive ({there.archive_id})")
    present = store.sizes()
    written = skipped = sent = 0

    def copy(relative: str, data: bytes, *, once: bool) -> None:
        nonlocal written, skipped, sent
        if once and present.get(store.name(relative)) == len(data):
            skipped += 1
            return
        store.put(relative, data)
        written += 1
        sent += len(data)

    for manifest in archive.manifests():  # verified: only signed, chained batches leave
        for entry in manifest.chunks:
            # one file per part (format 1) or one per chunk (format 2, its parts are segments): each copied once
            first_part = {path: part for part, path, _ in reversed(entry.parts)}
            for relative, _ in entry.files:
                if present.get(store.name(relative)) is not None:
                    skipped += 1
                    continue
                copy(relative, archive.read_part_bytes(entry, first_part[relative]), once=True)
        relative = layout.relative(layout.manifest(manifest.seq))
        copy(relative, layout.manifest(manifest.seq).read_bytes(), once=True)
    for path in (layout.signing_public_key, layout.transitions):
        if path.exists():
            copy(layout.relative(path), path.read_bytes(), once=False)
    # the settings last: until they are there, the prefix is no archive
    copy(layout.relative(layout.config), layout.config.read_bytes(), once=False)
    return Published(written, skipped, sent)
