"""The key service's own reading of an evidence-bundle export: the records, their hashes, its breaker verdict.

    >>> leaves = [(3, 17), (3, 18), (5, 2)]                          # (batch_seq, leaf_index) of each row
    >>> read = read_export(archive, keys, grant=grant, directory=directory, leaves=leaves)   # doctest: +SKIP
    >>> verdict = judge(read, policy=policy, grant=grant)                                 # doctest: +SKIP
    >>> verdict.held, read.leaf_set_sha256 == leaf_set_sha256(read.triples)               # doctest: +SKIP
    (True, True)

A client asking the key service to attest a bundle names the exported records by (batch, leaf). Where the
master keys are, :func:`read_export` decrypts exactly those records (every part of their chunks), recomputes
each record hash from its fields, checks it is the leaf at that index of its batch (whose leaves are checked
against the signed Merkle root), and that the record lies in the grant's window and scope. :func:`judge`
runs the circuit breaker on what the grant lets the bundle carry (the text only when the grant opens content):
personal data, the signed policy's ``[breaker.categories]``, a sensitive grant. The attestation then signs
:func:`leaf_set_sha256` (which ``bundle verify`` recomputes from the bundle's rows) and this verdict, so a
client cannot skip the hold nor swap records after the attestation (docs/threat-model.md, "The circuit
breaker"). Nothing here returns content: counts, category names, hashes and reasons only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from investigator.access.lockdown import _leaves, policy_categories, scan_texts
from investigator.access.scope import scope_filter
from investigator.authority.grants import Grant
from investigator.authority.policy import Policy
from investigator.errors import BundleError, InvestigatorError
from investigator.schema import canonical_json, parts_for_fields, record_hashes
from investigator.vault.destruction import destroyed_partitions
from investigator.vault.store import Archive

MAX_LEAVES = 200_000  # records one attestation request may name (within the key server's 4 MiB body limit)
JUDGE = "key-service"  # who judged, as the attestation says (bundles before format 2: the exporting client)


def leaf_set_sha256(triples: Sequence[Sequence[Any]]) -> str:
    """SHA-256 (hex) of the RFC 8785 form of the sorted ``[batch_seq, leaf_index, record_hash]`` list.

    The key service signs it into a bundle's attestation; ``bundle verify`` recomputes it from the bundle's
    ``messages.jsonl``. A duplicate entry counts (a set with one record twice is another set).
    """
    rows = sorted([int(b), int(i), str(h)] for b, i, h in triples)
    return hashlib.sha256(canonical_json(rows)).hexdigest()


@dataclass(frozen=True)
class ExportRead:
    """What the key service read for an attestation: the set's triples and hash, and the texts it may scan."""

    triples: tuple[tuple[int, int, str], ...]
    leaf_set_sha256: str
    texts: tuple[str, ...] = field(default=(), repr=False)  # never in a repr, a log or an answer

    @property
    def items(self) -> int:
        return len(self.triples)


@dataclass(frozen=True)
class ServerVerdict:
    """The key service's circuit-breaker verdict on an export: ``hold`` or ``release``, and why."""

    held: bool
    reasons: tuple[str, ...] = ()
    categories: dict[str, int] = field(default_factory=dict)
    pii: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"decision": "hold" if self.held else "release", "held": self.held, "judged_by": JUDGE,
                "reasons": list(self.reasons), "categories": dict(sorted(self.categories.items())),
                "pii": dict(sorted(self.pii.items()))}


class ExportRefused(BundleError):
    """The records an attestation request names are not all genuine records of the grant (rule ``bundle.leaves``)."""

    rule = "bundle.leaves"


def parse_leaves(value: Any) -> list[tuple[int, int]]:
    """``[[batch_seq, leaf_index], ...]`` from a request (an empty bundle names none), or ExportRefused
    (malformed, too many, repeated)."""
    if not isinstance(value, list) or len(value) > MAX_LEAVES:
        raise ExportRefused(f"the attestation needs the exported records as a list of at most {MAX_LEAVES} "
                            "[batch_seq, leaf_index] pairs")
    out: list[tuple[int, int]] = []
    for item in value:
        if not (isinstance(item, (list, tuple)) and len(item) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in item)):
            raise ExportRefused("a record of the attestation request is not a [batch_seq, leaf_index] pair")
        out.append((int(item[0]), int(item[1])))
    if len(set(out)) != len(out):
        raise ExportRefused("the attestation request names a record twice")
    return out


def read_export(archive: Archive, keys: Any, *, grant: Grant, directory: Any,
                leaves: Sequence[tuple[int, int]]) -> ExportRead:
    """Decrypt the records ``leaves`` names with the master keys ``keys`` and check each one (module docstring).

    Raises ExportRefused naming the first record that is not a genuine record of the grant's window and
    scope (no such batch or leaf, a record hash that is not its leaf, outside the window or scope, a
    crypto-shredded partition); IntegrityError when a batch's leaves do not match its signed root.
    """
    start, end = grant.window
    scope = scope_filter(grant.scope, directory, "messages")
    manifests = {m.seq: m for m in archive.manifests()}
    gone = destroyed_partitions(archive)[0]
    content = "content" in parts_for_fields(grant.fields, "messages")
    wanted: dict[int, set[int]] = {}
    for seq, index in leaves:
        wanted.setdefault(seq, set()).add(index)
    triples: list[tuple[int, int, str]] = []
    texts: list[str] = []
    for seq, indexes in sorted(wanted.items()):
        manifest = manifests.get(seq)
        if manifest is None:
            raise ExportRefused(f"batch {seq} is not in the archive")
        signed = _leaves(archive, keys, seq)  # every record hash of the batch, checked against its signed root
        found: set[int] = set()
        for entry in manifest.chunks:
            hit = {i for i in indexes if entry.leaf_start <= i < entry.leaf_start + entry.leaf_count}
            if not hit:
                continue
            if entry.kind != "messages" or (entry.kind, entry.partition) in gone:
                raise ExportRefused(f"record {seq}/{min(hit)} is not a readable message record")
            frame = archive.read_chunk(entry, keys).filter(pl.col("leaf_index").is_in(sorted(hit)))
            hashes = record_hashes(frame, "messages")
            inside = frame.select(((pl.col("ts") >= start) & (pl.col("ts") < end)
                                   & (scope if scope is not None else pl.lit(True))).alias("ok"))["ok"].to_list()
            for row, recomputed, ok in zip(frame.iter_rows(named=True), hashes, inside):
                index = int(row["leaf_index"])
                if not (0 <= index < len(signed)) or recomputed != signed[index] or row["record_hash"] != recomputed:
                    raise ExportRefused(f"record {seq}/{index}: its record hash is not the leaf of its signed batch")
                if not ok:
                    raise ExportRefused(f"record {seq}/{index} is outside the grant's window or scope")
                found.add(index)
                triples.append((seq, index, recomputed))
                if content and isinstance(row.get("text"), str):
                    texts.append(row["text"])
        if found != indexes:
            raise ExportRefused(f"batch {seq} has no record {min(indexes - found)}")
    return ExportRead(tuple(sorted(triples)), leaf_set_sha256(triples), tuple(texts))


def judge(read: ExportRead, *, policy: Policy, grant: Grant) -> ServerVerdict:
    """The key service's breaker verdict on ``read``: held for personal data, a category of the signed
    policy, or a grant the policy marks sensitive (the reasons name kinds, categories and counts only)."""
    found = scan_texts(list(read.texts), policy_categories(policy))
    categories = {k: v for k, v in found["categories"].items() if v}
    pii = {k: v for k, v in found["pii"].items() if v}
    reasons: list[str] = []
    if pii:
        reasons.append("unmasked personal data in the exported messages: "
                       + ", ".join(f"{k} x{n}" for k, n in sorted(pii.items())))
    if categories:
        reasons.append("hits in categories the policy marks sensitive: "
                       + ", ".join(f"{k} x{n}" for k, n in sorted(categories.items())))
    try:
        sensitive = policy.is_sensitive(grant.request.request)
    except (InvestigatorError, AttributeError, KeyError, TypeError):
        sensitive = True  # fail closed: a grant the policy cannot judge is held
    if sensitive:
        reasons.append("the grant's purpose or fields are sensitive by policy ([approval.sensitive])")
    return ServerVerdict(bool(reasons), tuple(reasons), categories, pii)


__all__ = ["ExportRead", "ExportRefused", "JUDGE", "MAX_LEAVES", "ServerVerdict", "judge",
           "leaf_set_sha256", "parse_leaves", "read_export"]
