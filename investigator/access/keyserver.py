"""The key server: the only process that holds the master keys, served over HTTP(S).

    $ INVESTIGATOR_PASSPHRASE=... investigator keyserver ./case-archive --listen 127.0.0.1:8765

    >>> case = investigator.open_case("case-archive", grant="G-...", person="sunli", totp="123456",
    ...                               keyserver="http://127.0.0.1:8765")          # doctest: +SKIP

Protocol (JSON over POST; docs/admin.md, "Key server"):

- ``GET /v1/health`` -> ``{"status": "ok", "archive_id": ...}``
- ``POST /v1/open`` ``{"grant_id", "grant_hash", "person", "totp" | "session", "monitor"?, "monitor_totp"?}``
  -> a ticket. The server loads the grant from its own archive, checks that its
  hash is the one the client holds, then runs the same checks as the embedded
  service (grant, operator, identity, policy), audited either way.
- ``POST /v1/keys`` ``{"token", "refs": [[kind, partition, chunk, part], ...]}`` -> ``{"keys": {...}}``,
  only for chunk parts overlapping the ticket's window and opened by its fields.
- ``POST /v1/proofs`` ``{"token", "batch_seq", "leaf_indexes"}`` -> ``{"proofs": [...]}``: RFC 9162
  inclusion proofs (hashes only) for records inside the ticket's window.

Refusals answer 401 (identity), 403 (policy, grant) or 429 (rate limit) with
``{"error": <class>, "message": <safe text>, "rule": ...}``; every one is audited.
The server judges time by its own clock only.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from investigator import errors
from investigator.access.keyservice import ChunkRef, GrantGate, Ticket, unwrap_release, wrap_release
from investigator.authority.grants import Grant, find_grant
from investigator.authority.policy import parse_utc
from investigator.custody.file import MasterKeys
from investigator.vault.store import Archive

MAX_BODY = 4 * 1024 * 1024
MAX_REFS = 20000
_STATUS = {"IdentityCheckFailed": 401, "PolicyDenied": 403, "ContentNotGranted": 403, "GrantInvalid": 403,
           "GrantExpired": 403, "IntegrityError": 409, "RateLimited": 429}


@dataclass
class RateLimit:
    """Token bucket per client address: ``rate`` requests per second, bursts of ``burst``."""

    rate: float = 20.0
    burst: int = 60

    def __post_init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        return allowed


class KeyServer(ThreadingHTTPServer):
    """An HTTP server around a :class:`GrantGate` (master keys in this process only)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], gate: GrantGate, *, limit: RateLimit | None = None) -> None:
        super().__init__(address, _Handler)
        self.gate = gate
        self.limit = limit or RateLimit()


class _Handler(BaseHTTPRequestHandler):
    server: KeyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # Request lines go to the audit log instead (never bodies: they hold codes and tokens).
        pass

    def _send(self, status: int, obj: dict[str, Any]) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, err: errors.InvestigatorError, *, action: str, person: str = "", audited: bool = True) -> None:
        name = type(err).__name__
        if not audited:
            self.server.gate.archive.audit.append(person or f"client {self.client_address[0]}", action,
                                                  self.path, {"reason": str(err), "rule": getattr(err, "rule", "")},
                                                  outcome="denied")
        status = _STATUS.get(name, 400 if not isinstance(err, errors.GrantInvalid) else 403)
        self._send(status, {"error": name, "message": str(err), "rule": getattr(err, "rule", ""),
                            "reason": getattr(err, "reason", str(err))})

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            raise errors.KeyServiceError("request body missing or too large")
        try:
            obj = json.loads(self.rfile.read(length))
        except ValueError as exc:
            raise errors.KeyServiceError("request body is not JSON") from exc
        if not isinstance(obj, dict):
            raise errors.KeyServiceError("request body must be a JSON object")
        return obj

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path == "/v1/health":
            self._send(200, {"status": "ok", "archive_id": self.server.gate.archive.archive_id})
        else:
            self._send(404, {"error": "NotFound", "message": "unknown path"})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        client = self.client_address[0]
        if not self.server.limit.allow(client):
            err = errors.PolicyDenied("too many requests; slow down", rule="keyserver.rate_limit")
            self.server.gate.archive.audit.append(f"client {client}", "keyserver.request", self.path,
                                                  {"rule": err.rule, "reason": err.reason}, outcome="denied")
            self._send(429, {"error": "RateLimited", "message": str(err), "rule": err.rule, "reason": err.reason})
            return
        try:
            body = self._body()
        except errors.InvestigatorError as err:
            self._refuse(err, action="keyserver.request", audited=False)
            return
        if self.path == "/v1/open":
            self._open(body)
        elif self.path == "/v1/keys":
            self._keys(body)
        elif self.path == "/v1/proofs":
            self._proofs(body)
        else:
            self._send(404, {"error": "NotFound", "message": "unknown path"})

    def _open(self, body: dict[str, Any]) -> None:
        gate = self.server.gate
        person = str(body.get("person") or "")
        try:
            if not person:
                raise errors.IdentityCheckFailed("no person named")
            grant = Grant.from_file(find_grant(gate.archive, str(body.get("grant_id") or "")))
            if grant.hash != body.get("grant_hash"):
                raise errors.GrantInvalid("the client's grant differs from the archive's copy (edited grant file)")
        except errors.InvestigatorError as err:
            self._refuse(err, action="case.open", person=person, audited=False)
            return
        try:
            ticket = gate.open(grant=grant, person=person, totp=body.get("totp"), session=body.get("session"),
                               monitor=body.get("monitor"), monitor_totp=body.get("monitor_totp"))
        except errors.InvestigatorError as err:  # the gate audited it
            self._refuse(err, action="case.open", person=person)
            return
        self._send(200, {"ticket": ticket.to_json()})

    def _keys(self, body: dict[str, Any]) -> None:
        gate = self.server.gate
        token = str(body.get("token") or "")
        try:
            if not token:
                raise errors.IdentityCheckFailed("no case ticket: open the case first")
            ticket, _grant = gate.ticket(token)
            refs_raw = body.get("refs")
            if not isinstance(refs_raw, list) or len(refs_raw) > MAX_REFS:
                raise errors.KeyServiceError(f"refs must be a list of at most {MAX_REFS} chunk references")
            refs = [ChunkRef.from_json(r) for r in refs_raw]
        except (errors.InvestigatorError, ValueError, TypeError) as err:
            safe = err if isinstance(err, errors.InvestigatorError) else errors.KeyServiceError("malformed chunk reference")
            self._refuse(safe, action="key.release", audited=False)
            return
        try:
            released = gate.release(ticket, refs)
        except errors.InvestigatorError as err:  # audited by the gate
            self._refuse(err, action="key.release", person=ticket.person)
            return
        self._send(200, {"keys": wrap_release(released)})

    def _proofs(self, body: dict[str, Any]) -> None:
        gate = self.server.gate
        try:
            ticket, _grant = gate.ticket(str(body.get("token") or ""))
            batch_seq = body.get("batch_seq")
            if batch_seq is None:
                raise errors.KeyServiceError("malformed proof request")
            batch = int(batch_seq)
            leaves = [int(i) for i in body.get("leaf_indexes") or []][:MAX_REFS]
        except (errors.InvestigatorError, ValueError, TypeError) as err:
            safe = err if isinstance(err, errors.InvestigatorError) else errors.KeyServiceError("malformed proof request")
            self._refuse(safe, action="proof.release", audited=False)
            return
        try:
            proofs = gate.proofs(ticket, batch, leaves)
        except errors.InvestigatorError as err:  # audited by the gate
            self._refuse(err, action="proof.release", person=ticket.person)
            return
        self._send(200, {"proofs": proofs})


def serve(archive: "Archive", keys: "MasterKeys", *, host: str = "127.0.0.1", port: int = 8765,
          certfile: str | None = None, keyfile: str | None = None, limit: RateLimit | None = None) -> KeyServer:
    """Make a key server bound to ``host:port`` (TLS when ``certfile`` is given). Call ``serve_forever()``."""
    server = KeyServer((host, port), GrantGate(archive, keys), limit=limit)
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile, keyfile)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    archive.audit.append("keyserver", "keyserver.start", f"{host}:{server.server_address[1]}",
                         {"tls": bool(certfile), "rate": server.limit.rate})
    return server


class RemoteKeyService:
    """The notebook side of the key server: no master key here, only released chunk-part keys."""

    def __init__(self, url: str, *, cafile: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=cafile) if self.url.startswith("https") else None

    def __repr__(self) -> str:
        return f"RemoteKeyService(url={self.url!r})"

    def _post(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(obj).encode()
        request = urllib.request.Request(self.url + path, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read())
            except ValueError:
                answer = {}
            raise _error_from(answer, exc.code) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise errors.KeyServiceError(f"key server at {self.url} unreachable or broke off ({type(exc).__name__})",
                                         hint="is 'investigator keyserver' running? nothing partial was returned") from exc

    def open(self, *, grant: "Grant", person: str, totp: str | None = None, session: str | None = None,
             monitor: str | None = None, monitor_totp: str | None = None, now: datetime | None = None) -> Ticket:
        answer = self._post("/v1/open", {"grant_id": grant.id, "grant_hash": grant.hash, "person": person,
                                         "totp": totp, "session": session, "monitor": monitor,
                                         "monitor_totp": monitor_totp})
        t = answer["ticket"]
        return Ticket(token=t["token"], grant_id=t["grant_id"], person=t["person"], start=parse_utc(t["start"]),
                      end=parse_utc(t["end"]), parts=tuple(t["parts"]), expires=parse_utc(t["expires"]))

    def release(self, ticket: Ticket, refs: Sequence[ChunkRef], *, now: datetime | None = None) -> dict[ChunkRef, bytes]:
        answer = self._post("/v1/keys", {"token": ticket.token, "refs": [r.to_json() for r in refs]})
        return unwrap_release(answer.get("keys") or {}, refs)

    def proofs(self, ticket: Ticket, batch_seq: int, leaf_indexes: Sequence[int], *,
               now: datetime | None = None) -> list[dict[str, Any]]:
        answer = self._post("/v1/proofs", {"token": ticket.token, "batch_seq": batch_seq,
                                           "leaf_indexes": list(leaf_indexes)})
        return list(answer.get("proofs") or [])


def _error_from(answer: dict[str, Any], status: int) -> errors.InvestigatorError:
    name, message, rule = answer.get("error", ""), answer.get("message", f"HTTP {status}"), answer.get("rule", "")
    if name == "IdentityCheckFailed" or status == 401:
        return errors.IdentityCheckFailed(message)
    if name == "GrantExpired":
        return errors.GrantExpired(message)
    if name == "GrantInvalid":
        return errors.GrantInvalid(message)
    if name in ("PolicyDenied", "ContentNotGranted", "RateLimited") or status in (403, 429):
        return errors.PolicyDenied(answer.get("reason") or message, rule=rule)
    if name == "IntegrityError":
        return errors.IntegrityError(message)
    return errors.KeyServiceError(f"key server refused: {message}")

