"""What the policy decides on and what it answers: requests, checks, decisions.

    >>> Decision(allowed=False, rule="window.lookback", reason="...")   # doctest: +SKIP

Part of :mod:`investigator.authority.policy` (docs/policy.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from investigator.errors import IntegrityError, PolicyDenied
from investigator.schema import format_ts

POLICY_FORMAT = "investigator-policy/1"
# Every action a decision can be asked about (docs/policy.md, "Actions").
ACTIONS = ("request", "approve", "grant", "retrieve", "search", "read_content", "archive", "export", "audit",
           "admin")
# Permissions a role may hold: the actions above that are plain permission checks, plus approve/request.
PERMISSIONS = ("request", "retrieve", "search", "read_content", "archive", "export", "approve", "audit", "admin")
LOOKBACKS = ("none", "day", "week", "month", "all")
FIELDS = ("metadata", "content", "attachments")
CONTENT_PERMISSIONS = frozenset({"read_content", "export", "retrieve"})


# --- data the policy decides on -------------------------------------------------

@dataclass(frozen=True)
class Request:
    """A retrieval request (电子证据调取申请单), before or after signing.

    ``start``/``end`` are aware UTC datetimes: the window is ``[start, end)``.
    ``tz`` is the zone the requester's times were read in (for display only).
    """

    id: str
    archive_id: str
    case: str
    purpose: str
    requester: str
    key_id: str
    start: datetime
    end: datetime
    tz: str
    fields: tuple[str, ...]
    reason: str
    created: datetime
    operator: str = ""
    conversations: tuple[str, ...] = ()
    participants: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    legal_basis: str = ""
    consent: str = ""
    templates: tuple[str, ...] = ()

    @property
    def performer(self) -> str:
        """Who performs the retrieval: the operator if named, else the requester."""
        return self.operator or self.requester

    @property
    def scope(self) -> dict[str, list[str]]:
        return {"conversations": list(self.conversations), "participants": list(self.participants),
                "groups": list(self.groups)}

    def to_body(self) -> dict[str, Any]:
        """The signed body (RFC 8785 canonical bytes are what is signed)."""
        return {"format": "investigator-request/1", "id": self.id, "archive_id": self.archive_id,
                "case": self.case, "purpose": self.purpose, "requester": self.requester,
                "operator": self.performer, "key_id": self.key_id,
                "window": {"start": format_ts(self.start), "end": format_ts(self.end), "tz": self.tz},
                "scope": self.scope, "fields": list(self.fields), "reason": self.reason,
                "legal_basis": self.legal_basis, "consent": self.consent, "templates": list(self.templates),
                "created": format_ts(self.created)}

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> "Request":
        """Parse a request body. Raises IntegrityError if fields are missing or malformed."""
        try:
            if body["format"] != "investigator-request/1":
                raise ValueError("format")
            window, scope = body["window"], body["scope"]
            operator = str(body.get("operator") or "")
            return cls(id=str(body["id"]), archive_id=str(body["archive_id"]), case=str(body["case"]),
                       purpose=str(body["purpose"]), requester=str(body["requester"]), key_id=str(body["key_id"]),
                       start=parse_utc(window["start"]), end=parse_utc(window["end"]), tz=str(window["tz"]),
                       fields=tuple(body["fields"]), reason=str(body["reason"]), created=parse_utc(body["created"]),
                       operator="" if operator == body["requester"] else operator,
                       conversations=tuple(scope.get("conversations", ())),
                       participants=tuple(scope.get("participants", ())), groups=tuple(scope.get("groups", ())),
                       legal_basis=str(body.get("legal_basis", "")), consent=str(body.get("consent", "")),
                       templates=tuple(body.get("templates", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError("malformed retrieval request") from exc


def parse_utc(text: str) -> datetime:
    """Parse a ``format_ts`` timestamp (or any ISO 8601 with offset) into an aware UTC datetime."""
    from datetime import timezone

    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("timestamp without offset")
    return value.astimezone(timezone.utc)


@dataclass(frozen=True)
class Check:
    """One rule consulted on the way to a decision."""

    rule: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class Decision:
    """The answer to one question: allowed or not, the deciding rule, the reason, the trail."""

    allowed: bool
    rule: str
    reason: str
    consulted: tuple[Check, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "rule": self.rule, "reason": self.reason,
                "consulted": [c.to_json() for c in self.consulted]}

    def raise_if_denied(self) -> "Decision":
        """Raise PolicyDenied (carrying this decision) unless allowed."""
        if not self.allowed:
            raise PolicyDenied(self.reason, rule=self.rule, decision=self)
        return self


class _Trail:
    def __init__(self) -> None:
        self.checks: list[Check] = []

    def ok(self, rule: str, detail: str) -> None:
        self.checks.append(Check(rule, True, detail))

    def deny(self, rule: str, reason: str) -> Decision:
        self.checks.append(Check(rule, False, reason))
        return Decision(False, rule, reason, tuple(self.checks))

    def allow(self, rule: str, reason: str) -> Decision:
        return Decision(True, rule, reason, tuple(self.checks))


