"""Ingest through the key server: the ingesting process adds records and can read none of the earlier ones.

    >>> service = RemoteKeyService("http://127.0.0.1:8765", signer=RequestSigner("zhaomin", key))  # doctest: +SKIP
    >>> ingest_paths(archive, [Path("export.jsonl")], actor="zhaomin", service=RemoteIngest(service))  # doctest: +SKIP

:class:`RemoteIngest` is the :class:`~investigator.vault.ingest.IngestService` of a client of
``investigator keyserver``: the dedup question goes to ``/v1/ingest/lookup`` (hashes in, yes/no
and version numbers out), each batch's fresh data keys come from ``/v1/ingest/datakey`` (plain +
wrapped, for the next batch only), and ``/v1/ingest/commit`` has the server check the staged
batch, sign its manifest and commit it. The process and the server share the archive folder
(the client stages in ``staging/``, the server commits to ``batches/``); the client needs no
``keys/`` folder, no passphrase, and takes no write lock (the server serializes commits and
refuses a batch whose sequence another commit took: ingest again).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from investigator import _crypto
from investigator._fs import shared_lock
from investigator.access.keyserver import RemoteKeyService
from investigator.errors import IntegrityError
from investigator.schema import canonical_json
from investigator.vault.ingest import IssuedKey, Row
from investigator.vault.manifest import Manifest
from investigator.vault.store import Archive, write_file


class RemoteIngest:
    """An ingest service backed by the key server (every request signed by the ingesting person)."""

    def __init__(self, service: RemoteKeyService) -> None:
        self.service = service

    def __repr__(self) -> str:
        return f"RemoteIngest({self.service!r})"

    @contextmanager
    def writing(self, archive: Archive, *, actor: str) -> Iterator[None]:
        # no write lock and no staging sweep: other writers may be staging beside this one; the
        # server commits under its own lock and checks the sequence. The shared staging lock keeps an
        # embedded ingest on the custodian's host from sweeping this batch away while it is written.
        with shared_lock(archive.layout.staging_lock):
            yield

    def lookup(self, kind: str, rows: Sequence[Row]) -> tuple[list[bool], list[int]]:
        return self.service.ingest_lookup(kind, rows)

    def data_keys(self, batch_id: str, seq: int, wanted: Sequence[tuple[str, str]]) -> dict[tuple[str, str], IssuedKey]:
        return self.service.ingest_data_keys(batch_id, seq, wanted)

    def commit(self, archive: Archive, *, batch_id: str, body: dict[str, Any], actor: str,
               now: datetime) -> Manifest:
        """Hand the staged body to the server, which checks, signs and commits; the committed manifest.

        Raises IntegrityError when the committed manifest in the shared folder is not the one the
        server reports, and whatever the server refused with.
        """
        stage = archive.layout.staged_batch(batch_id)
        data = canonical_json(body)
        write_file(stage.unsigned_manifest, data)
        answer = self.service.ingest_commit(batch_id, _crypto.sha256_hex(data))
        seq = int(answer["seq"])
        manifest = Manifest.load(archive.layout.manifest(seq))
        if manifest.digest != answer.get("manifest_sha256") or manifest.body.get("batch_id") != batch_id:
            raise IntegrityError("the committed manifest is not the one the key server signed",
                                 path=archive.layout.relative(archive.layout.manifest(seq)))
        return manifest
