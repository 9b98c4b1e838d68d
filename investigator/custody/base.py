"""The custody protocol: what any holder of the archive's master keys must do.

    >>> from investigator.custody.file import unlock_archive
    >>> custody = unlock_archive(archive, passphrase, actor="wugang")   # doctest: +SKIP
    >>> dek, wrapped = custody.new_data_key("messages", "2026-11-18")    # doctest: +SKIP
    >>> custody.unwrap(wrapped) == dek                                   # doctest: +SKIP
    True
    >>> sealed = custody.seal(b"totp-key", purpose="totp", name="all")   # doctest: +SKIP

An unlocked :class:`Custody` wraps and unwraps data keys (the vault's
:class:`~investigator.vault.format.Keyring`), signs as the archive (manifests,
checkpoints, grants, sessions), seals and unseals small secrets (the TOTP key),
and manages master-key versions (rotation adds one, retirement removes one that
nothing depends on). Master keys never leave it: a PKCS#11 HSM or an OpenBao
transit backend implements the same methods by asking the device or server.

Backends: ``custody/file.py`` (a passphrase-protected key file in the archive,
the first one). Rotation (``custody/rotation.py``) works on any backend.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from investigator.vault.format import Keyring


class Custody(Keyring, Protocol):
    """Unlocked master-key custody (see the module docstring). Never prints a secret.

    ``unseal`` raises IntegrityError for a sealed value that was altered, moved
    to another purpose or name, or made under an unknown master-key version.
    ``add_version`` / ``remove_version`` raise ArchiveError when the backend
    refuses (e.g. removing the current version).
    """

    @property
    def current_version(self) -> int: ...

    def seal(self, secret: bytes, *, purpose: str, name: str) -> dict[str, Any]: ...

    def unseal(self, sealed: dict[str, Any], *, what: str = "") -> bytes: ...

    def versions(self) -> dict[int, str]: ...

    def add_version(self, *, now: datetime) -> int: ...

    def remove_version(self, version: int) -> None: ...


@runtime_checkable
class PeriodCustody(Custody, Protocol):
    """A custody that keeps one key per retention period and can destroy one (crypto-shredding).

    Every backend implements it: the key file (period keys sealed in it), PKCS#11 (one token object per
    period, C_DestroyObject) and OpenBao (one transit key per period, deleted); docs/admin.md, section 12.
    ``destroy_period`` raises ArchiveError (or KeyServiceError) when it cannot.
    """

    @property
    def period_scheme(self) -> str | None: ...

    def period_keys(self) -> dict[str, str]: ...

    def destroyed_periods(self) -> dict[str, str]: ...

    def destroy_period(self, period: str, *, now: datetime) -> bool: ...
