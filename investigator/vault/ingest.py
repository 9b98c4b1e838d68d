"""Ingest: importer frames -> deduplicated, versioned, encrypted chunks + a signed manifest.

    >>> result = ingest_paths(archive, [Path("export.jsonl")], keys=keys, actor="alice")   # doctest: +SKIP
    >>> result.messages_added, result.duplicates                                   # doctest: +SKIP
    (120, 0)

Guarantees (docs/archive-format.md, "Ingest"):

- idempotent: a record already in the archive (same kind, id and record hash)
  is skipped; the same id with other content is stored as a new version
  (``version`` 2, 3 ...), never overwriting the first;
- atomic: everything is written under ``staging/`` and committed by renaming
  that directory to ``batches/NNNNNNNN`` (manifest inside); an interrupted
  ingest leaves only staging residue, which the next writer removes;
- verifiable: the signed manifest lists every file's SHA-256 and the RFC 9162
  Merkle root of the batch's record hashes, chained to the previous manifest;
- write-only for the ingesting process: every batch encrypts under data keys made
  for it alone (one per partition, one for its index), the dedup question is asked
  of the key service (hashes in, yes/no and version numbers out), and the key
  service checks and signs the manifest. The ingesting process holds no key that
  opens an earlier batch. :class:`LocalIngest` answers in-process from the master
  keys (embedded mode); ``investigator.access.ingest_client.RemoteIngest`` asks
  ``investigator keyserver``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ContextManager, Protocol

import polars as pl

from investigator import _crypto
from investigator._version import __version__
from investigator.vault import merkle
from investigator.vault.format import (CHUNK_MAGIC, FORMAT_V1, FORMAT_V2, INDEX_KEY_KIND, INDEX_MAGIC,
                                       INDEX_SEGMENT, ArchiveSigner, Keyring, batch_dir_name, chunk_aad, chunk_key,
                                       index_aad, pack_chunk_file)
from investigator.vault.store import Archive, index_segment_key, write_file
from investigator.vault.verify import audited_manifest_digests
from investigator.errors import ArchiveError, ConfigError, ImportFormatError, IntegrityError
from investigator.importers import ImportOptions, read_export
from investigator._fs import exclusive_lock_if_free, fsync_dir
from investigator.vault.manifest import GENESIS, Manifest
from investigator.vault.acquisition import AcquisitionRecord
from investigator.schema import (KINDS, conform, digest_bytes_column, format_ts, id_field, kind_parts,
                                 record_hash_column, split_parts)

# Timestamps outside this range are almost always a unit mistake (ms read as s ...).
EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
# The dedup index keeps 128 bits of each record hash: ample to tell versions
# apart (a false "duplicate" needs a 2^-128 collision on the same id) at half
# the size of the full hash, which is the index's largest column.
INDEX_HASH_HEX = 32
# Format 2's index segments keep 64 bits: the question is only ever "is this (source, id)'s content one
# of its stored versions", so a false "duplicate" needs a 2^-64 collision between versions of one id;
# the index is then ~8 bytes a record smaller. Dedup compares this many hex digits for both formats.
INDEX2_HASH_HEX = 16
# Chunk parts are written (Parquet in Rust), sealed (AES-GCM in OpenSSL) and fsynced on these threads;
# all three release the GIL, and fsync waits on the disk rather than a core, so more threads than
# cores keep both cores busy (benchmarks/bench_ingest.py, docs/benchmarks.md).
SEAL_THREADS = 4


# Fault injection for the crash-safety tests only: a child process they start sets this to a
# step name ("mid-chunks", "before-manifest", "before-commit", "after-commit") and is killed
# with SIGKILL there. None (never set) in normal use.
CRASH_AT: str | None = None


def _crash_point(name: str) -> None:
    if CRASH_AT == name:
        os.kill(os.getpid(), signal.SIGKILL)


# --- what an ingest asks of the key service ---------------------------------------------------

Row = tuple[str, str, str]  # (source, id, hash_prefix): what the dedup question sends, never content
IssuedKey = tuple[bytes, dict[str, Any]]  # (plain data key, its wrapped form) as KMS GenerateDataKey answers


class IngestService(Protocol):
    """What an ingest needs from whoever holds the master keys (:class:`LocalIngest`, or the key server).

    ``lookup`` answers, for each (source, id, hash prefix) of one kind, whether that exact record
    is stored and the latest stored version of its (source, id) (0: none). ``data_keys`` makes a
    fresh data key per (kind, partition) for batch ``batch_id`` (which must become batch ``seq``).
    ``commit`` checks the staged batch against what was issued for it, signs its manifest,
    commits it (atomic rename) and audits it; it raises IntegrityError for a staged batch that
    does not check, ArchiveError when another batch was committed first (ingest again).
    ``writing`` brackets the whole ingest (embedded: the archive's write lock).
    """

    def writing(self, archive: Archive, *, actor: str) -> ContextManager[None]: ...

    def lookup(self, kind: str, rows: Sequence[Row]) -> tuple[list[bool], list[int]]: ...

    def data_keys(self, batch_id: str, seq: int, wanted: Sequence[tuple[str, str]]) -> dict[tuple[str, str], IssuedKey]: ...

    def commit(self, archive: Archive, *, batch_id: str, body: dict[str, Any], actor: str,
               now: datetime) -> Manifest: ...


@dataclass
class IssuedBatch:
    """What a key service issued for one staged batch: who asked, for which seq, and each key file's SHA-256."""

    person: str
    seq: int
    started: datetime
    keys: dict[tuple[str, str], str] = field(default_factory=dict)


def key_file_bytes(wrapped: dict[str, Any]) -> bytes:
    """The bytes of a wrapped data key file (what the manifest's SHA-256 covers)."""
    return _json_bytes(wrapped)


class DedupIndex:
    """The decrypted dedup index, prepared once per kind for the key service's answers (present? latest version?).

    Preparing (the stored hash prefixes, the latest version per (source, id)) costs a pass over
    the whole index; each answer is then two joins on the rows asked about.
    """

    def __init__(self, index: pl.DataFrame) -> None:
        self.index = index
        self._prepared: dict[str, tuple[pl.DataFrame, pl.DataFrame]] = {}

    def __repr__(self) -> str:
        return f"DedupIndex(rows={self.index.height})"

    def _for(self, kind: str) -> tuple[pl.DataFrame, pl.DataFrame]:
        if kind not in self._prepared:
            known = self.index.filter(pl.col("kind") == kind)
            stored = (known.select("source", "id", pl.col("hash_prefix").str.slice(0, INDEX2_HASH_HEX)).unique()
                      .with_columns(pl.lit(True).alias("_present")))
            latest = known.group_by("source", "id").agg(pl.col("version").max().cast(pl.Int64).alias("_latest"))
            self._prepared[kind] = (stored, latest)
        return self._prepared[kind]

    def answer(self, kind: str, rows: Sequence[Row]) -> tuple[list[bool], list[int]]:
        """For each (source, id, hash prefix): is that record stored; the latest stored version of (source, id)."""
        if not rows:
            return [], []
        asked = pl.DataFrame({"source": [r[0] for r in rows], "id": [r[1] for r in rows],
                              "hash_prefix": [r[2] for r in rows]},
                             schema={"source": pl.String, "id": pl.String, "hash_prefix": pl.String})
        answer = self.answer_frame(kind, asked)
        return answer["_present"].to_list(), answer["_latest"].to_list()

    def answer_frame(self, kind: str, asked: pl.DataFrame) -> pl.DataFrame:
        """:meth:`answer` as two joins: ``asked`` (source, id, hash_prefix) -> ``_present``, ``_latest``, in its order."""
        stored, latest = self._for(kind)
        answer = (asked.select("source", "id", pl.col("hash_prefix").str.slice(0, INDEX2_HASH_HEX))
                  .join(stored, on=["source", "id", "hash_prefix"], how="left", maintain_order="left")
                  .join(latest, on=["source", "id"], how="left", maintain_order="left"))
        return answer.select(pl.col("_present").fill_null(False), pl.col("_latest").fill_null(0).cast(pl.Int64))


def lookup_in_index(index: pl.DataFrame, kind: str, rows: Sequence[Row]) -> tuple[list[bool], list[int]]:
    """Answer the dedup question from a decrypted index (the key service's side): present? latest version?"""
    return DedupIndex(index).answer(kind, rows)


class LocalIngest:
    """The embedded ingest service: dedup answers, data keys and the manifest signature from ``keys`` in-process.

    Whoever holds ``keys`` can read everything (docs/threat-model.md); this is the one trusted
    machine's path, and the reference for what the key server does for a remote ingest.
    """

    def __init__(self, keys: Keyring) -> None:
        self._keys = keys
        self._index: DedupIndex | None = None
        self._archive: Archive | None = None
        self._issued: dict[str, IssuedBatch] = {}

    def __repr__(self) -> str:
        return f"LocalIngest(archive={self._keys.archive_id!r})"

    @contextmanager
    def writing(self, archive: Archive, *, actor: str) -> Iterator[None]:
        with archive.write_lock():
            with exclusive_lock_if_free(archive.layout.staging_lock) as alone:
                if alone:  # no client of the key server is staging beside us: its batch is not residue
                    archive.discard_staging()
            record_unaudited_batches(archive, actor=actor)
            self._archive, self._index = archive, None
            yield

    def lookup(self, kind: str, rows: Sequence[Row]) -> tuple[list[bool], list[int]]:
        return self._dedup_index().answer(kind, rows)

    def lookup_frame(self, kind: str, asked: pl.DataFrame) -> pl.DataFrame:
        """:meth:`lookup` for a frame of (source, id, hash_prefix): ``_present``, ``_latest`` in its order."""
        return self._dedup_index().answer_frame(kind, asked)

    def _dedup_index(self) -> DedupIndex:
        if self._index is None:
            if self._archive is None:
                raise ConfigError("LocalIngest.lookup outside writing()")
            self._index = DedupIndex(self._archive.read_index(self._keys))
        return self._index

    def data_keys(self, batch_id: str, seq: int, wanted: Sequence[tuple[str, str]]) -> dict[tuple[str, str], IssuedKey]:
        issued = self._issued.setdefault(batch_id, IssuedBatch("", seq, datetime.now(timezone.utc)))
        out = {}
        for kind, partition in wanted:
            dek, wrapped = self._keys.new_data_key(kind, partition)
            issued.keys[(kind, partition)] = _crypto.sha256_hex(key_file_bytes(wrapped))
            out[(kind, partition)] = (dek, wrapped)
        return out

    def commit(self, archive: Archive, *, batch_id: str, body: dict[str, Any], actor: str,
               now: datetime) -> Manifest:
        issued = self._issued.pop(batch_id, None)
        if issued is None:
            raise IntegrityError(f"no data keys were issued for staged batch {batch_id}")
        return commit_batch(archive, self._keys.signing, batch_id=batch_id, body=body, issued=issued, actor=actor,
                            now=now)


@dataclass
class IngestResult:
    """What one ingest added. ``batch_seq`` is None when nothing was new."""

    batch_seq: int | None
    messages_added: int = 0
    events_added: int = 0
    duplicates: int = 0
    new_versions: int = 0
    skipped: int = 0
    chunks: int = 0
    manifest_digest: str = ""
    merkle_root: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def ingest_paths(archive: Archive, paths: Sequence[Path | str], *, keys: Keyring | None = None, actor: str,
                 format: str = "auto", options: ImportOptions | None = None, now: datetime | None = None,
                 progress: bool = False, service: IngestService | None = None,
                 acquisition: AcquisitionRecord | None = None) -> IngestResult:
    """Read every path with the importers, then ingest all of it as one batch.

    ``keys`` (embedded mode) or ``service`` (e.g. the key server's ``RemoteIngest``): see
    :func:`ingest_frames`. Raises ImportFormatError (file, position, what was expected) for
    bad input; the archive is then unchanged and the refusal is audited. With ``acquisition`` (a signed
    record, vault/acquisition.py), IntegrityError when a file read is not among its exports (audited).
    """
    files = [Path(p) for p in paths]
    options = options or ImportOptions(tz=archive.config.timezone)
    sources: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    messages, events, sources, skipped = [], [], [], []
    try:
        for path in files:
            result = read_export(path, format=format, options=options)
            messages.append(result.messages)
            events.append(result.events)
            sources.extend({"name": s.name, "sha256": s.sha256, "size": s.size, "format": s.format}
                           for s in result.source_files)
            skipped.extend({"file": path.name, "position": s.position, "reason": s.reason} for s in result.skipped)
    except ImportFormatError as err:
        archive.audit.append(actor, "ingest", ", ".join(p.name for p in files), {"reason": str(err)},
                             outcome="error", now=now)
        raise
    if acquisition is not None:  # ingest --acquisition: only the files the signed record lists
        problems = acquisition.problems_with(sources)
        if problems:
            archive.audit.append(actor, "ingest", ", ".join(p.name for p in files),
                                 {"reason": "not the acquisition record's exports", "problems": problems},
                                 outcome="error", now=now)
            raise IntegrityError("export files do not match the acquisition record: " + "; ".join(problems))
    _crash_point("after-read")
    return ingest_frames(archive, messages=pl.concat(messages, how="vertical_relaxed") if messages else None,
                         events=pl.concat(events, how="vertical_relaxed") if events else None,
                         sources=sources, skipped=skipped, keys=keys, actor=actor, now=now, progress=progress,
                         service=service,
                         acquisition=acquisition)


def _validate(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    frame = conform(frame, kind)
    idc = id_field(kind)
    bad = frame.with_row_index("_row").filter(
        pl.col(idc).is_null() | (pl.col(idc) == "") | pl.col("ts").is_null()
        | (pl.col("ts") < EARLIEST) | (pl.col("ts") >= LATEST))
    if bad.height:
        row = bad.row(0, named=True)
        where = row.get("source_position") or f"record {row['_row'] + 1}"
        raise ImportFormatError(row.get("source_file") or "input", where,
                                f"a non-empty {idc} and a time between 1990 and 2100 (UTC)")
    return frame


def _prepare(frame: pl.DataFrame, kind: str, service: IngestService, chunk_seconds: int) -> tuple[pl.DataFrame, int, int]:
    """Hash, deduplicate, version and place the records of one kind.

    A record's identity is (source, id): platform ids are only unique within
    their platform, so a Slack ts and a Telegram id never collide. What is
    already stored is asked of ``service`` (source, id and hash prefix only).
    """
    idc = id_field(kind)
    identity = ["source", idc]
    # record hashes column-wise: canonical text in Polars, SHA-256 in one compiled call (schema.py)
    frame = frame.with_columns(record_hash_column(frame, kind), pl.col("source").fill_null(""))
    incoming = frame.height
    # Repeats of one record within the input: equal record hashes mean equal content, and so an
    # equal (source, id), which are content fields (a null and an empty source hash apart); the
    # first of each is kept. One String column to look at: half the CPU of unique() on all three.
    frame = frame.filter(pl.col("record_hash").is_first_distinct())
    asked = frame.select("source", pl.col(idc).alias("id"),
                         pl.col("record_hash").str.slice(0, INDEX_HASH_HEX).alias("hash_prefix"))
    lookup_frame = getattr(service, "lookup_frame", None)
    if lookup_frame is not None:  # in-process: the dedup question as joins, no per-row Python
        answer = lookup_frame(kind, asked)
    else:  # a key server: rows over the wire (source, id, hash prefix only)
        present, latest = service.lookup(kind, list(asked.iter_rows()))
        answer = pl.DataFrame({"_present": present, "_latest": latest},
                              schema={"_present": pl.Boolean, "_latest": pl.Int64})
    frame = (frame.with_columns(answer["_present"], answer["_latest"].alias("_prev"))
             .filter(~pl.col("_present")).drop("_present"))
    duplicates = incoming - frame.height
    # version = latest stored + this record's place among the batch's records of its (source, id).
    # Most ids occur once in a batch (place 1); the window, ~0.7 s a million rows, runs only over
    # the rows whose id occurs more than once (the same numbering: filter keeps their order).
    repeated = frame.select(pl.struct(identity).is_duplicated()).to_series()
    place: pl.Expr | pl.Series = pl.lit(1, dtype=pl.Int64)
    if repeated.any():
        numbered = frame.filter(repeated).select(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over(identity))
        place = pl.repeat(1, frame.height, dtype=pl.Int64, eager=True).scatter(repeated.arg_true(), numbered.to_series())
    frame = frame.with_columns((pl.col("_prev") + place).cast(pl.Int32).alias("version")).drop("_prev")
    new_versions = frame.filter(pl.col("version") > 1).height
    # Each record's chunk as two integers, (UTC day, chunk within the day), sorted like the
    # "YYYY-MM-DD" / "HHMMSS" names they stand for; the names are made once per chunk (_chunk_names).
    micros = pl.col("ts").dt.epoch("us")
    frame = frame.with_columns((micros // _DAY_US).alias("_day"),
                               (micros % _DAY_US // (chunk_seconds * 1_000_000)).alias("_slot"),
                               ).sort(["_day", "_slot", "ts", idc], maintain_order=True)
    return frame, duplicates, new_versions


_DAY_US = 86_400 * 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _chunk_names(day: int, slot: int, chunk_seconds: int) -> tuple[str, str]:
    """The partition ("YYYY-MM-DD", UTC) and chunk ("HHMMSS", its start) of :func:`_prepare`'s keys."""
    start = _EPOCH + timedelta(days=day, seconds=slot * chunk_seconds)
    return start.strftime("%Y-%m-%d"), start.strftime("%H%M%S")


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    # archive-format.md, "Byte layouts": record hashes are stored as 32 raw
    # bytes (hex would double the largest incompressible column).
    types = frame.schema
    hashes = [c for c in ("record_hash", "hash_prefix") if types.get(c) == pl.String]
    if hashes:
        frame = frame.with_columns(pl.col(c).str.decode("hex") for c in hashes)
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=False)
    return buffer.getvalue()


def ingest_frames(archive: Archive, *, messages: pl.DataFrame | None, events: pl.DataFrame | None,
                  sources: list[dict[str, Any]], skipped: list[dict[str, Any]], keys: Keyring | None = None,
                  actor: str, now: datetime | None = None, progress: bool = False,
                  service: IngestService | None = None,
                  acquisition: AcquisitionRecord | None = None) -> IngestResult:
    """Ingest normalized frames as one batch (see the module docstring).

    With ``keys`` (embedded mode) the master keys answer in-process (:class:`LocalIngest`);
    with ``service`` (the key server's ``RemoteIngest``) this process never holds a master key,
    an earlier batch's key or the dedup index. Raises ConfigError with neither, ImportFormatError
    for bad records, IntegrityError / ArchiveError when the key service refuses the staged batch.
    """
    if service is None:
        if keys is None:
            raise ConfigError("ingest needs the master keys (embedded) or a key service (ingest through the server)")
        service = LocalIngest(keys)
    when = now or datetime.now(timezone.utc)
    inputs = {"messages": messages, "events": events}
    with service.writing(archive, actor=actor):
        committed = archive.manifests()
        seq = len(committed) + 1
        prev = committed[-1].digest if committed else GENESIS
        prepared: dict[str, pl.DataFrame] = {}
        duplicates = new_versions = 0
        for kind in KINDS:
            frame = inputs.get(kind)
            if frame is None or frame.height == 0:
                continue
            frame, dup, ver = _prepare(_validate(frame, kind), kind, service, archive.config.chunk_seconds)
            duplicates += dup
            new_versions += ver
            if frame.height:
                prepared[kind] = frame
        result = IngestResult(batch_seq=None, duplicates=duplicates, new_versions=new_versions,
                              skipped=len(skipped), sources=sources)
        if not prepared:
            archive.audit.append(actor, "ingest", "no new records",
                                 {"duplicates": duplicates, "skipped": len(skipped), "sources": sources}, now=when)
            return result
        layout = archive.layout
        final = layout.batch(seq)  # where the batch is committed; manifests record paths relative to the root
        stage = layout.staged_batch(uuid.uuid4().hex)
        stage.folder.mkdir(parents=True)
        leaf_hashes: list[pl.Series] = []  # the batch's record hashes, kind by kind: its Merkle leaves
        leaf_count = 0
        chunk_entries: list[dict[str, Any]] = []
        partition_keys: list[dict[str, Any]] = []
        index_rows: list[pl.DataFrame] = []
        data_keys: dict[tuple[str, str], bytes] = {}
        jobs: list[tuple[str, str, str, dict[str, pl.DataFrame]]] = []
        chunk_format = archive.write_format()  # a format-1 archive keeps format 1 until `investigator upgrade`
        for kind, frame in prepared.items():
            idc = id_field(kind)
            leaf_start = leaf_count
            frame = frame.with_columns(pl.lit(seq, dtype=pl.Int64).alias("batch_seq"),
                                       pl.int_range(leaf_start, leaf_start + pl.len(), dtype=pl.Int64).alias("leaf_index"))
            leaf_hashes.append(frame["record_hash"])
            leaf_count += frame.height
            if chunk_format == FORMAT_V1:
                index_rows.append(frame.select(pl.lit(kind).alias("kind"), "source", pl.col(idc).alias("id"),
                                               pl.col("record_hash").str.slice(0, INDEX_HASH_HEX).alias("hash_prefix"),
                                               "version"))
            # stored as 32 raw bytes (archive-format.md, "Byte layouts"): decoded once here, not per part
            frame = frame.with_columns(digest_bytes_column(frame["record_hash"]))
            # Each stored part of a chunk (and format 2's dedup index segment) is cut from the whole
            # kind once and then split by chunk: selects per chunk cost ~1 ms of Polars calls each.
            chunk_of = frame.select("_day", "_slot")
            pieces = {name: piece if name == "meta" else piece.hstack(chunk_of)
                      for name, piece in split_parts(frame, kind).items()}
            if chunk_format != FORMAT_V1:
                pieces[INDEX_SEGMENT] = frame.select(
                    "source", pl.col(idc).alias("id"), pl.col("record_hash").bin.head(INDEX2_HASH_HEX // 2).alias("hash_prefix"),
                    "version", "_day", "_slot")
            by_chunk = {name: piece.partition_by(["_day", "_slot"], maintain_order=True, include_key=False, as_dict=True)
                        for name, piece in pieces.items()}
            for key in by_chunk["meta"]:
                day, slot = key
                assert isinstance(day, int) and isinstance(slot, int)
                jobs.append((kind, *_chunk_names(day, slot, archive.config.chunk_seconds),
                             {name: chunks[key] for name, chunks in by_chunk.items()}))
        # archive-format.md, "Keys": a fresh data key per partition this batch writes, and one for its index
        index_key_id = (INDEX_KEY_KIND, batch_dir_name(seq))
        wanted = list(dict.fromkeys([(kind, partition) for kind, partition, _c, _p in jobs] + [index_key_id]))
        issued = service.data_keys(stage.folder.name, seq, wanted)
        for (kind, partition), (dek, wrapped) in issued.items():
            data_keys[(kind, partition)] = dek
            key_file = key_file_bytes(wrapped)
            write_file(stage.data_key(kind, partition), key_file)
            partition_keys.append({"kind": kind, "partition": partition,
                                   "path": layout.relative(final.data_key(kind, partition)),
                                   "sha256": _crypto.sha256_hex(key_file)})

        index_dek = data_keys[index_key_id]

        def seal_chunk(job: tuple[str, str, str, dict[str, pl.DataFrame]]) -> dict[str, Any]:
            kind, partition, chunk, pieces = job
            stored = pieces["meta"]
            sealed: list[tuple[str, bytes]] = []
            for name in kind_parts(kind):
                frame_part = pieces[name]
                key = chunk_key(data_keys[(kind, partition)], archive_id=archive.archive_id, kind=kind,
                                partition=partition, chunk=chunk, part=name)
                sealed.append((name, _crypto.seal(key, _parquet_bytes(frame_part),
                                                  aad=chunk_aad(archive.archive_id, seq, kind, partition, chunk, name,
                                                                chunk_format))))
            start = datetime.strptime(f"{partition}{chunk}", "%Y-%m-%d%H%M%S").replace(tzinfo=timezone.utc)
            ts_min, ts_max = stored["ts"].min(), stored["ts"].max()
            assert isinstance(ts_min, datetime) and isinstance(ts_max, datetime)  # a chunk has rows, ts is Datetime
            entry: dict[str, Any] = {
                "kind": kind, "partition": partition, "chunk": chunk, "rows": stored.height, "start": format_ts(start),
                "end": format_ts(start + timedelta(seconds=archive.config.chunk_seconds)),
                "ts_min": format_ts(ts_min), "ts_max": format_ts(ts_max),
                "leaf_start": int(stored["leaf_index"][0]), "leaf_count": stored.height}
            if chunk_format == FORMAT_V1:
                parts = {}
                for name, blob in sealed:
                    write_file(stage.chunk_part(kind, partition, chunk, name), CHUNK_MAGIC + blob)
                    parts[name] = {"path": layout.relative(final.chunk_part(kind, partition, chunk, name)),
                                   "sha256": _crypto.sha256_hex(CHUNK_MAGIC + blob)}
                return {**entry, "parts": parts}
            # format 2: one file per key-release chunk; the chunk's dedup index rows are its last segment
            dedup_rows = pieces[INDEX_SEGMENT]
            key = index_segment_key(index_dek, archive.archive_id, kind, partition, chunk)
            sealed.append((INDEX_SEGMENT, _crypto.seal(key, _parquet_bytes(dedup_rows),
                                                       aad=chunk_aad(archive.archive_id, seq, kind, partition, chunk,
                                                                     INDEX_SEGMENT, FORMAT_V2))))
            blob = pack_chunk_file(sealed)
            write_file(stage.chunk_file(kind, partition, chunk), blob)
            return {**entry, "file": {"path": layout.relative(final.chunk_file(kind, partition, chunk)),
                                      "sha256": _crypto.sha256_hex(blob)},
                    "parts": [name for name, _ in sealed if name != INDEX_SEGMENT]}

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(jobs), desc="encrypting chunks", unit="chunk")
        with ThreadPoolExecutor(max_workers=SEAL_THREADS) as pool:
            # the Merkle root (a compiled call per tree level, merkle.py) is worked out beside the chunks
            root = pool.submit(merkle.root_of_record_hashes, pl.concat(leaf_hashes))
            for number, entry in enumerate(pool.map(seal_chunk, jobs)):
                chunk_entries.append(entry)
                if bar is not None:
                    bar.update(1)
                if number == len(jobs) // 2:
                    _crash_point("mid-chunks")
        if bar is not None:
            bar.close()
        index_entry: dict[str, Any] = {}
        if chunk_format == FORMAT_V1:
            index_frame = pl.concat(index_rows)
            index_blob = INDEX_MAGIC + _crypto.seal(index_dek, _parquet_bytes(index_frame),
                                                    aad=index_aad(archive.archive_id, seq))
            write_file(stage.index, index_blob)
            index_entry = {"index": {"path": layout.relative(final.index), "sha256": _crypto.sha256_hex(index_blob)}}
        data_keys.clear()  # nothing below needs a plain key
        _crash_point("before-manifest")
        all_ts = [e["ts_min"] for e in chunk_entries] + [e["ts_max"] for e in chunk_entries]
        body: dict[str, Any] = {
            "archive_id": archive.archive_id, "seq": seq, "batch_id": stage.folder.name, "created": format_ts(when),
            "actor": actor, "tool": f"investigator {__version__}", "sources": sources,
            "chunks": chunk_entries, "partition_keys": partition_keys, **index_entry,
            **({"chunk_format": chunk_format} if chunk_format != FORMAT_V1 else {}),
            "counts": {"messages": prepared["messages"].height if "messages" in prepared else 0,
                       "events": prepared["events"].height if "events" in prepared else 0,
                       "duplicates_skipped": duplicates, "new_versions": new_versions},
            "time_range": {"first": min(all_ts), "last": max(all_ts)},
            "merkle": {"algorithm": merkle.ALGORITHM, "leaves": leaf_count, "root": root.result()},
            "skipped": skipped, "prev_manifest": prev,
            **({"acquisition": acquisition.manifest_entry()} if acquisition is not None else {}),
        }
        manifest = service.commit(archive, batch_id=stage.folder.name, body=body, actor=actor, now=when)
        result.batch_seq = seq
        result.messages_added = body["counts"]["messages"]
        result.events_added = body["counts"]["events"]
        result.chunks = len(chunk_entries)
        result.manifest_digest = manifest.digest
        result.merkle_root = body["merkle"]["root"]
        return result


def commit_batch(archive: Archive, signer: ArchiveSigner, *, batch_id: str, body: dict[str, Any],
                 issued: IssuedBatch, actor: str, now: datetime) -> Manifest:
    """Check a staged batch against what was issued for it, sign its manifest, commit it, audit it.

    The caller holds the archive's write lock (the key server takes it for a remote ingest).
    Checked: the batch is the next one (seq, chain link to the last manifest) and the one the
    keys were issued for; every path the body lists is the committed batch's own file of that
    name; every partition key is one issued for this batch, and every partition a chunk writes
    and the index have one; every listed file is staged with its SHA-256 and nothing else is.
    Raises ArchiveError when another batch was committed meanwhile (ingest again), IntegrityError
    for anything else that does not check. Then: manifest written, the staging folder renamed
    to ``batches/NNNNNNNN`` (the one atomic step), the ingest audited and a checkpoint signed.
    """
    layout = archive.layout
    committed = archive.manifests()
    seq = len(committed) + 1
    prev = committed[-1].digest if committed else GENESIS
    if body.get("seq") != seq or body.get("prev_manifest") != prev or issued.seq != seq:
        raise ArchiveError(f"batch {seq} was committed by another ingest meanwhile; ingest again "
                           "(nothing of this attempt was committed)")
    if body.get("batch_id") != batch_id or body.get("archive_id") != archive.archive_id:
        raise IntegrityError("the manifest names another batch or archive", path=f"staging/{batch_id}")
    stage, final = layout.staged_batch(batch_id), layout.batch(seq)
    listed: dict[str, str] = {}

    def expect(entry: Any, path: Path) -> str:
        relative = layout.relative(path)
        if not isinstance(entry, dict) or entry.get("path") != relative or not isinstance(entry.get("sha256"), str):
            raise IntegrityError("a manifest entry names another file than its own", path=relative)
        listed[relative] = entry["sha256"]
        return entry["sha256"]

    chunk_format = int(body.get("chunk_format", FORMAT_V1))
    if chunk_format != archive.write_format():
        raise IntegrityError(f"the batch is written in chunk format {chunk_format}; this archive takes format "
                             f"{archive.write_format()} (investigator upgrade switches it)", path=f"staging/{batch_id}")
    try:
        keyed = set()
        for entry in body["partition_keys"]:
            kind, partition = str(entry["kind"]), str(entry["partition"])
            if expect(entry, final.data_key(kind, partition)) != issued.keys.get((kind, partition)):
                raise IntegrityError(f"data key {kind}/{partition} is not one the key service issued for this batch",
                                     path=layout.relative(final.data_key(kind, partition)))
            keyed.add((kind, partition))
        for chunk in body["chunks"]:
            kind, partition, name = str(chunk["kind"]), str(chunk["partition"]), str(chunk["chunk"])
            if (kind, partition) not in keyed:
                raise IntegrityError(f"chunk {kind}/{partition}/{name} has no data key of this batch",
                                     path=f"staging/{batch_id}")
            if chunk_format == FORMAT_V1:
                for part, entry in chunk["parts"].items():
                    expect(entry, final.chunk_part(kind, partition, name, str(part)))
            else:
                if not chunk["parts"] or any(p not in kind_parts(kind) for p in chunk["parts"]) or "meta" not in chunk["parts"]:
                    raise IntegrityError(f"chunk {kind}/{partition}/{name} lists unknown parts",
                                         path=f"staging/{batch_id}")
                expect(chunk["file"], final.chunk_file(kind, partition, name))
        if chunk_format == FORMAT_V1:
            expect(body["index"], final.index)
        elif "index" in body:
            raise IntegrityError("a format-2 batch has no separate index file", path=f"staging/{batch_id}")
    except (KeyError, TypeError, AttributeError, ValueError, ConfigError) as exc:
        raise IntegrityError("the staged manifest is malformed", path=f"staging/{batch_id}") from exc
    if (INDEX_KEY_KIND, batch_dir_name(seq)) not in keyed:
        raise IntegrityError("the batch's index has no index key of this batch", path=f"staging/{batch_id}")
    present = {layout.relative(final.folder / p.relative_to(stage.folder)): p
               for p in stage.folder.rglob("*") if p.is_file() and p != stage.unsigned_manifest}
    for relative in sorted(set(present) | set(listed)):
        path = present.get(relative)
        if path is None or relative not in listed or path.is_symlink() or _crypto.sha256_file(path) != listed[relative]:
            raise IntegrityError("staged file missing, unlisted or not matching the manifest", path=relative)
    # every staged file was fsynced as it was written; their folders' entries are made durable here, deepest first,
    # before the manifest that makes the batch exist (POSIX promises a new name survives a crash only once its
    # folder is fsynced; a journalling file system's ordering is not relied on)
    for folder in sorted({d for p in present.values() for d in p.parents if d.is_relative_to(stage.folder)
                          and d != stage.folder}, key=lambda d: len(d.parts), reverse=True):
        fsync_dir(folder)
    manifest = Manifest.build(body, signer)
    stage.unsigned_manifest.unlink(missing_ok=True)
    write_file(stage.manifest, manifest.file_bytes)
    fsync_dir(stage.folder)
    _crash_point("before-commit")
    layout.batches_dir.mkdir(exist_ok=True)
    os.rename(stage.folder, final.folder)
    fsync_dir(layout.batches_dir)
    _crash_point("after-commit")
    _audit_ingest(archive, manifest, actor=actor, now=now)
    archive.audit.checkpoint(signer, archive_id=archive.archive_id, now=now)
    return manifest


def _json_bytes(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, sort_keys=True) + "\n").encode()


def _audit_ingest(archive: Archive, manifest: Manifest, *, actor: str, now: datetime | None,
                  recovered: bool = False) -> None:
    counts = manifest.body["counts"]
    details = {"batch": manifest.seq, "manifest_sha256": manifest.digest, "merkle_root": manifest.body["merkle"]["root"],
               "messages": counts["messages"], "events": counts["events"],
               "duplicates": counts["duplicates_skipped"], "new_versions": counts["new_versions"],
               "skipped": len(manifest.body.get("skipped", [])),
               "sources": [{"name": s.get("name"), "sha256": s.get("sha256")} for s in manifest.body["sources"]]}
    if recovered:
        details["recovered"] = True
    archive.audit.append(actor, "ingest", f"batch {manifest.seq}", details, now=now)


def record_unaudited_batches(archive: Archive, *, actor: str) -> int:
    """Audit committed batches whose audit entry was lost to a crash (call under the write lock)."""
    audited = audited_manifest_digests(archive)
    missing = [m for m in archive.manifests() if m.digest not in audited]
    for manifest in missing:
        _audit_ingest(archive, manifest, actor=actor, now=None, recovered=True)
    return len(missing)


__all__ = ["DedupIndex", "IngestResult", "IngestService", "IssuedBatch", "LocalIngest", "commit_batch", "ingest_frames",
           "ingest_paths", "lookup_in_index"]
