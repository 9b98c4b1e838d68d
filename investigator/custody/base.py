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
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from investigator.errors import ConfigError
from investigator.vault.destruction import PERIOD_SCHEMES, period_for
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


class RuntimePeriodScheme:
    """The period-key setting of a custody whose keys live outside the archive (PKCS#11 token, OpenBao transit):
    the archive's policy turns it on at run time (:meth:`use_period_keys`), where the key file keeps it in the
    file itself. Mixed into those backends; one copy of the state and its checks."""

    _period_scheme: str | None = None
    _is_destroyed: Callable[[str], bool] | None = None

    def use_period_keys(self, scheme: str, *, destroyed: Callable[[str], bool]) -> None:
        """Wrap day partitions' data keys under one key per period from now on. ``destroyed`` says whether a
        period was shredded (its signed destruction record exists): no key is made for it again.
        Raises ConfigError for an unknown scheme."""
        if scheme not in PERIOD_SCHEMES:
            raise ConfigError(f"unknown period scheme {scheme!r} (known: {', '.join(PERIOD_SCHEMES)})")
        self._period_scheme, self._is_destroyed = scheme, destroyed

    @property
    def period_scheme(self) -> str | None:
        return self._period_scheme

    def _period_for(self, kind: str, partition: str) -> str | None:
        return period_for(self._period_scheme, kind, partition)

    def _period_destroyed(self, period: str) -> bool:
        return self._is_destroyed is not None and self._is_destroyed(period)
