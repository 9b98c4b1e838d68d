"""The scan seam on Dask: keys -> fetch -> decrypt -> filter / search -> partial result, per chunk group, on workers.

    >>> from dask.distributed import Client
    >>> client = Client("tls://scheduler:8786", security=cluster_security("/etc/investigator/dask", "client"))  # doctest: +SKIP
    >>> store = ObjectStore("s3://evidence/case-archive", endpoint="https://s3.example", ...)               # doctest: +SKIP
    >>> scan = DaskScan(client, store=store, cafile="keyserver-ca.pem")                                     # doctest: +SKIP
    >>> case.messages(executor=scan)                       # the same frame as case.messages()              # doctest: +SKIP
    >>> case.search("加班费 OR 报销", executor=scan)          # the same hits as case.search(...)              # doctest: +SKIP

A case opened through the key server issues a process ticket for the scan
(:meth:`investigator.access.case.Case.process_ticket`: bound to the grant, the person and the
case's chunk set, short-lived, revoked when the scan ends). Each task is one group of chunk
entries; the worker that runs it opens the archive where it lies (:class:`ObjectStore`, read in
place), checks the entries against the manifests it verified itself, and asks the key server for
the group's keys with the ticket (:class:`investigator.access.scan.ProcessTicketKeys`): the key
server judges and audits every request, the scheduler sees neither keys nor the ticket (the
scan's spec goes to the workers directly, ``scatter(direct=True)``), and the client only combines
the partial frames, in group order. No home-made scheduling: a task of a worker that dies is
re-run by Dask elsewhere, and results are taken once per group, so nothing is counted twice or
missed (checked: each group's chunk ids must come back exactly once).

Before anything is sent, :func:`check_cluster` fails closed: the scheduler must be reached over
TLS (or on loopback, for tests and one machine), and every worker must keep its data in memory
only (spill to disk off: :data:`WORKER_CONFIG`), so no plaintext is ever written in the cluster.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import polars as pl

from investigator.access.keyservice import ChunkRef
from investigator.access.keyserver import RemoteKeyService
from investigator.access.scan import KeySource, LoadStats, ProcessTicketKeys, scan_chunks
from investigator.analysis.search import search as search_frame
from investigator.errors import ConfigError, IntegrityError, PolicyDenied
from investigator.vault.manifest import ChunkEntry
from investigator.vault.remote import ObjectStore, RemoteArchive
from investigator.vault.store import Archive

GROUP_SIZE = 32  # chunk entries per task: one key request, a few MB of Parquet
# Dask settings every worker must run with (dask config on the worker hosts; the LocalCluster of the tests
# sets them too): data is kept in memory only. Spilling would write task results, i.e. granted plaintext,
# to the worker's disk. Under memory pressure a worker pauses, and past "terminate" its nanny restarts it;
# its tasks are then re-run elsewhere.
WORKER_CONFIG: dict[str, Any] = {
    "distributed.worker.memory.target": False,
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.pause": 0.85,
    "distributed.worker.memory.terminate": 0.95,
}
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_ARCHIVES: dict[ObjectStore, tuple[RemoteArchive, frozenset[ChunkEntry], int]] = {}
_ARCHIVES_LOCK = threading.Lock()
FETCH_THREADS = 8  # chunk parts fetched and decrypted at once per task: GETs wait on the store, not the CPU
_POOL: ThreadPoolExecutor | None = None


def _fetch_pool() -> ThreadPoolExecutor:
    """The worker process's pool for a group's parts (GETs and AES-GCM release the GIL)."""
    global _POOL
    with _ARCHIVES_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="investigator-fetch")
        return _POOL


@dataclass(frozen=True)
class ScanSpec:
    """What every task of one scan shares; sent to the workers directly. The repr hides the ticket."""

    store: ObjectStore
    archive_id: str
    keyserver: str
    cafile: str | None
    token: str = field(repr=False)
    kind: str = "messages"
    parts: tuple[str, ...] = ("meta",)
    row_filter: pl.Expr = field(default_factory=lambda: pl.lit(True))
    columns: tuple[str, ...] = ()
    query: str | None = None
    search_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Partial:
    """One group's result from a worker: the granted (or matching) rows, the stats, who ran it."""

    index: int
    frame: pl.DataFrame
    stats: LoadStats
    granted: int  # granted rows before a search (the local path's ``searched``)
    worker: str
    seconds: float


@dataclass(frozen=True)
class ScanReport:
    """What the last scan did: groups, which worker ran how many, key requests, wall time (no content)."""

    groups: int
    workers: dict[str, int]
    key_requests: int
    chunks: int
    rows_read: int
    granted: int
    seconds: float
    task_seconds: float = 0.0  # the tasks' own time, summed over workers (wall x workers when they never wait)


def _archive_on_worker(store: ObjectStore, archive_id: str) -> tuple[RemoteArchive, frozenset[ChunkEntry]]:
    """The worker's view of the archive (opened once per process), with the chunk entries its manifests list."""
    with _ARCHIVES_LOCK:
        cached = _ARCHIVES.get(store)
        archive = cached[0] if cached else RemoteArchive.open(store)
        if archive.archive_id != archive_id:
            raise IntegrityError("the object store holds another archive than the case's")
        manifests = archive.manifests()  # signatures and chain verified here, on the worker
        if cached is None or cached[2] != len(manifests):
            cached = (archive, frozenset(archive.chunk_entries()), len(manifests))
            _ARCHIVES[store] = cached
    return archive, cached[1]


def scan_group(spec: ScanSpec, index: int, group: Sequence[ChunkEntry]) -> Partial:
    """One task, on a worker: this group's keys from the key server (with the ticket) -> fetch -> decrypt -> filter.

    Raises IntegrityError for an entry the archive's manifests do not list (a task cannot make a
    worker read what the archive does not hold), and whatever the scan raises: PolicyDenied when
    the key server refuses the group (audited there), KeyServiceError, IntegrityError.
    """
    started = time.perf_counter()
    archive, known = _archive_on_worker(spec.store, spec.archive_id)
    if any(entry not in known for entry in group):
        raise IntegrityError("a task named a chunk the archive's verified manifests do not list")
    service = RemoteKeyService(spec.keyserver, cafile=spec.cafile, archive_id=spec.archive_id)
    keys = _Patient(ProcessTicketKeys(service, spec.token))
    frames, stats = scan_chunks(archive, group, keys, spec.parts, spec.row_filter, _fetch_pool(),
                                group_size=max(1, len(group)))
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    frame = frame.select([c for c in spec.columns if c in frame.columns])
    granted = frame.height
    if spec.query is not None:
        frame = search_frame(frame, spec.query, **dict(spec.search_options))
    return Partial(index, frame, stats, granted, _worker_address(), time.perf_counter() - started)


RATE_RETRIES = 6  # a worker told to slow down (429) waits 0.25, 0.5, 1, 2, 4, 8 s before giving up


@dataclass(frozen=True)
class _Patient:
    """A key source that waits and asks again when the key server says "too many requests" (and only then)."""

    keys: KeySource

    def release(self, refs: Sequence[ChunkRef]) -> dict[ChunkRef, bytes]:
        for attempt in range(RATE_RETRIES + 1):
            try:
                return self.keys.release(refs)
            except PolicyDenied as exc:
                if not exc.rule.endswith("rate_limit") or attempt == RATE_RETRIES:
                    raise
                time.sleep(0.25 * 2 ** attempt)
        raise AssertionError("unreachable")


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"


def _worker_memory(dask_worker: Any) -> dict[str, Any]:
    """Run on each worker by :func:`check_cluster`: where its task results live."""
    manager = dask_worker.memory_manager
    return {"data": type(dask_worker.data).__name__, "target": manager.memory_target_fraction,
            "spill": manager.memory_spill_fraction}


def check_cluster(client: Any, *, allow_plain_loopback: bool = True) -> dict[str, dict[str, Any]]:
    """Fail closed before a scan: TLS to the scheduler (plain tcp on loopback only) and no worker that spills.

    Returns the workers' memory settings. Raises ConfigError naming the worker and the setting.
    """
    address = str(client.scheduler.address)
    scheme, _, rest = address.partition("://")
    host = urlsplit(f"{scheme}://{rest}").hostname or ""
    if scheme != "tls" and not (scheme in ("tcp", "inproc") and allow_plain_loopback
                                and (scheme == "inproc" or host in _LOOPBACK)):
        raise ConfigError(f"the Dask scheduler at {address} is not reached over TLS",
                          hint="use tls:// with the certificates the admin made (docs/admin.md, 'Dask workers')")
    settings = client.run(_worker_memory)
    if not settings:
        raise ConfigError("the Dask cluster has no workers")
    for worker, memory in sorted(settings.items()):
        if memory["target"] is not False or memory["spill"] is not False or memory["data"] != "dict":
            raise ConfigError(f"Dask worker {worker} may spill task results to disk",
                              hint="set distributed.worker.memory.target and .spill to false on every worker "
                                   "(investigator.access.distributed.WORKER_CONFIG)")
    return dict(settings)


def _groups(entries: Sequence[ChunkEntry], size: int) -> list[tuple[ChunkEntry, ...]]:
    return [tuple(entries[first:first + size]) for first in range(0, len(entries), size)]


class DaskScan:
    """The Dask executor of a case's scans: ``case.messages(executor=DaskScan(client, store=...))``.

    ``store`` is where the workers read the archive (default: the case's folder as a
    ``file://`` store, for workers on the same host or a shared file system); ``cafile`` the
    CA the workers trust for an ``https`` key server; ``group_size`` the chunk entries per
    task. ``last`` is the :class:`ScanReport` of the latest scan.
    """

    def __init__(self, client: Any, *, store: ObjectStore | None = None, cafile: str | None = None,
                 group_size: int = GROUP_SIZE) -> None:
        if group_size < 1:
            raise ConfigError(f"group_size must be at least 1, not {group_size}")
        self.client = client
        self.store = store
        self.cafile = cafile
        self.group_size = group_size
        self.last: ScanReport | None = None

    def __repr__(self) -> str:
        return f"DaskScan(scheduler={str(self.client.scheduler.address)!r}, store={self.store!r})"

    def store_for(self, archive: Archive) -> ObjectStore:
        if self.store is not None:
            return self.store
        if isinstance(archive, RemoteArchive):
            return archive.store
        return ObjectStore("file://" + str(Path(archive.root).resolve()))

    def run(self, spec: ScanSpec, entries: Sequence[ChunkEntry]) -> list[Partial]:
        """Map :func:`scan_group` over ``entries`` in groups; the partials in group order, each group once.

        Raises ConfigError (:func:`check_cluster`), and the first task's error (PolicyDenied,
        KeyServiceError, IntegrityError) as the workers raised it; IntegrityError if a group came
        back with other chunks than it was given.
        """
        check_cluster(self.client)
        started = time.perf_counter()
        groups = _groups(entries, self.group_size)
        if not groups:
            self.last = ScanReport(0, {}, 0, 0, 0, 0, 0.0, 0.0)
            return []
        run = uuid.uuid4().hex[:12]
        # the spec (with the ticket) goes to the workers directly, not through the scheduler
        [shared] = self.client.scatter([spec], broadcast=True, direct=True, hash=False)
        futures = [self.client.submit(scan_group, shared, i, group, key=f"investigator-scan-{run}-{i:06d}",
                                      pure=False, retries=0) for i, group in enumerate(groups)]
        try:
            # straight from the workers: the hits (plaintext) never pass through the scheduler
            partials: list[Partial] = self.client.gather(futures, direct=True)
        finally:
            self.client.cancel([*futures, shared])
        for i, (group, partial) in enumerate(zip(groups, partials)):
            if partial.index != i or partial.stats.chunk_ids != frozenset(e.chunk_id for e in group) \
                    or partial.stats.chunks_decrypted != len(group):
                raise IntegrityError("a scan task returned other chunks than it was given")
        workers: dict[str, int] = {}
        for partial in partials:
            workers[partial.worker] = workers.get(partial.worker, 0) + 1
        self.last = ScanReport(len(groups), workers, len(groups), sum(p.stats.chunks_decrypted for p in partials),
                               sum(p.stats.rows_read for p in partials), sum(p.granted for p in partials),
                               time.perf_counter() - started, sum(p.seconds for p in partials))
        return partials


def as_dask_scan(executor: Any) -> DaskScan:
    """``executor`` as a :class:`DaskScan`: itself, or a ``dask.distributed.Client`` wrapped with the defaults."""
    if isinstance(executor, DaskScan):
        return executor
    if type(executor).__module__.startswith("distributed") and hasattr(executor, "submit"):
        return DaskScan(executor)
    raise ConfigError(f"executor must be a dask.distributed Client or a DaskScan, not {type(executor).__name__}")


def cluster_security(folder: str | Path, role: str) -> Any:
    """Dask TLS settings (``distributed.Security``) from the certificates the admin made in ``folder``.

    ``role`` is ``scheduler``, ``worker`` or ``client``; the files are ``ca.pem``,
    ``<role>.pem`` and ``<role>-key.pem`` (docs/admin.md, "Dask workers"). Encryption is
    required: a peer without a certificate the CA signed is refused. ConfigError for a
    missing file or an unknown role.
    """
    from distributed.security import Security

    if role not in ("scheduler", "worker", "client"):
        raise ConfigError(f"unknown Dask role {role!r} (scheduler, worker or client)")
    base = Path(folder)
    files = {"ca": base / "ca.pem", "cert": base / f"{role}.pem", "key": base / f"{role}-key.pem"}
    for name, path in files.items():
        if not path.is_file():
            raise ConfigError(f"the Dask {role} TLS {name} file {path.name} is missing in {base}",
                              hint="docs/admin.md, 'Dask workers', makes them")
    return Security(tls_ca_file=str(files["ca"]), require_encryption=True,
                    **{f"tls_{role}_cert": str(files["cert"]), f"tls_{role}_key": str(files["key"])})
