"""Open a case: grant -> identity check -> key release -> decrypt -> filter -> Polars.

    >>> import investigator
    >>> case = investigator.open_case("demo-archive", grant="GRANT-ID", person="sunli", totp="123456")  # doctest: +SKIP
    >>> case.messages().height                                                                         # doctest: +SKIP
    57

The loader is the one door between the vault side (keys, archive, grants) and
the analysis side. It asks a key service (embedded or the key server) only for
the chunk-part keys that overlap the grant's window, decrypts those chunks,
authenticates each against the signed manifests, drops every row outside the
window ``[start, end)`` and outside the grant's scope, and keeps only the
granted fields. Frames are new objects: nothing is written back.

The per-group work (keys -> decrypt -> check -> filter) is
:func:`investigator.access.scan.scan_chunks`; the eager and the lazy path both
call it and add up the stats it returns.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, overload

import polars as pl

from investigator import _crypto
from investigator.access.client_auth import RequestSigner
from investigator.access.distributed import ScanSpec, as_dask_scan
from investigator.access.keyserver import RemoteKeyService
from investigator.access.keyservice import EmbeddedKeyService, KeyService, Ticket, unlock_archive
from investigator.access.process_ticket import DEFAULT_LIFETIME, ID_RE, decode
from investigator.access.scope import scope_filter
from investigator.access.scan import (KEY_BATCH, KeySource, LoadStats, ProcessTicketKeys, TicketKeys, detached,
                                      iter_groups, scan_chunks, searchable)
from investigator.authority.directory import DirectoryStore
from investigator.authority.grants import Grant, find_grant
from investigator.analysis.search import search as search_frame
from investigator.custody.registry import backend_of
from investigator.errors import ConfigError, ContentNotGranted, GrantInvalid, InvestigatorError
from investigator.schema import CONTENT_COLUMNS, PART_COLUMNS, format_ts, full_schema, id_field, kind_parts
from investigator.settings import DEFAULT_LANG, PASSPHRASE_ENV, Settings, normalize_lang
from investigator.textnorm import NORM_COLUMN, NORM_VERSION_COLUMN
from investigator.vault.audited_state import HostRecord
from investigator.vault.manifest import ChunkEntry
from investigator.vault.destruction import destroyed_partitions
from investigator.vault.store import Archive
from investigator.vault.tagstore import TagStore
from investigator.authority.identity import unlock_person_key

PROVENANCE_COLUMNS = ("chunk_id", "batch_seq", "leaf_index", "record_hash", "version")
THREADS = 2
LAZY_GROUP = 32  # chunks whose keys are asked for, decrypted and parsed together on the lazy path


def _order(kind: str, columns: Sequence[str]) -> list[str]:
    """Stable row order: time, then id (of the columns present)."""
    return [c for c in ("ts", id_field(kind)) if c in columns]


def _as_archive(archive: Archive | str | Path) -> Archive:
    return archive if isinstance(archive, Archive) else Archive.open(Path(archive))


def open_case(archive: Archive | str | Path, *, grant: Any = None, person: str | None = None,
              totp: str | None = None, session: str | None = None, monitor: str | None = None,
              monitor_totp: str | None = None, key_service: KeyService | None = None, keyserver: str | None = None,
              passphrase: str | None = None, cafile: str | None = None, signing_key: _crypto.SigningKey | None = None,
              process_ticket: str | None = None, key_passphrase: str | None = None,
              key_dir: str | Path | None = None, lang: str | None = None, now: datetime | None = None) -> "Case":
    """Open a case on ``archive`` under ``grant`` as ``person``, after an identity check.

    Or, in a process the person started (a report kernel, a Dask worker), from a
    ``process_ticket`` alone (:meth:`Case.process_ticket`): a read-only case whose keys the
    key server at ``keyserver`` (default $INVESTIGATOR_KEYSERVER) releases against the ticket;
    no personal key, code or passphrase is needed or read. ``grant`` and ``person``, when
    given, must be the ticket's.

    ``grant`` is a Grant, a grant file path or a grant id in the archive. The
    key service is, in order: ``key_service``; a key server at ``keyserver``
    (URL; default $INVESTIGATOR_KEYSERVER), which needs ``signing_key``, the
    person's unlocked personal key (or ``key_passphrase`` and ``key_dir`` to
    unlock it here with :func:`~investigator.authority.identity.unlock_person_key`):
    it signs every request; else the embedded service, unlocked with ``passphrase`` or
    $INVESTIGATOR_PASSPHRASE. With dual control, name the ``monitor`` (监控人)
    and pass their code as ``monitor_totp``. ``lang`` (``zh-CN`` or ``en``,
    else $INVESTIGATOR_LANG, else ``zh-CN``) is the case's user-interface
    language: widgets built on the case use it.

    This is an edge: it reads the environment for the arguments not given and
    passes values down. Raises GrantInvalid / GrantExpired, PolicyDenied,
    IdentityCheckFailed, KeyServiceError, WrongPassphrase or ConfigError; every
    outcome is audited.
    """
    settings = Settings.from_environ(os.environ)
    opened = _as_archive(archive)
    if process_ticket is not None:
        if any(v is not None for v in (totp, session, monitor, monitor_totp, passphrase, signing_key)):
            raise ConfigError("a case opened with a process ticket takes no code, session, passphrase or key",
                              hint="the process ticket is the whole credential; pass only the archive and the URL")
        return _open_process_case(opened, process_ticket, grant=grant, person=person, key_service=key_service,
                                  keyserver=keyserver or settings.keyserver, cafile=cafile,
                                  lang=normalize_lang(lang or settings.lang))
    if grant is None or person is None:
        raise ConfigError("open_case needs grant= and person= (or process_ticket=)")
    if not isinstance(grant, Grant):
        grant = _load_grant(opened, grant, person, now)
    keyserver = keyserver or settings.keyserver
    if key_service is None:
        if keyserver:  # the archive passphrase is never read on this path
            if signing_key is None and key_passphrase and person:
                signing_key = unlock_person_key(opened, person, key_passphrase, key_dir=key_dir)
            if signing_key is None:
                raise ConfigError("the key server accepts only requests signed with the person's personal key",
                                  hint="pass signing_key=unlock_person_key(archive, person, passphrase)")
            key_service = RemoteKeyService(keyserver, signer=RequestSigner(person, signing_key), cafile=cafile,
                                           archive_id=opened.archive_id)
        else:
            secret = passphrase or settings.passphrase
            if not secret and backend_of(opened) == "file":
                raise ConfigError("the embedded key service needs the archive passphrase",
                                  hint=f"set {PASSPHRASE_ENV}, pass passphrase=, or use keyserver='http://...'")
            # the archive's custody (key file, PKCS#11 token or OpenBao), its secrets from the edge
            secrets = settings.with_passphrase(secret)
            key_service = EmbeddedKeyService(opened, unlock_archive(opened, actor=person or "", purpose="open_case",
                                                                    secrets=secrets),
                                             record=HostRecord(settings.verified_dir))
    ticket = key_service.open(grant=grant, person=person, totp=totp, session=session, monitor=monitor,
                              monitor_totp=monitor_totp, now=now)
    return Case(opened, grant, ticket, key_service, now=now, lang=normalize_lang(lang or settings.lang))


def _load_grant(opened: Archive, grant: Any, person: str, now: datetime | None) -> Grant:
    """The grant ``grant`` names; an unknown or unreadable one is refused and audited (case.open, denied)."""
    try:
        return Grant.from_file(find_grant(opened, grant))
    except InvestigatorError as exc:
        # a notebook's refusals are audited like the key service's: an auditor sees the attempt
        opened.audit.append(person, "case.open", Path(str(grant)).name[:120],
                            {"rule": "grant.unknown", "reason": str(exc)}, outcome="denied", now=now)
        raise


def _open_process_case(opened: Archive, token: str, *, grant: Any, person: str | None,
                       key_service: KeyService | None, keyserver: str | None, cafile: str | None,
                       lang: str) -> "Case":
    """A read-only case from a process ticket: checked here against the archive's public key, judged by the server."""
    if key_service is None:
        if not keyserver:
            raise ConfigError("a process ticket is redeemed at the key server that issued it",
                              hint="pass keyserver='http://...' or set INVESTIGATOR_KEYSERVER")
        key_service = RemoteKeyService(keyserver, cafile=cafile, archive_id=opened.archive_id)
    if not hasattr(key_service, "release_for_process"):
        raise ConfigError("this key service cannot redeem process tickets (only the key server's client can)")
    ticket = decode(token, opened.signing_keys(), archive_id=opened.archive_id)
    loaded = grant if isinstance(grant, Grant) else Grant.from_file(find_grant(opened, ticket.grant_id))
    if loaded.id != ticket.grant_id or (person is not None and person != ticket.person):
        raise ConfigError(f"the process ticket is for grant {ticket.grant_id} and person {ticket.person}",
                          hint="leave grant= and person= out: the ticket names them")
    if loaded.hash != ticket.grant_hash:
        raise GrantInvalid(f"the archive's grant {loaded.id} differs from the one the process ticket was issued for")
    view = Ticket(token="", grant_id=ticket.grant_id, person=ticket.person, start=ticket.start, end=ticket.end,
                  parts=ticket.parts, expires=ticket.expires)
    keys = ProcessTicketKeys(key_service, token)  # type: ignore[arg-type]  # checked with hasattr above
    return Case(opened, loaded, view, key_service, lang=lang, key_source=keys, process=ticket.label)


class Case:
    """An opened case: read-only access to exactly the granted records.

    Use :meth:`messages`, :meth:`events` and :meth:`info`. The repr names the
    grant and the window, never content.
    """

    def __init__(self, archive: Archive, grant: Any, ticket: Ticket, key_service: KeyService, *,
                 now: datetime | None = None, lang: str = DEFAULT_LANG, key_source: KeySource | None = None,
                 process: str = "") -> None:
        # A frozen clock (tests, reproducing a report at its recorded time) for the
        # embedded service; the key server always judges by its own clock.
        self._now = now
        self.key_batch = KEY_BATCH
        self.archive = archive
        self.grant = grant
        self.ticket = ticket
        self._keys = key_service
        self.stats = LoadStats()
        self.lang = lang  # the user-interface language widgets on this case use (zh-CN or en)
        self._directory: Any = None
        # a case opened from a process ticket: its key source presents the ticket; ``process`` is its label
        self._key_source = key_source
        self.process = process

    def __repr__(self) -> str:
        via = f", process={self.process!r}" if self.process else ""
        return (f"Case(grant={self.grant.id!r}, case={self.grant.case!r}, person={self.person!r}{via}, "
                f"window=[{format_ts(self.start)}, {format_ts(self.end)}))")

    # --- processes the person starts -----------------------------------------------

    def process_ticket(self, label: str, *, lifetime: timedelta | float = DEFAULT_LIFETIME) -> str:
        """A short-lived process ticket for a process this person starts (a report kernel, a Dask worker).

        ``label`` names the process in the audit log (e.g. ``"report run complaint_investigation"``);
        ``lifetime`` (a timedelta or seconds; at most 2 h, never past the case ticket or the
        grant). Hand the token to the process in its environment, never as an argument or a
        parameter; it opens the case with ``open_case(archive, process_ticket=token,
        keyserver=url)`` and holds no personal key. Only a case opened through the key server
        can issue one (ConfigError otherwise). Raises PolicyDenied / GrantInvalid when the
        server refuses.
        """
        if self.process:
            raise ConfigError("a case opened with a process ticket cannot issue process tickets",
                              hint="ask the person whose case it is")
        if not isinstance(self._keys, RemoteKeyService):
            raise ConfigError("process tickets come from the key server; this case uses the embedded key service, "
                              "whose master keys would have to be handed to the process",
                              hint="open the case with keyserver='http://...' (or INVESTIGATOR_KEYSERVER)")
        span = lifetime if isinstance(lifetime, timedelta) else timedelta(seconds=float(lifetime))
        if span <= timedelta(0):
            raise ConfigError("a process ticket's lifetime must be positive")
        return str(self._keys.process_ticket(self.ticket, label, lifetime=span)["process_ticket"])

    def revoke_process_ticket(self, ticket: str) -> None:
        """End a process ticket (its token or its ``PT-...`` id) before its expiry. Only for key-server cases."""
        if self.process or not isinstance(self._keys, RemoteKeyService):
            raise ConfigError("only the person's key-server case can revoke its process tickets")
        ticket_id = ticket if ID_RE.match(ticket) else decode(ticket, self.archive.signing_keys(),
                                                               archive_id=self.archive.archive_id).id
        self._keys.revoke_process_ticket(ticket_id)

    def _keys_for_scan(self) -> KeySource:
        return self._key_source or TicketKeys(self._keys, self.ticket, self._now)

    # --- what the case is ---------------------------------------------------------

    @property
    def person(self) -> str:
        return self.ticket.person

    @property
    def key_service(self) -> KeyService:
        """The key service this case talks to (embedded or the key server)."""
        return self._keys

    @property
    def start(self) -> datetime:
        return self.ticket.start

    @property
    def end(self) -> datetime:
        return self.ticket.end

    @property
    def window(self) -> tuple[datetime, datetime]:
        return self.ticket.start, self.ticket.end

    @property
    def timezone(self) -> str:
        return self.archive.config.timezone

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.grant.fields)

    @property
    def scope(self) -> dict[str, list[str]]:
        return dict(self.grant.scope)

    @property
    def has_content(self) -> bool:
        return "content" in self.ticket.parts

    def directory(self) -> Any:
        """The org directory (people, identities, groups), loaded once."""
        if self._directory is None:
            self._directory = DirectoryStore(self.archive).load()
        return self._directory

    def tags(self) -> Any:
        """The case's tags and notes (stored beside the archive, audited; originals untouched)."""
        return TagStore(self.archive, case=self.grant.case, actor=self.person, after_write=self.changed)

    def changed(self, now: datetime | None = None) -> None:
        """The case's tags or saved searches changed: have the key service checkpoint the log, which first writes
        the next signed state head (issue #13, item 2), so the change is covered at once and cutting it later is
        caught. Raises AuditError (or the key server's refusal) when no checkpoint could be signed; the change
        itself is written and audited by then."""
        self._keys.checkpoint(now=self._now or now)

    def identities(self) -> dict[str, list[str]]:
        """person id -> every account id / name linked to them (for analysis filters)."""
        return self.directory().identities()

    def groups(self) -> dict[str, list[str]]:
        """group or department -> person ids (for analysis filters)."""
        return self.directory().groups()

    # --- reading ----------------------------------------------------------------------

    def _entries(self, kind: str) -> list[ChunkEntry]:
        start, end = format_ts(self.start), format_ts(self.end)
        gone = destroyed_partitions(self.archive)[0]  # crypto-shredded by retention (signed records): no keys left
        return [e for e in self.archive.chunk_entries(kind, overlapping=(start, end)) if (e.kind, e.partition) not in gone]

    def _parts(self, kind: str) -> tuple[str, ...]:
        """The parts of ``kind`` the ticket opens (meta always; content and attachments by the grant's fields)."""
        return tuple(p for p in kind_parts(kind) if p in self.ticket.parts)

    def _scope_filter(self, kind: str) -> pl.Expr | None:
        return scope_filter(self.scope, self.directory(), kind)

    def _row_filter(self, kind: str) -> pl.Expr:
        expr = (pl.col("ts") >= self.start) & (pl.col("ts") < self.end)
        scope = self._scope_filter(kind)
        return expr & scope if scope is not None else expr

    def _columns(self, kind: str, columns: Sequence[str] | None) -> list[str]:
        base = list(full_schema(kind))
        if kind == "messages":
            base.append("text_norm")
            hidden: set[str] = set()
            for part, cols in PART_COLUMNS.items():
                if part not in self.ticket.parts:
                    hidden.update(cols)
            base = [c for c in base if c not in hidden]
            if "text_norm" in base:  # its normalization version travels with it (textnorm.py)
                base.insert(base.index("text_norm") + 1, NORM_VERSION_COLUMN)
        base += list(PROVENANCE_COLUMNS)
        if columns is None:
            return base
        unknown = [c for c in columns if c not in base]
        if unknown:
            not_granted = [c for c in unknown if c in CONTENT_COLUMNS or c in ("text_norm", NORM_VERSION_COLUMN)]
            if not_granted:
                # a refusal like any other: the auditor sees a notebook asking for fields the grant lacks
                self.archive.audit.append(self.person, "load", self.grant.id,
                                          {"kind": kind, "rule": "grant.fields",
                                           "reason": f"column {not_granted[0]!r} is not granted"},
                                          outcome="denied", now=self._now)
                raise ContentNotGranted(f"column {not_granted[0]!r}")
            raise ConfigError(f"unknown column {unknown[0]!r}", hint=f"columns are: {', '.join(base)}")
        return list(columns)

    def _load(self, kind: str, columns: Sequence[str] | None, progress: bool | None = None) -> pl.DataFrame:
        wanted = self._columns(kind, columns)
        entries = self._entries(kind)
        row_filter = self._row_filter(kind)
        keys, parts = self._keys_for_scan(), self._parts(kind)
        pieces: list[pl.DataFrame] = []
        show = progress if progress is not None else len(entries) > 200
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(entries), desc=f"decrypting {kind}", unit="chunk")
        # text_norm is added once to the joined frame (one build of the normalization automaton per load,
        # not one per key batch), from the text kept until then
        normalized = NORM_COLUMN in wanted or NORM_VERSION_COLUMN in wanted
        keep = [*wanted, "text"] if normalized and "text" not in wanted else list(wanted)
        try:
            with ThreadPoolExecutor(max_workers=THREADS) as pool, ThreadPoolExecutor(max_workers=1) as parser:
                # A key batch at a time, keeping only the wanted columns of each: memory follows the
                # result, not the granted columns of the window. A batch is parsed (parser) while the
                # next one's keys are released and its chunks decrypted (pool).
                for frame, stats in iter_groups(self.archive, entries, keys, parts, row_filter, pool,
                                                group_size=self.key_batch, normalize=False, parser=parser):
                    self.stats += stats
                    if frame.height:
                        pieces.append(frame.select([c for c in keep if c in frame.columns]))
                    if bar is not None:
                        bar.update(stats.chunks_decrypted)
        finally:
            if bar is not None:
                bar.close()
        self._audit_load(kind, sum(p.height for p in pieces), len(entries), wanted)
        if not pieces:
            return self._empty(kind, wanted)
        frame = pl.concat(pieces, how="diagonal_relaxed")
        if normalized:
            frame = searchable(frame)
        frame = frame.select([c for c in wanted if c in frame.columns])
        if len({e.batch_seq for e in entries}) == 1:
            # one batch: its chunks are in time order and each is sorted by (ts, id) at ingest
            return frame
        return frame.sort(_order(kind, wanted))

    def _audit_load(self, kind: str, rows: int, chunks: int, columns: Sequence[str], *, lazy: bool = False,
                    executor: str = "") -> None:
        """Record what was read (counts and columns, never content)."""
        via: dict[str, Any] = {"process": self.process} if self.process else {}
        if executor:
            via["executor"] = executor
        self.archive.audit.append(self.person, "load", self.grant.id,
                                  {**via, "kind": kind, "rows": rows, "chunks": chunks, "lazy": lazy,
                                   "content": any(c in CONTENT_COLUMNS for c in columns)}, now=self._now)

    def record_search(self, query: str, *, mode: str, hits: int, searched: int) -> None:
        """Audit a search run on this case's rows (the widgets and templates call it).

        The query is the investigator's own input, kept (up to 200 characters) so
        an auditor can see what was looked for; message text never is.
        """
        via = {"process": self.process} if self.process else {}
        self.archive.audit.append(self.person, "search", self.grant.id,
                                  {**via, "query": query[:200], "mode": mode, "hits": hits, "searched": searched},
                                  now=self._now)

    def _empty(self, kind: str, wanted: Sequence[str]) -> pl.DataFrame:
        schema = {**full_schema(kind), "text_norm": pl.String(), NORM_VERSION_COLUMN: pl.UInt32(),
                  "chunk_id": pl.String(), "batch_seq": pl.Int64(), "leaf_index": pl.Int64(),
                  "record_hash": pl.String(), "version": pl.Int32()}
        return pl.DataFrame(schema={c: schema[c] for c in wanted if c in schema})

    @overload
    def messages(self, columns: Sequence[str] | None = None, lazy: Literal[False] = False, *,
                 progress: bool | None = None, executor: Any = None) -> pl.DataFrame: ...
    @overload
    def messages(self, columns: Sequence[str] | None = None, *, lazy: Literal[True],
                 progress: bool | None = None, executor: Any = None) -> pl.LazyFrame: ...
    @overload
    def messages(self, columns: Sequence[str] | None = None, lazy: bool = False, *,
                 progress: bool | None = None, executor: Any = None) -> pl.DataFrame | pl.LazyFrame: ...

    def messages(self, columns: Sequence[str] | None = None, lazy: bool = False, *,
                 progress: bool | None = None, executor: Any = None) -> pl.DataFrame | pl.LazyFrame:
        """The granted messages: rows with ``start <= ts < end`` in scope, granted fields only.

        ``lazy=True`` returns a LazyFrame that decrypts and filters chunk by chunk
        when collected, pushing your filters into each chunk, so memory follows
        the result rather than the window. ``executor`` (a ``dask.distributed``
        Client or an :class:`investigator.access.distributed.DaskScan`) runs the
        scan on Dask workers, each asking the key server itself: the same frame.
        Raises IntegrityError (tampered chunk: nothing is returned), PolicyDenied
        (key refused), KeyServiceError; ConfigError for a cluster that is not safe.
        """
        if executor is not None:
            if lazy:
                raise ConfigError("a Dask scan returns a frame: use lazy=False with executor=")
            return self._load_distributed("messages", columns, executor)[0]
        if lazy:
            return self._lazy("messages", columns)
        return self._load("messages", columns, progress=progress)

    @overload
    def events(self, columns: Sequence[str] | None = None, lazy: Literal[False] = False, *,
               progress: bool | None = None, executor: Any = None) -> pl.DataFrame: ...
    @overload
    def events(self, columns: Sequence[str] | None = None, *, lazy: Literal[True],
               progress: bool | None = None, executor: Any = None) -> pl.LazyFrame: ...
    @overload
    def events(self, columns: Sequence[str] | None = None, lazy: bool = False, *,
               progress: bool | None = None, executor: Any = None) -> pl.DataFrame | pl.LazyFrame: ...

    def events(self, columns: Sequence[str] | None = None, lazy: bool = False, *,
               progress: bool | None = None, executor: Any = None) -> pl.DataFrame | pl.LazyFrame:
        """Event-log rows (logins, alerts, tickets ...) in the window, for correlation (``executor`` as in messages)."""
        if executor is not None:
            if lazy:
                raise ConfigError("a Dask scan returns a frame: use lazy=False with executor=")
            return self._load_distributed("events", columns, executor)[0]
        if lazy:
            return self._lazy("events", columns)
        return self._load("events", columns, progress=progress)

    def search(self, query: str, *, mode: str = "exact", columns: Sequence[str] | None = None, pinyin: bool = False,
               executor: Any = None) -> pl.DataFrame:
        """Granted messages matching ``query`` (:func:`investigator.analysis.search.search`), audited.

        With ``executor`` (as in :meth:`messages`) each Dask worker searches its own chunk
        groups and only the hits travel back: the same frame as without. Raises QueryError,
        ContentNotGranted (terms but no text granted), and what :meth:`messages` raises.
        """
        options: dict[str, Any] = {"mode": mode, "pinyin": pinyin, "tz": self.timezone,
                                   "identities": self.identities()}
        if executor is not None:
            hits, searched = self._load_distributed("messages", columns, executor, query=query, options=options)
        else:
            frame = self.messages(columns, progress=False)
            hits, searched = search_frame(frame, query, **options), frame.height
        self.record_search(query, mode=mode, hits=hits.height, searched=searched)
        return hits

    def _load_distributed(self, kind: str, columns: Sequence[str] | None, executor: Any, *, query: str | None = None,
                          options: dict[str, Any] | None = None) -> tuple[pl.DataFrame, int]:
        """The eager load (or search) mapped over chunk groups on Dask workers (access/distributed.py)."""
        scan = as_dask_scan(executor)
        if self.process or not isinstance(self._keys, RemoteKeyService):
            raise ConfigError("a Dask scan needs a case opened through the key server (workers ask it for keys)",
                              hint="open the case with keyserver='https://...'; the embedded service's master "
                                   "keys never leave this process")
        wanted = self._columns(kind, columns)
        entries = self._entries(kind)
        # bound to this case's grant, person and chunk set; ended as soon as the scan is
        token = self.process_ticket(f"dask scan {kind}", lifetime=timedelta(hours=1))
        try:
            spec = ScanSpec(store=scan.store_for(self.archive), archive_id=self.archive.archive_id,
                            keyserver=self._keys.url, cafile=scan.cafile, token=token, kind=kind,
                            parts=self._parts(kind), row_filter=self._row_filter(kind), columns=tuple(wanted),
                            query=query, search_options=dict(options or {}))
            partials = scan.run(spec, entries)
        finally:
            self.revoke_process_ticket(token)
        for partial in partials:
            self.stats += partial.stats
        pieces = [p.frame for p in partials if p.frame.height]
        searched = sum(p.granted for p in partials)
        self._audit_load(kind, searched, len(entries), wanted, executor="dask")
        if not pieces:
            empty = self._empty(kind, wanted)
            return (search_frame(empty, query, **(options or {})) if query is not None else empty), searched
        frame = pl.concat(pieces, how="diagonal_relaxed")
        if len({e.batch_seq for e in entries}) > 1:
            frame = frame.sort(_order(kind, wanted))
        return frame, searched

    def _lazy(self, kind: str, columns: Sequence[str] | None) -> pl.LazyFrame:
        from polars.io.plugins import register_io_source

        wanted = self._columns(kind, columns)
        schema = self._empty(kind, wanted).schema

        def source(with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None,
                   batch_size: int | None) -> Iterator[pl.DataFrame]:
            entries = self._entries(kind)
            row_filter = self._row_filter(kind)
            keys, parts = self._keys_for_scan(), self._parts(kind)
            cols = [c for c in wanted if with_columns is None or c in with_columns or c == "ts"]
            produced = 0
            with ThreadPoolExecutor(max_workers=THREADS) as pool:
                # A group of chunks at a time: memory is bounded by the result
                # plus one group, not by the whole window.
                for first in range(0, len(entries), LAZY_GROUP):
                    frames, stats = scan_chunks(self.archive, entries[first:first + LAZY_GROUP], keys, parts,
                                                row_filter, pool, group_size=LAZY_GROUP)
                    self.stats += stats
                    [piece] = frames
                    if predicate is not None:
                        piece = piece.filter(predicate)
                    piece = piece.select([c for c in cols if c in piece.columns])
                    if with_columns is not None:
                        piece = piece.select([c for c in with_columns if c in piece.columns])
                    if n_rows is not None:
                        piece = piece.head(n_rows - produced)
                    if piece.height:
                        produced += piece.height
                        # its own buffers: the group's decrypted text is freed, memory follows the result
                        yield detached(piece)
                    if n_rows is not None and produced >= n_rows:
                        break
            self._audit_load(kind, produced, len(entries), cols, lazy=True)

        return register_io_source(io_source=source, schema=schema).sort(_order(kind, wanted))

    def info(self) -> dict[str, Any]:
        """Counts and the window — what the case holds, without content."""
        messages = self.messages(columns=["ts", "conversation_id", "sender_id"], progress=False)
        events = self.events(columns=["ts"], progress=False)
        return {"grant_id": self.grant.id, "case": self.grant.case, "person": self.person,
                "window": {"start": format_ts(self.start), "end": format_ts(self.end), "tz": self.timezone},
                "scope": self.scope, "fields": list(self.fields), "parts": list(self.ticket.parts),
                "messages": messages.height, "events": events.height,
                "conversations": messages["conversation_id"].n_unique() if messages.height else 0,
                "senders": messages["sender_id"].n_unique() if messages.height else 0,
                "chunks_decrypted": self.stats.chunks_decrypted, "keys_released": self.stats.keys_released}

    def sources(self) -> dict[str, Any]:
        """Provenance of what this case read: the chunks and their batches' Merkle roots (for reports)."""
        batches = {int(c.split("/", 1)[0]) for c in self._read_chunk_ids()}
        roots = {m.seq: m.body["merkle"]["root"] for m in self.archive.manifests() if m.seq in batches}
        return {"chunks": sorted(self._read_chunk_ids()), "merkle_roots": {str(k): v for k, v in sorted(roots.items())}}

    def _read_chunk_ids(self) -> set[str]:
        return {f"{e.batch_seq}/{e.chunk_id}" for k in ("messages", "events") for e in self._entries(k)}


