"""The exception tree of investigator.

Every error the package raises on purpose is an :class:`InvestigatorError`. Its
message is safe to show and to log: it never contains plaintext, key bytes or
message text (STYLE.md, "Errors"). The CLI catches the base class once and maps
each subclass to an exit code (see ``EXIT_CODES``).

    >>> try:
    ...     raise ImportFormatError("export.csv", "line 3", "an ISO 8601 timestamp in column 'ts'")
    ... except InvestigatorError as err:
    ...     print(err)
    export.csv, line 3: expected an ISO 8601 timestamp in column 'ts'

This module imports nothing from the package.
"""

from __future__ import annotations

from typing import Any


class InvestigatorError(Exception):
    """Base of every error raised by investigator on purpose.

    ``str(err)`` is a safe, human message. :meth:`diagnostics` adds a hint on
    what to do next, for the CLI.
    """

    exit_code = 1
    hint = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint

    def diagnostics(self) -> str:
        """The message and, where there is one, a hint on what to do next."""
        text = str(self)
        return f"{text}\n  hint: {self.hint}" if self.hint else text

    def __repr__(self) -> str:  # never more than the safe message
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (a Dask worker's refusal reaches the client pickled). The default
        # rebuilds by calling __init__ with the formatted message, which subclasses with their own
        # signature (PolicyDenied, ContentNotGranted ...) would format again or refuse; restore as is.
        return (_restore_error, (type(self), self.args, dict(self.__dict__)))


def _restore_error(cls: type[InvestigatorError], args: tuple[Any, ...], state: dict[str, Any]) -> InvestigatorError:
    """An unpickled error: the same class, message and attributes, without running its __init__."""
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class ConfigError(InvestigatorError):
    """A settings file, option or environment variable is missing or invalid."""

    exit_code = 2


class ArchiveError(InvestigatorError):
    """The archive is missing, not an archive, locked, or of an unknown version."""

    exit_code = 3


class IntegrityError(InvestigatorError):
    """Data failed authentication or verification.

    Tampering and a wrong key are deliberately not told apart (as in
    cryptography's Fernet): both mean "this cannot be trusted".
    """

    exit_code = 4

    def __init__(self, message: str, *, path: str = "", hint: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message, hint=hint)
        self.path = path


class PeriodShredded(IntegrityError):
    """The key of a retention period was destroyed (crypto-shredding): its data can no longer be read.

    Told apart from other integrity failures only so that verification can check the period's
    signed destruction record instead of reporting damage.
    """


class WrongPassphrase(InvestigatorError):
    """A key file could not be unlocked with the given passphrase."""

    exit_code = 5


class ImportFormatError(InvestigatorError):
    """An input file cannot be read as the expected export format.

    Names the file, the position (line, row or JSON path) and what was expected.
    """

    exit_code = 6

    def __init__(self, file: str, position: str, expected: str, *, hint: str = "") -> None:
        where = f"{file}, {position}" if position else file
        super().__init__(f"{where}: expected {expected}", hint=hint)
        self.file = file
        self.position = position
        self.expected = expected


class AuditError(InvestigatorError):
    """The audit log cannot be written or does not verify. Fail closed."""

    exit_code = 7


class PolicyDenied(InvestigatorError):
    """The policy refused an action. Carries the deciding rule and the reason."""

    exit_code = 8

    def __init__(self, reason: str, *, rule: str = "", decision: Any = None) -> None:
        super().__init__(f"denied by rule {rule!r}: {reason}" if rule else f"denied: {reason}")
        self.rule = rule
        self.reason = reason
        self.decision = decision


class ContentNotGranted(PolicyDenied):
    """A function needs message text, and the grant is metadata-only (no content for this frame)."""

    def __init__(self, what: str = "this function") -> None:
        super().__init__(f"{what} needs message text, and content was not granted for this frame "
                         "(metadata-only grant)", rule="fields.content")
        self.hint = "request a grant that includes content"


class GrantInvalid(InvestigatorError):
    """A grant's signatures, fields or approvals do not verify."""

    exit_code = 9


class GrantExpired(GrantInvalid):
    """A grant is past its expiry, or revoked."""


class IdentityCheckFailed(InvestigatorError):
    """A TOTP code, session or signing key did not prove the person's identity."""

    exit_code = 10


class KeyServiceError(InvestigatorError):
    """The key service is unreachable, refused, or answered out of protocol."""

    exit_code = 11


class QueryError(InvestigatorError):
    """A search query cannot be parsed. Names the position."""

    exit_code = 12

    def __init__(self, message: str, *, position: int | None = None) -> None:
        super().__init__(f"{message} (at position {position})" if position is not None else message)
        self.position = position


class ReportError(InvestigatorError):
    """A report could not be run, sealed, verified or released."""

    exit_code = 13


class BundleError(InvestigatorError):
    """An evidence bundle could not be built or does not verify."""

    exit_code = 14


def exit_codes() -> dict[str, int]:
    """Each error class name and its CLI exit code, for ``--help`` and docs."""
    seen: dict[str, int] = {}
    stack: list[type[InvestigatorError]] = [InvestigatorError]
    while stack:
        cls = stack.pop()
        seen[cls.__name__] = cls.exit_code
        stack.extend(cls.__subclasses__())
    return dict(sorted(seen.items(), key=lambda kv: (kv[1], kv[0])))
