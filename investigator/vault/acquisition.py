"""Acquisition records: who took which export or image from which device, with what, watched by whom.

The process document's 电子取证 step extracts an image or export with a forensic tool,
on video, with an operation log, and seals the device. Its record travels with the
export into the archive: ``investigator ingest ... --acquisition record.json`` binds
the signed record into the batch's manifest, and ``verify`` checks that every file
the batch read is one the record lists, by SHA-256.

    >>> body = empty_record()                                   # what `investigator acquisition template` prints
    >>> body["exports"][0]["sha256"] = "..."                    # doctest: +SKIP
    >>> signed = sign_record(body, operator_key, signed_by="liuyang")        # doctest: +SKIP
    >>> record = AcquisitionRecord.parse(json.dumps(signed).encode(), what="record.json")  # doctest: +SKIP
    >>> record.problems_with([{"name": "chat.zip", "sha256": "..."}])        # doctest: +SKIP
    []

The signature is Ed25519 over the RFC 8785 canonical JSON of the record without its
``signature`` member; the record carries the public key, so the vault checks it
without knowing people. Whether that key belongs to ``signed_by`` is the
directory's question (the CLI asks it before ingest). docs/formats.md ("Acquisition records") describes
every field.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from investigator import _crypto
from investigator.errors import ImportFormatError, IntegrityError
from investigator.schema import canonical_json

FORMAT = "investigator-acquisition/1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PEOPLE = ("owner", "operator", "monitor")


def empty_record() -> dict[str, Any]:
    """The record to fill in: every field, empty (``investigator acquisition template``)."""
    return {
        "format": FORMAT,
        "case_reference": "",
        "device": {"description": "", "make": "", "model": "", "serial": "", "imei": ""},
        "owner": {"name": "", "id": ""},
        "operator": {"name": "", "id": ""},
        "monitor": {"name": "", "id": ""},
        "tool": {"name": "", "version": ""},
        "acquired_at": "",
        "location": "",
        "exports": [{"name": "", "sha256": ""}],
        "video": {"name": "", "sha256": ""},
        "sealing_photos": [{"name": "", "sha256": ""}],
        "operation_log": {"name": "", "sha256": ""},
        "notes": "",
    }


def _signed_bytes(body: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in body.items() if k != "signature"})


def sign_record(body: dict[str, Any], key: _crypto.SigningKey, *, signed_by: str) -> dict[str, Any]:
    """``body`` with a ``signature`` by ``key`` for person ``signed_by`` (the operator, as a rule).

    The body is checked first (:meth:`AcquisitionRecord.check_body`); raises
    ImportFormatError naming the first field that is missing or malformed.
    """
    unsigned = {k: v for k, v in copy.deepcopy(body).items() if k != "signature"}
    AcquisitionRecord.check_body(unsigned, what="record")
    unsigned["signature"] = {"algorithm": "ed25519", "signed_by": signed_by, "public_key": key.public.b64(),
                             "key_id": key.public.key_id, "value": key.sign(_signed_bytes(unsigned))}
    return unsigned


@dataclass(frozen=True)
class AcquisitionRecord:
    """A checked, signature-verified acquisition record (the whole signed JSON object in ``body``)."""

    body: dict[str, Any]

    @property
    def sha256(self) -> str:
        """SHA-256 of the record's canonical JSON (signature included): what the manifest names it by."""
        return hashlib.sha256(canonical_json(self.body)).hexdigest()

    @property
    def signed_by(self) -> str:
        return str(self.body["signature"]["signed_by"])

    @property
    def key_id(self) -> str:
        return _crypto.VerifyKey.from_b64(self.body["signature"]["public_key"]).key_id

    def export_hashes(self) -> dict[str, str]:
        """sha256 -> name of every export / image file the record lists."""
        return {e["sha256"]: e.get("name") or "" for e in self.body["exports"]}

    @classmethod
    def parse(cls, data: bytes, *, what: str) -> AcquisitionRecord:
        """Parse and check a signed record (the bytes of ``what``).

        Raises ImportFormatError naming ``what`` and the first missing or malformed
        field (not JSON, no signature, a hash that is not 64 lowercase hex digits, a
        time without offset, operator = monitor ...), IntegrityError when the
        signature does not verify.
        """
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ImportFormatError(what, f"line {exc.lineno}, column {exc.colno} (character {exc.pos})",
                                    "an acquisition record in JSON") from None
        if not isinstance(body, dict):
            raise ImportFormatError(what, "$", "a JSON object")
        cls.check_body(body, what=what)
        signature = body.get("signature")
        if not isinstance(signature, dict):
            raise ImportFormatError(what, "signature", "a signature (investigator acquisition sign)")
        for key in ("algorithm", "signed_by", "public_key", "value"):
            if not isinstance(signature.get(key), str) or not signature[key]:
                raise ImportFormatError(what, f"signature.{key}", "a non-empty string")
        if signature["algorithm"] != "ed25519":
            raise ImportFormatError(what, "signature.algorithm", "'ed25519'")
        public = _crypto.VerifyKey.from_b64(signature["public_key"])
        public.verify(signature["value"], _signed_bytes(body), what=what)
        return cls(body)

    @staticmethod
    def check_body(body: dict[str, Any], *, what: str) -> None:
        """Raise ImportFormatError naming the first missing or malformed field of an (unsigned) record."""

        def text(path: str, value: Any) -> str:
            if not isinstance(value, str) or not value.strip():
                raise ImportFormatError(what, path, "a non-empty text")
            return value

        def digest(path: str, value: Any) -> None:
            if not isinstance(value, str) or not _HEX64.match(value):
                raise ImportFormatError(what, path, "a SHA-256 as 64 lowercase hex digits")

        def obj(path: str) -> dict[str, Any]:
            value = body.get(path)
            if not isinstance(value, dict):
                raise ImportFormatError(what, path, "a JSON object")
            return value

        if body.get("format") != FORMAT:
            raise ImportFormatError(what, "format", f"'{FORMAT}'")
        device = obj("device")
        if not any(isinstance(device.get(k), str) and device[k].strip()
                   for k in ("description", "model", "serial", "imei")):
            raise ImportFormatError(what, "device", "a description, model, serial or IMEI")
        for role in _PEOPLE:
            text(f"{role}.name", obj(role).get("name"))
        names = {role: (body[role].get("id") or body[role]["name"]).strip() for role in ("operator", "monitor")}
        if names["operator"] == names["monitor"]:
            raise ImportFormatError(what, "monitor", "a monitor who is not the operator")
        tool = obj("tool")
        text("tool.name", tool.get("name"))
        text("tool.version", tool.get("version"))
        when = text("acquired_at", body.get("acquired_at"))
        try:
            moment = datetime.fromisoformat(when)
        except ValueError:
            moment = None
        if moment is None or moment.utcoffset() is None:
            raise ImportFormatError(what, "acquired_at", "an ISO 8601 time with offset, e.g. 2026-11-20T14:30:00+08:00")
        exports = body.get("exports")
        if not isinstance(exports, list) or not exports:
            raise ImportFormatError(what, "exports", "a list of the image or export files with their SHA-256")
        for n, item in enumerate(exports):
            if not isinstance(item, dict):
                raise ImportFormatError(what, f"exports[{n}]", "a JSON object {name, sha256}")
            text(f"exports[{n}].name", item.get("name"))
            digest(f"exports[{n}].sha256", item.get("sha256"))
        digest("video.sha256", obj("video").get("sha256"))
        photos = body.get("sealing_photos")
        if not isinstance(photos, list) or not photos:
            raise ImportFormatError(what, "sealing_photos", "a list of the sealing photos with their SHA-256")
        for n, item in enumerate(photos):
            if not isinstance(item, dict):
                raise ImportFormatError(what, f"sealing_photos[{n}]", "a JSON object {name, sha256}")
            digest(f"sealing_photos[{n}].sha256", item.get("sha256"))
        log = body.get("operation_log")
        if isinstance(log, dict) and log.get("sha256"):
            digest("operation_log.sha256", log.get("sha256"))

    def problems_with(self, sources: list[dict[str, Any]]) -> list[str]:
        """One problem per source file (``{name, sha256}``) whose SHA-256 the record does not list."""
        listed = self.export_hashes()
        return [f"{s.get('name')}: SHA-256 {str(s.get('sha256'))[:16]}... is not among the acquisition record's "
                "exports" for s in sources if s.get("sha256") not in listed]

    def manifest_entry(self) -> dict[str, Any]:
        """What a batch manifest stores: the whole signed record, its digest, signer and key id."""
        return {"sha256": self.sha256, "signed_by": self.signed_by, "key_id": self.key_id, "record": self.body}


def check_manifest_entry(entry: Any, sources: list[dict[str, Any]], *, where: str) -> list[str]:
    """Problems of a manifest's ``acquisition`` entry: a record that no longer parses or verifies, a digest
    that does not match, or a source file of the batch that the record does not list (``verify`` uses this)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("record"), dict):
        return [f"{where}: acquisition entry is not a signed record"]
    try:
        record = AcquisitionRecord.parse(orjson.dumps(entry["record"]), what=f"{where} acquisition record")
    except (ImportFormatError, IntegrityError) as err:
        return [str(err)]
    problems = []
    if record.sha256 != entry.get("sha256"):
        problems.append(f"{where}: acquisition record does not match its SHA-256 in the manifest")
    problems.extend(f"{where}: {p}" for p in record.problems_with(sources))
    return problems
