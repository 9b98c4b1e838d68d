"""The loader's unit of work: release one group's keys -> decrypt -> check -> filter -> partial frames.

    >>> keys = TicketKeys(service, ticket)                                                     # doctest: +SKIP
    >>> window = (pl.col("ts") >= ticket.start) & (pl.col("ts") < ticket.end)                  # doctest: +SKIP
    >>> with ThreadPoolExecutor(2) as pool:                                                    # doctest: +SKIP
    ...     frames, stats = scan_chunks(archive, entries, keys, ("meta", "content"), window, pool)

:func:`scan_chunks` is a function of its arguments: it mutates nothing and
returns its frames and its :class:`LoadStats`. Both of the loader's paths use
it (:class:`investigator.access.case.Case`: the eager path through
:func:`iter_groups`, its group-by-group form, which parses a group on a thread
of its own while the next group is decrypted; the lazy path once per group as
it streams), and the case adds the stats up.

Keys come from a :class:`KeySource` (:class:`TicketKeys` for the person's case,
:class:`ProcessTicketKeys` for a process holding a process ticket), asked for one group of chunks at a time,
in order; the first refusal stops the scan (nothing partial is returned, and no
later group's keys are asked for). ``executor`` is anything with
``concurrent.futures.Executor.map``: it decrypts the chunk parts of a group
(a thread pool in the loader; the builtin ``map`` in one thread). The
arguments are plain values (an Archive, chunk entries, part names, a Polars
expression), so a distributed scan can also map ``scan_chunks`` itself over
groups of entries, each worker asking the key service for its own group's keys
through a key source of its own.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import polars as pl

from investigator.access.keyservice import ChunkRef, KeyService, Ticket
from investigator.errors import ConfigError, IntegrityError
from investigator.schema import kind_parts
from investigator.textnorm import ensure_normalized
from investigator.vault.manifest import ChunkEntry
from investigator.vault.store import Archive, read_parts

# Keys are asked for a bounded number of chunks at a time: a long load never
# holds the keys of the whole window at once, and a key server that goes away
# mid-load stops it at the next group (with an error, never partial data).
KEY_BATCH = 128


class KeySource(Protocol):
    """Releases the keys of one group of chunk parts: exactly ``refs``, or raises (PolicyDenied, KeyServiceError)."""

    def release(self, refs: Sequence[ChunkRef]) -> dict[ChunkRef, bytes]: ...


class Executor(Protocol):
    """The part of ``concurrent.futures.Executor`` a scan uses: an ordered ``map``."""

    def map(self, fn: Callable[..., Any], /, *iterables: Iterable[Any]) -> Iterator[Any]: ...


@dataclass(frozen=True)
class TicketKeys:
    """A key service (the embedded gate or the key-server client) bound to one case ticket: a KeySource.

    ``now`` is the frozen clock of tests and reproduced reports; the key server
    judges by its own clock whatever is passed.
    """

    service: KeyService
    ticket: Ticket
    now: datetime | None = None

    def release(self, refs: Sequence[ChunkRef]) -> dict[ChunkRef, bytes]:
        return self.service.release(self.ticket, refs, now=self.now)


class ProcessKeyService(Protocol):
    """A key-server client that redeems process tickets (``RemoteKeyService``)."""

    def release_for_process(self, token: str, refs: Sequence[ChunkRef]) -> dict[ChunkRef, bytes]: ...


@dataclass(frozen=True)
class ProcessTicketKeys:
    """A key-server client presenting a process ticket: the KeySource of a process that holds no personal key.

    A report kernel or a Dask worker builds one from the token it was given
    (:mod:`investigator.access.process_ticket`); the key server judges every request
    against the ticket's bound chunk set, expiry and grant. The repr hides the token.
    """

    service: ProcessKeyService
    token: str = field(repr=False)

    def release(self, refs: Sequence[ChunkRef]) -> dict[ChunkRef, bytes]:
        return self.service.release_for_process(self.token, refs)


@dataclass(frozen=True)
class LoadStats:
    """What loads touched (for tests, benchmarks and case.info()); add two with ``+``."""

    keys_released: int = 0
    chunks_decrypted: int = 0
    rows_read: int = 0
    chunk_ids: frozenset[str] = field(default_factory=frozenset)

    def __add__(self, other: LoadStats) -> LoadStats:
        return LoadStats(self.keys_released + other.keys_released, self.chunks_decrypted + other.chunks_decrypted,
                         self.rows_read + other.rows_read, self.chunk_ids | other.chunk_ids)


def scan_chunks(archive: Archive, entries: Sequence[ChunkEntry], key_source: KeySource, parts: Sequence[str],
                row_filter: pl.Expr, executor: Executor, *, group_size: int = KEY_BATCH,
                normalize: bool = True) -> tuple[list[pl.DataFrame], LoadStats]:
    """Decrypt the granted ``parts`` of ``entries`` (one kind), ``group_size`` chunks at a time.

    For each group, in order: ask ``key_source`` for the keys of its parts,
    decrypt them on ``executor``, check the rows against the manifests' leaf
    ranges, add ``chunk_id``, keep the rows ``row_filter`` selects (the grant's
    window and scope) and add ``text_norm`` where there is text (``normalize=False``:
    the caller normalizes the frames it joins in one call, :func:`searchable`, which
    costs one build of the normalization automaton instead of one per group). Returns
    one frame per group (possibly empty), rows in file order, and the stats.

    Raises whatever the key source raises (PolicyDenied, KeyServiceError) at the
    first group it refuses, asking for no later group's keys; IntegrityError
    for a chunk that does not authenticate or does not match its manifest;
    ConfigError for entries of several kinds or parts without ``meta``.
    """
    frames: list[pl.DataFrame] = []
    stats = LoadStats()
    for frame, group_stats in iter_groups(archive, entries, key_source, parts, row_filter, executor,
                                          group_size=group_size, normalize=normalize):
        frames.append(frame)
        stats += group_stats
    return frames, stats


def iter_groups(archive: Archive, entries: Sequence[ChunkEntry], key_source: KeySource, parts: Sequence[str],
                row_filter: pl.Expr, executor: Executor, *, group_size: int = KEY_BATCH, normalize: bool = True,
                parser: ThreadPoolExecutor | None = None) -> Iterator[tuple[pl.DataFrame, LoadStats]]:
    """:func:`scan_chunks` one group at a time: yields each group's (frame, stats), in order.

    With ``parser`` (a one-thread pool), a group's Parquet parse, manifest checks and filter run
    there while the next group's keys are released and its chunks read and decrypted on
    ``executor``, so both cores work (parsing is as costly as reading and decrypting; each
    releases the GIL for most of its time). Keys are still asked for group by group, in order,
    and a refusal stops the scan before any later group's keys are asked for; a group whose
    parse fails its manifest check raises after the next group's keys (inside the same grant)
    were released. Raises as :func:`scan_chunks`, at the group that failed; nothing of the
    groups after it is yielded.
    """
    if group_size < 1:
        raise ConfigError(f"group_size must be at least 1, not {group_size}")
    kinds = {e.kind for e in entries}
    if len(kinds) > 1:
        raise ConfigError(f"scan_chunks reads one kind at a time, not {', '.join(sorted(kinds))}")
    pending: Future[tuple[pl.DataFrame, LoadStats]] | None = None
    try:
        for first in range(0, len(entries), group_size):
            opened = _decrypt_group(archive, entries[first:first + group_size], key_source, parts, executor)
            if parser is None:
                yield _finish_group(opened, row_filter, normalize)
                continue
            following = parser.submit(_finish_group, opened, row_filter, normalize)
            if pending is not None:
                done, pending = pending, None
                yield done.result()
            pending = following
        if pending is not None:
            done, pending = pending, None
            yield done.result()
    finally:
        if pending is not None:  # stopped early (an error, or the caller closed the generator): drop the rest
            pending.cancel()


@dataclass(frozen=True)
class _Opened:
    """A group after key release and decryption: what :func:`_finish_group` parses."""

    kind: str
    group: Sequence[ChunkEntry]
    wanted: list[str]
    jobs: list[tuple[ChunkEntry, str]]
    plains: list[bytes]
    stats: LoadStats


def detached(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` copied into buffers of its own (a round trip through uncompressed Arrow IPC in memory).

    Polars' string columns are views into shared buffers: a few rows filtered out of a decrypted
    group still hold the whole group's text alive. A lazy query that keeps a handful of rows per
    group would then grow with the window, not with its result (~1 MB per group of 32 hourly
    chunks, measured in benchmarks/bench_loader.py). The copy costs in proportion to ``frame``.
    """
    if frame.width == 0:
        return frame
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="uncompressed")
    buffer.seek(0)
    return pl.read_ipc(buffer)


def searchable(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``text_norm``, the search form of the text, to granted rows (once per load, in Polars).

    Normalizing per load rather than storing it at ingest keeps the archive
    small; the analysis functions reuse the column for every query. A
    ``text_norm`` stored by an older archive (no ``text_norm_version``, or
    another version) is recomputed, never passed on as it is.
    """
    if "text" in frame.columns:
        return ensure_normalized(frame)
    return frame


def _decrypt_group(archive: Archive, group: Sequence[ChunkEntry], key_source: KeySource, parts: Sequence[str],
                   executor: Executor) -> _Opened:
    kind = group[0].kind
    wanted = [p for p in kind_parts(kind) if p in parts]
    if "meta" not in wanted:
        raise ConfigError(f"a scan of {kind} needs the 'meta' part (it holds ts and the leaf order)")
    # each batch encrypts a chunk under its own data key: the ref names the batch (archive-format.md, "Keys")
    refs = sorted({ChunkRef(e.kind, e.partition, e.chunk, p, e.batch_seq) for e in group for p in wanted})
    keys = key_source.release(refs)
    if set(keys) != set(refs):
        raise IntegrityError("the key service answered with other keys than were asked for")
    # one executor job per chunk: a format-2 chunk is one file, read and checked once for all its granted parts
    part_keys = [{p: keys[ChunkRef(kind, e.partition, e.chunk, p, e.batch_seq)] for p in wanted if p in e.part_names}
                 for e in group]
    opened = list(executor.map(_open_chunk, [archive] * len(group), list(group), part_keys))
    jobs = [(e, p) for e, plain in zip(group, opened) for p in plain]
    plains = [data for plain in opened for data in plain.values()]
    stats = LoadStats(keys_released=len(keys), chunks_decrypted=len(group), rows_read=sum(e.rows for e in group),
                      chunk_ids=frozenset(e.chunk_id for e in group))
    return _Opened(kind, group, wanted, jobs, plains, stats)


def _finish_group(opened: _Opened, row_filter: pl.Expr, normalize: bool) -> tuple[pl.DataFrame, LoadStats]:
    """Parse a decrypted group, check it against its manifests, keep the granted rows (and normalize them)."""
    frame = _assemble(opened.kind, opened.group, opened.wanted, opened.jobs, opened.plains).filter(row_filter)
    return (searchable(frame) if normalize else frame), opened.stats


def _open_chunk(archive: Archive, entry: ChunkEntry, part_keys: dict[str, bytes]) -> dict[str, bytes]:
    """One executor job: authenticate and decrypt one chunk's granted parts (module level, so it pickles)."""
    return archive.open_parts(entry, part_keys)


def _assemble(kind: str, group: Sequence[ChunkEntry], parts: Sequence[str],
              jobs: Sequence[tuple[ChunkEntry, str]], plains: Sequence[bytes]) -> pl.DataFrame:
    """Parse each part kind in one read, check it against the manifests, join the parts, add ``chunk_id``."""
    rows = sum(e.rows for e in group)
    frame: pl.DataFrame | None = None
    for part in parts:
        texts = [plain for (_, p), plain in zip(jobs, plains) if p == part]
        piece = read_parts(texts, what=f"{kind} {part} parts")
        if piece.height != rows:
            raise IntegrityError(f"{kind} {part} parts hold {piece.height} rows; the manifests list {rows}")
        if frame is None:
            # Each file's rows, in file order, must be exactly its manifest's leaf range:
            # this checks per-file row counts and the order the chunk ids below rely on.
            expected = pl.DataFrame({"s": [e.leaf_start for e in group], "n": [e.rows for e in group]}).select(
                pl.int_ranges("s", pl.col("s") + pl.col("n")).explode().alias("leaf_index"))["leaf_index"]
            if not piece["leaf_index"].cast(pl.Int64).equals(expected.cast(pl.Int64)):
                raise IntegrityError(f"{kind} chunk rows differ from their manifests' leaf ranges")
            frame = piece
        else:
            if not piece["leaf_index"].equals(frame["leaf_index"]):
                raise IntegrityError(f"{kind} {part} parts do not line up with their meta parts")
            frame = frame.hstack(piece.drop("leaf_index"))
    assert frame is not None  # parts starts with meta (checked by the caller)
    # rows come in file order, so each entry's chunk id repeats for its row count
    ids = pl.DataFrame({"chunk_id": [f"{e.batch_seq}/{e.chunk_id}" for e in group], "n": [e.rows for e in group]})
    return frame.with_columns(ids.select(pl.col("chunk_id").repeat_by("n")).explode("chunk_id")["chunk_id"])
