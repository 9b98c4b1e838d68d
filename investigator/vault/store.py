"""The encrypted, append-only evidence archive (format: docs/archive-format.md).

    >>> archive = create_archive(Path("case-archive"), passphrase="...")   # doctest: +SKIP
    >>> keys = unlock_archive(archive, "...", actor="alice")                # doctest: +SKIP
    >>> ingest_paths(archive, [Path("export.jsonl")], keys=keys, actor="alice")  # doctest: +SKIP
    >>> verify_archive(archive, keys=keys).ok                               # doctest: +SKIP
    True

(``create_archive`` and ``unlock_archive`` come from the key custody,
``investigator.custody.file``; ``ingest_paths`` and ``verify_archive`` from
``investigator.vault.ingest`` and ``investigator.vault.verify``.) The Archive
itself holds no master keys: operations that need them take a
:class:`~investigator.vault.format.Keyring`.

Layout (one directory; :class:`investigator.vault.layout.Layout`, ``archive.layout``, names every path)::

    archive.toml                  settings: id, format version, time zone, chunk size, public key
    keys/master.json              passphrase-protected master keys (KEK versions) + archive signing key
    keys/index-key.json           wrapped key of the deduplication index
    batches/NNNNNNNN/             one committed ingest batch, never changed afterwards
        manifest.json             signed manifest (RFC 8785 bytes)
        keys/<kind>/<day>.json    wrapped data keys of partitions this batch created
        <kind>/<day>/<HHMMSS>.chk AES-256-GCM encrypted Parquet, one per time chunk
        index.chk                 encrypted (kind, id, record hash, version) of the batch
    audit/log.jsonl               hash-chained audit log, audit/checkpoints.jsonl signed heads
    staging/                      batches being written; never read, removed by the next writer

A batch becomes part of the archive in one atomic step: the rename of its
staging directory (manifest inside) to ``batches/NNNNNNNN``.
"""

from __future__ import annotations

import io
import json
import shutil
import uuid
from dataclasses import replace
from collections.abc import Callable, Iterator
import functools
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl

from investigator import _crypto
from investigator.vault.audit import AuditLog
from investigator.vault.config import ArchiveConfig, check_timezone, parse_custody_table, validate_chunk_seconds
from investigator.errors import ArchiveError, ConfigError, IntegrityError
from investigator._fs import atomic_write, make_dirs, write_synced
from investigator.vault.format import (CHUNK_MAGIC, FORMAT_V2, FORMAT_VERSION, INDEX_KEY_KIND,
                                       INDEX_MAGIC, INDEX_SEGMENT, READABLE_FORMATS, Keyring, batch_dir_name,
                                       chunk_aad, chunk_key, index_aad, unpack_chunk_file)
from investigator.vault.keychain import KeyChain
from investigator.vault.layout import Layout
from investigator.vault.manifest import GENESIS, ChunkEntry, Manifest
from investigator.vault.statehead import write_state_head
from investigator.vault.witness import send_checkpoint
from investigator.schema import format_ts
from investigator._fs import exclusive_lock


class Archive:
    """An archive directory. Open with :meth:`open`, make with :meth:`create`."""

    def __init__(self, root: Path, config: ArchiveConfig) -> None:
        self.root = Path(root)
        self.config = config
        self._layout = Layout(self.root, config.custody.get("generation", ""))
        self.audit = AuditLog(self._layout.audit_dir)
        self.audit.after_checkpoint = functools.partial(send_checkpoint, self)  # to the witnesses (vault/witness.py)
        # every checkpoint first writes the next signed state head when org/ or cases/ changed (vault/statehead.py)
        self.audit.before_checkpoint = lambda signer, when: write_state_head(self, signer, now=when)
        self._manifest_cache: tuple[tuple[str, ...], list[Manifest]] | None = None
        self._key_holder_cache: tuple[list[Manifest], dict[tuple[str, str], list[tuple[int, str]]]] | None = None
        self._chain_cache: tuple[tuple[int, int], KeyChain] | None = None

    def __repr__(self) -> str:
        return f"Archive(root={str(self.root)!r}, id={self.config.archive_id!r})"

    # --- paths ---------------------------------------------------------------

    @property
    def archive_id(self) -> str:
        return self.config.archive_id

    @property
    def layout(self) -> Layout:
        """Every path under this archive's root (:mod:`investigator.vault.layout`)."""
        return self._layout

    @property
    def keyfile_path(self) -> Path:
        """``keys/master.json`` (same as ``layout.key_file``)."""
        return self._layout.key_file

    @property
    def batches_dir(self) -> Path:
        """``batches/`` (same as ``layout.batches_dir``)."""
        return self._layout.batches_dir

    @property
    def staging_dir(self) -> Path:
        """``staging/`` (same as ``layout.staging_dir``)."""
        return self._layout.staging_dir

    @property
    def signing_public(self) -> _crypto.VerifyKey:
        """The key the archive signs with now (the genesis key until a custody migration).

        To verify a signature use :meth:`signing_keys`, which accepts every key of the chain.
        """
        return self.signing_keys().current

    def signing_keys(self) -> KeyChain:
        """The archive's verified signing keys: the genesis key (archive.toml) and every key transition.

        Re-read when ``keys/transitions.jsonl`` changes. Raises IntegrityError
        (file and record position) for a chain that does not verify.
        """
        path = self._layout.transitions
        try:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, -1)
        if self._chain_cache is None or self._chain_cache[0] != stamp:
            genesis = _crypto.VerifyKey.from_b64(self.config.signing_public_key)
            self._chain_cache = (stamp, KeyChain.load(path, genesis=genesis, archive_id=self.archive_id))
        return self._chain_cache[1]

    # --- making and opening ----------------------------------------------------

    @classmethod
    def create(cls, root: Path, *, new_keyring: Callable[[str, Path], Keyring], timezone_name: str = "Asia/Shanghai",
               chunk_seconds: int = 3600, actor: str = "admin", custody: dict[str, str] | None = None,
               now: datetime | None = None, format_version: int = FORMAT_VERSION) -> "Archive":
        """Create a new archive at ``root`` (absent or an empty directory).

        ``new_keyring(archive_id, keyfile_path)`` is the key custody's part: it
        makes the master keys (writing whatever it keeps at ``keyfile_path``)
        and returns them unlocked; :func:`investigator.custody.file.create_archive`
        is the usual caller. ``custody`` is the ``[custody]`` table recorded in
        archive.toml (names only; default the key file). ``format_version``: the chunk format its
        batches are written in (format.READABLE_FORMATS). Raises ArchiveError if ``root`` holds
        anything, ConfigError for a bad time zone, chunk size or format version.
        """
        root = Path(root)
        layout = Layout(root)
        check_timezone(timezone_name)
        validate_chunk_seconds(chunk_seconds)
        if format_version not in READABLE_FORMATS:
            raise ConfigError(f"unknown archive format version {format_version!r}",
                              hint=f"use one of {', '.join(map(str, READABLE_FORMATS))}")
        if root.exists() and any(root.iterdir()):
            raise ArchiveError(f"{root}: directory is not empty; refusing to create an archive there")
        when = now or datetime.now(timezone.utc)
        archive_id = str(uuid.uuid4())
        for folder in layout.created_dirs:
            make_dirs(folder)
        keys = new_keyring(archive_id, layout.key_file)
        index_key = _crypto.new_key()
        atomic_write(layout.index_key,
                     (json.dumps(keys.wrap(index_key, "index", "all"), sort_keys=True) + "\n").encode())
        config = ArchiveConfig(archive_id=archive_id, created=format_ts(when), timezone=timezone_name,
                               chunk_seconds=chunk_seconds, signing_public_key=keys.signing.public.b64(),
                               format_version=format_version, custody=dict(custody or {"backend": "file"}))
        atomic_write(layout.signing_public_key, (config.signing_public_key + "\n").encode())
        # The settings file last: until it exists, this is not an archive.
        atomic_write(layout.config, config.to_toml().encode())
        archive = cls(root, config)
        archive.audit.append(actor, "init", archive_id, {"timezone": timezone_name, "chunk_seconds": chunk_seconds,
                                                         "format_version": format_version,
                                                         "signing_key_id": keys.signing.public.key_id,
                                                         "custody": config.custody["backend"]}, now=when)
        archive.audit.checkpoint(keys.signing, archive_id=archive_id, now=when)
        return archive

    @classmethod
    def open(cls, root: Path | str) -> "Archive":
        """Open an existing archive. Raises ArchiveError if ``root`` is not one."""
        root = Path(root)
        config = ArchiveConfig.load(root)
        # After a custody migration the [custody] in force is the last key transition's (its one atomic switch);
        # archive.toml keeps the genesis key and the first custody.
        chain = KeyChain.load(Layout(root).transitions,
                              genesis=_crypto.VerifyKey.from_b64(config.signing_public_key),
                              archive_id=config.archive_id)
        if chain.custody is not None:
            config = replace(config, custody=parse_custody_table(chain.custody, Layout(root).transitions))
        return cls(root, config)

    def write_format(self) -> int:
        """The chunk format new batches are written in: archive.toml's ``format_version``, read afresh.

        Read each time (not from the settings loaded at open) so a long-running key server follows
        ``investigator upgrade``. Raises ArchiveError for unreadable settings.
        """
        return ArchiveConfig.load(self.root).format_version

    # --- locking -----------------------------------------------------------------

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """Exclusive lock for writers (ingest, rotation, retention)."""
        with exclusive_lock(self._layout.write_lock):
            yield

    def discard_staging(self) -> list[str]:
        """Remove uncommitted batches left by an interrupted writer. Call under the write lock."""
        removed = []
        if self.staging_dir.exists():
            for entry in sorted(self.staging_dir.iterdir()):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                removed.append(entry.name)
        return removed

    # --- manifests and chunks ------------------------------------------------------

    def batch_names(self) -> list[str]:
        if not self.batches_dir.exists():
            return []
        return sorted(p.name for p in self.batches_dir.iterdir())

    def manifests(self) -> list[Manifest]:
        """Committed manifests in order, signatures and chain checked.

        Raises IntegrityError naming the first manifest that does not verify.
        """
        names = tuple(self.batch_names())
        cached_names, cached = self._manifest_cache or ((), [])
        if cached_names == names:
            return cached
        # Batches are append-only: when the known ones are a prefix, verify only the new ones.
        if names[:len(cached_names)] == cached_names:
            out, prev, done = list(cached), (cached[-1].digest if cached else GENESIS), len(cached_names)
        else:
            out, prev, done = [], GENESIS, 0
        key = self.signing_keys()
        for position, name in enumerate(names[done:], start=done + 1):
            if name != batch_dir_name(position):
                raise IntegrityError(f"batch directory {name!r} out of sequence (expected {batch_dir_name(position)})",
                                     path=f"batches/{name}")
            where = self._layout.relative(self._layout.manifest(position))
            manifest = self._load_manifest(position)
            manifest.verify_signature(key, what=where)
            if manifest.seq != position or manifest.body.get("archive_id") != self.archive_id:
                raise IntegrityError("manifest sequence or archive id does not match its place", path=where)
            if manifest.body.get("prev_manifest") != prev:
                raise IntegrityError("chain link to the previous manifest is broken", path=where)
            prev = manifest.digest
            out.append(manifest)
        self._manifest_cache = (names, out)
        return out

    def _load_manifest(self, seq: int) -> Manifest:
        """Batch ``seq``'s manifest, parsed, not yet verified (a read-only view on an object store reads it there)."""
        return Manifest.load(self._layout.manifest(seq))

    def chunk_entries(self, kind: str | None = None, *, overlapping: tuple[str, str] | None = None) -> list[ChunkEntry]:
        """Every committed chunk (optionally of one kind), in batch order.

        ``overlapping=(start, end)`` (UTC timestamps as :func:`~investigator.schema.format_ts` writes them):
        only the chunks whose window overlaps ``[start, end)``, without parsing the others.
        """
        if overlapping is not None:
            start, end = overlapping
            return [c for m in self.manifests() for c in m.chunks_overlapping(kind, start, end)]
        return [c for m in self.manifests() for c in m.chunks if kind is None or c.kind == kind]

    def partition_key_paths(self) -> dict[tuple[str, str], str]:
        """(kind, partition) -> relative path of its first wrapped data key (the one older batches share)."""
        out: dict[tuple[str, str], str] = {}
        for manifest in self.manifests():
            for entry in manifest.body.get("partition_keys", []):
                out.setdefault((entry["kind"], entry["partition"]), entry["path"])
        return out

    def data_key_files(self) -> list[tuple[int, str, str, str]]:
        """Every wrapped data key the batches hold: (batch seq, kind, partition, relative path), in batch order.

        Since format change 2 (archive-format.md, "Keys") a batch makes its own data key for every
        partition it writes and one for its deduplication index (kind ``index``, partition its
        folder name); a batch written before that reuses the first key of a partition it did not create.
        """
        return [(m.seq, e["kind"], e["partition"], e["path"]) for m in self.manifests()
                for e in m.body.get("partition_keys", [])]

    def _key_holders(self) -> dict[tuple[str, str], list[tuple[int, str]]]:
        manifests = self.manifests()
        cached = self._key_holder_cache
        if cached is not None and cached[0] is manifests:
            return cached[1]
        holders: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for seq, kind, partition, relative in self.data_key_files():
            holders.setdefault((kind, partition), []).append((seq, relative))
        self._key_holder_cache = (manifests, holders)
        return holders

    def data_key_owner(self, kind: str, partition: str, batch: int | None = None) -> tuple[int, str]:
        """(seq, relative path) of the wrapped data key that encrypts ``kind``/``partition`` in batch ``batch``.

        The batch's own key when its manifest lists one for the partition, else the partition's
        first key (batches written before per-batch keys, and ``batch=None``: the legacy reference).
        Raises IntegrityError for a partition without a key, or a batch that is not committed.
        """
        holders = self._key_holders().get((kind, partition))
        if not holders:
            raise IntegrityError(f"no data key for partition {kind}/{partition}")
        if batch is not None:
            if not 1 <= batch <= len(self.manifests()):
                raise IntegrityError(f"no batch {batch} in this archive")
            for seq, relative in holders:
                if seq == batch:
                    return seq, relative
        return holders[0]

    def _read_json(self, relative: str) -> dict[str, Any]:
        try:
            return json.loads(self._layout.resolve(relative).read_bytes())
        except (OSError, ValueError) as exc:
            raise IntegrityError("missing or unreadable key file", path=relative) from exc

    def current_data_key_path(self, kind: str, partition: str, batch: int | None = None) -> Path:
        """The wrapped data key to use: the rewrapped copy after a rotation, else the batch's original.

        ``batch`` as in :meth:`data_key_owner`. A partition's first key is rewrapped to
        ``keys/rewrapped/<kind>/<day>.json`` (as before per-batch keys), a later batch's own key to
        ``keys/rewrapped/<kind>/<day>.<NNNNNNNN>.json``.
        """
        seq, relative = self.data_key_owner(kind, partition, batch)
        rewrapped = self.rewrapped_data_key_path(kind, partition, seq)
        return rewrapped if rewrapped.exists() else self._layout.resolve(relative)

    def rewrapped_data_key_path(self, kind: str, partition: str, seq: int) -> Path:
        """Where a rotation puts the rewrapped copy of the data key batch ``seq`` holds for ``kind``/``partition``."""
        holders = self._key_holders().get((kind, partition)) or [(seq, "")]
        first = holders[0][0] == seq
        return self._layout.rewrapped_key(kind, partition) if first else self._layout.rewrapped_key(kind, partition, seq)

    def data_key(self, keys: Keyring, kind: str, partition: str, batch: int | None = None) -> bytes:
        """Unwrap the data key of a partition (in batch ``batch``, see :meth:`data_key_owner`).

        Raises IntegrityError if absent or altered.
        """
        relative = self._layout.relative(self.current_data_key_path(kind, partition, batch))
        wrapped = self._read_json(relative)
        if wrapped.get("kind") != kind or wrapped.get("partition") != partition:
            raise IntegrityError("wrapped key belongs to another partition", path=relative)
        return keys.unwrap(wrapped, what=relative)

    def index_key(self, keys: Keyring) -> bytes:
        """The archive-wide index key: it encrypts the indexes of batches written before per-batch index keys."""
        relative = self._layout.relative(self._layout.index_key)
        return keys.unwrap(self._read_json(relative), what=relative)

    def chunk_key_for(self, keys: Keyring, kind: str, partition: str, chunk: str, part: str,
                      batch: int | None = None) -> bytes:
        """Derive one chunk part's key from the master keys (the embedded key service's job)."""
        return chunk_key(self.data_key(keys, kind, partition, batch), archive_id=self.archive_id, kind=kind,
                         partition=partition, chunk=chunk, part=part)

    def read_part_bytes(self, entry: ChunkEntry, part: str) -> bytes:
        """A chunk part file's bytes, checked against the manifest's SHA-256. Raises IntegrityError."""
        relative, digest = entry.part(part)
        try:
            data = self._layout.resolve(relative).read_bytes()
        except OSError as exc:
            raise IntegrityError("chunk file missing or unreadable", path=relative) from exc
        if _crypto.sha256_hex(data) != digest:
            raise IntegrityError("chunk file does not match its manifest", path=relative)
        return data

    def open_part(self, entry: ChunkEntry, part: str, key: bytes, data: bytes | None = None) -> bytes:
        """Authenticate and decrypt one chunk part: its plaintext Parquet bytes. Raises IntegrityError.

        ``data`` is the part's file as already read (format 2: the chunk's one file), else it is read
        and checked against the manifest here.
        """
        relative, _ = entry.part(part)
        blob = self.read_part_bytes(entry, part) if data is None else data
        if entry.format == FORMAT_V2:
            return self._open_segment(entry, part, key, unpack_chunk_file(blob, what=relative))
        if not blob.startswith(CHUNK_MAGIC):
            raise IntegrityError("not a chunk file", path=relative)
        return _crypto.open_sealed(key, blob[len(CHUNK_MAGIC):], what=relative,
                                   aad=chunk_aad(self.archive_id, entry.batch_seq, entry.kind, entry.partition,
                                                 entry.chunk, part))

    def open_parts(self, entry: ChunkEntry, part_keys: dict[str, bytes]) -> dict[str, bytes]:
        """Authenticate and decrypt the parts in ``part_keys``: part -> plaintext Parquet bytes.

        A format-2 chunk's file is read (and checked against its manifest) once for all of them.
        Raises IntegrityError as :meth:`open_part`.
        """
        if entry.format != FORMAT_V2:
            return {part: self.open_part(entry, part, key) for part, key in part_keys.items()}
        relative, _ = entry.files[0]
        segments = unpack_chunk_file(self.read_part_bytes(entry, entry.part_names[0]), what=relative)
        return {part: self._open_segment(entry, part, key, segments) for part, key in part_keys.items()}

    def _open_segment(self, entry: ChunkEntry, part: str, key: bytes, segments: dict[str, bytes]) -> bytes:
        relative = entry.files[0][0]
        if part not in segments:
            raise IntegrityError(f"chunk file has no {part!r} segment", path=relative)
        return _crypto.open_sealed(key, segments[part], what=f"{relative} ({part})",
                                   aad=chunk_aad(self.archive_id, entry.batch_seq, entry.kind, entry.partition,
                                                 entry.chunk, part, FORMAT_V2))

    def decrypt_part(self, entry: ChunkEntry, part: str, key: bytes, data: bytes | None = None) -> pl.DataFrame:
        """Authenticate and decrypt one chunk part into a frame. Raises IntegrityError."""
        frame = read_parts([self.open_part(entry, part, key, data)], what=entry.part(part)[0])
        if frame.height != entry.rows:
            raise IntegrityError("chunk row count differs from the manifest", path=entry.part(part)[0])
        return frame

    def decrypt_chunk(self, entry: ChunkEntry, part_keys: dict[str, bytes]) -> pl.DataFrame:
        """Decrypt the parts in ``part_keys`` (``meta`` required) and join them column-wise.

        Raises IntegrityError when any part fails to authenticate or the parts'
        rows do not line up.
        """
        if "meta" not in part_keys:
            raise IntegrityError(f"chunk {entry.chunk_id}: the meta part's key is required")
        frame = self.decrypt_part(entry, "meta", part_keys["meta"])
        for part in entry.part_names:
            if part == "meta" or part not in part_keys:
                continue
            extra = self.decrypt_part(entry, part, part_keys[part])
            if not extra["leaf_index"].equals(frame["leaf_index"]):
                raise IntegrityError("chunk parts do not line up", path=entry.part(part)[0])
            frame = frame.hstack(extra.drop("leaf_index"))
        return frame

    def read_chunk(self, entry: ChunkEntry, keys: Keyring, parts: tuple[str, ...] | None = None) -> pl.DataFrame:
        """Decrypt a chunk with the master keys (verification, ingest tools, tests)."""
        names = parts or entry.part_names
        dek = self.data_key(keys, entry.kind, entry.partition, entry.batch_seq)
        return self.decrypt_chunk(entry, {p: chunk_key(dek, archive_id=self.archive_id, kind=entry.kind,
                                                       partition=entry.partition, chunk=entry.chunk, part=p)
                                          for p in names})

    def read_index(self, keys: Keyring, *, after: int = 0) -> pl.DataFrame:
        """The deduplication index of every committed batch past ``after``: kind, source, id, hash_prefix, version.

        Format 1: a batch's ``index.chk``, encrypted under the batch's own index key (partition key of
        kind ``index``) when its manifest lists one, else under the archive-wide index key. Format 2:
        the ``index`` segment of each chunk file, under a key derived from the batch's index key.
        Raises IntegrityError for an index file or segment that does not match its manifest or does not open.
        """
        shared: bytes | None = None
        frames = []
        for manifest in self.manifests()[after:]:
            if manifest.chunk_format == FORMAT_V2:
                frames.extend(self._read_folded_index(manifest, keys))
                continue
            relative = manifest.body["index"]["path"]
            path = self._layout.resolve(relative)
            data = path.read_bytes() if path.exists() else b""
            if _crypto.sha256_hex(data) != manifest.body["index"]["sha256"] or not data.startswith(INDEX_MAGIC):
                raise IntegrityError("index file does not match its manifest", path=relative)
            if any(e.get("kind") == INDEX_KEY_KIND for e in manifest.body.get("partition_keys", [])):
                key = self.data_key(keys, INDEX_KEY_KIND, batch_dir_name(manifest.seq), manifest.seq)
            else:
                shared = self.index_key(keys) if shared is None else shared
                key = shared
            plain = _crypto.open_sealed(key, data[len(INDEX_MAGIC):], aad=index_aad(self.archive_id, manifest.seq),
                                        what=relative)
            frames.append(_read_stored_parquet(plain))
        if not frames:
            return pl.DataFrame(schema=INDEX_SCHEMA)
        return pl.concat(frames)

    def _read_folded_index(self, manifest: Manifest, keys: Keyring) -> list[pl.DataFrame]:
        """A format-2 batch's dedup index: the ``index`` segments of its chunk files (kind added from the entry)."""
        dek = self.data_key(keys, INDEX_KEY_KIND, batch_dir_name(manifest.seq), manifest.seq)
        plains: list[bytes] = []
        kinds: list[tuple[str, int]] = []
        for entry in manifest.chunks:
            key = index_segment_key(dek, self.archive_id, entry.kind, entry.partition, entry.chunk)
            plains.append(self.open_parts(entry, {INDEX_SEGMENT: key})[INDEX_SEGMENT])
            kinds.append((entry.kind, entry.rows))
        if not plains:
            return []
        frame = _read_stored_parquet(plains) if len(plains) > 1 else _read_stored_parquet(plains[0])
        if frame.height != sum(n for _, n in kinds):
            raise IntegrityError("index segments hold another number of rows than the manifest lists",
                                 path=f"batches/{batch_dir_name(manifest.seq)}")
        kind_column = pl.Series("kind", [k for k, _ in kinds]).repeat_by(pl.Series([n for _, n in kinds])).explode()
        return [frame.with_columns(kind_column.alias("kind")).select(list(INDEX_SCHEMA))]

    # --- info -------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Counts only, never content: messages, events, partitions, first and last time."""
        counts = {"messages": 0, "events": 0}
        partitions: set[tuple[str, str]] = set()
        first: str | None = None
        last: str | None = None
        for entry in self.chunk_entries():
            counts[entry.kind] = counts.get(entry.kind, 0) + entry.rows
            partitions.add((entry.kind, entry.partition))
            first = entry.ts_min if first is None or entry.ts_min < first else first
            last = entry.ts_max if last is None or entry.ts_max > last else last
        return {"archive_id": self.archive_id, "messages": counts["messages"], "events": counts["events"],
                "partitions": len(partitions), "batches": len(self.batch_names()), "first_ts": first,
                "last_ts": last, "timezone": self.config.timezone}


def read_parts(plaintexts: list[bytes], *, columns: list[str] | None = None, what: str = "chunk") -> pl.DataFrame:
    """Parse decrypted chunk parts (one Parquet read over all of them, in order). Raises IntegrityError.

    One read over a list of buffers is several times faster than a read per
    buffer: hourly chunks are small, and per-file overhead dominated.
    """
    try:
        frame = pl.read_parquet(plaintexts if len(plaintexts) != 1 else io.BytesIO(plaintexts[0]), columns=columns)
    except Exception as exc:  # authenticated but unparsable: a writer bug, still untrusted
        raise IntegrityError("chunk content is not valid Parquet", path=what) from exc
    hashes = [c for c in ("record_hash", "hash_prefix") if c in frame.columns]
    if hashes:
        frame = frame.with_columns(pl.col(c).bin.encode("hex") for c in hashes)
    return frame


# The dedup index as the key service reads it (both formats).
INDEX_SCHEMA = {"kind": pl.String, "source": pl.String, "id": pl.String, "hash_prefix": pl.String,
                "version": pl.Int32}


def index_segment_key(index_dek: bytes, archive_id: str, kind: str, partition: str, chunk: str) -> bytes:
    """The key of a format-2 chunk file's ``index`` segment: derived from the batch's index key, never released."""
    return chunk_key(index_dek, archive_id=archive_id, kind=kind, partition=partition, chunk=chunk, part=INDEX_SEGMENT)


def _read_stored_parquet(plain: bytes | list[bytes]) -> pl.DataFrame:
    """Parse a decrypted index (or a list of index segments); record hashes back to hex text (archive-format.md)."""
    frame = pl.read_parquet(plain if isinstance(plain, list) else io.BytesIO(plain))
    hashes = [c for c in ("record_hash", "hash_prefix") if c in frame.columns]
    if hashes:
        frame = frame.with_columns(pl.col(c).bin.encode("hex") for c in hashes)
    return frame


def utc_day_bounds(day: str) -> tuple[datetime, datetime]:
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def write_file(path: Path, data: bytes) -> None:
    """Create a new file inside a staging tree (parents made, fsynced)."""
    make_dirs(path.parent)
    write_synced(path, data)

