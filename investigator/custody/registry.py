"""Which custody an archive uses (its ``[custody]`` table) and how to create or open it.

    >>> secrets = Settings.from_environ(os.environ).with_passphrase("...")        # doctest: +SKIP
    >>> archive = create_archive(Path("a"), backend="file", secrets=secrets)        # doctest: +SKIP
    >>> custody = open_custody(archive, secrets, actor="wugang", purpose="keyserver")  # doctest: +SKIP

``archive.toml`` names the backend and its non-secret parameters::

    [custody]
    backend = "pkcs11"          # or "file" (the default), "openbao"
    token_label = "investigator"  # pkcs11: the token
    mount = "transit"           # openbao: the transit mount
    state_dir = "/var/lib/investigator/<id>"  # optional: TOTP secrets and counters on the custodian's host

The secrets (passphrase, PIN, token) come from the edge as a
:class:`~investigator.settings.Settings` (the CLI and the key server read
them from the environment). Every open is audited as ``unlock``,
allowed or refused, with who and why.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from investigator import _crypto
from investigator.custody import file as file_custody
from investigator.custody import pkcs11 as pkcs11_custody
from investigator.custody.base import Custody
from investigator.custody.openbao import OpenBaoCustody
from investigator.custody.pkcs11 import Pkcs11Custody
from investigator.errors import ConfigError, InvestigatorError, WrongPassphrase
from investigator.settings import (BAO_ADDR_ENV, BAO_TOKEN_ENV, PASSPHRASE_ENV, PKCS11_MODULE_ENV, PKCS11_PIN_ENV,
                                   Settings)
from investigator.vault.config import check_timezone, validate_chunk_seconds
from investigator.vault.store import Archive

BACKENDS = ("file", "pkcs11", "openbao")
DEFAULT_TOKEN_LABEL = "investigator"
DEFAULT_MOUNT = "transit"


def backend_of(archive: Archive) -> str:
    """The archive's custody backend name. Raises ConfigError for one this program does not know."""
    name = archive.config.custody.get("backend", "file")
    if name not in BACKENDS:
        raise ConfigError(f"archive.toml names an unknown custody backend {name!r}",
                          hint=f"one of {', '.join(BACKENDS)}")
    return name


def _need(value: str | None, variable: str, backend: str) -> str:
    if not value:
        raise ConfigError(f"the {backend} custody needs {variable}", hint=f"set {variable} on the key server's host")
    return value


def create_archive(root: Path | str, *, backend: str = "file", secrets: Settings,
                   token_label: str = DEFAULT_TOKEN_LABEL, mount: str = DEFAULT_MOUNT, state_dir: Path | None = None,
                   timezone_name: str = "Asia/Shanghai", chunk_seconds: int = 3600, actor: str = "admin",
                   kdf_n: int = _crypto.SCRYPT_N, now: datetime | None = None,
                   period_keys: str | None = None) -> Archive:
    """Create an archive whose master keys live in ``backend`` (provisioned now, for this archive only).

    ``period_keys`` (``"quarter"``, any backend) wraps day partitions' data keys under
    one key per retention period, so that expired periods can be crypto-shredded.

    ``state_dir`` (an absolute folder on the custodian's host) keeps the TOTP
    secrets and counters out of the shared archive folder. Raises ConfigError
    (unknown backend, missing module / address / token, bad time zone or chunk
    size, a relative state_dir), WrongPassphrase (empty passphrase, wrong PIN or
    token), ArchiveError (``root`` not empty, keys already provisioned).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown custody backend {backend!r}", hint=f"one of {', '.join(BACKENDS)}")
    state = {}
    if state_dir is not None:
        if not Path(state_dir).is_absolute():
            raise ConfigError(f"the custody state folder must be an absolute path, got {state_dir}",
                              hint="e.g. /var/lib/investigator/<archive name> on the key server's host")
        state = {"state_dir": str(state_dir)}
    if backend == "file":
        return file_custody.create_archive(root, passphrase=_need(secrets.passphrase, PASSPHRASE_ENV, backend),
                                           timezone_name=timezone_name, chunk_seconds=chunk_seconds, actor=actor,
                                           kdf_n=kdf_n, custody={"backend": "file", **state}, now=now,
                                           period_keys=period_keys)
    if period_keys and period_keys not in ("quarter",):
        raise ConfigError(f"unknown period scheme {period_keys!r} (known: quarter)")
    check_timezone(timezone_name)
    validate_chunk_seconds(chunk_seconds)
    when = now or datetime.now(timezone.utc)
    opened: list[Custody] = []

    def new_keyring(archive_id: str, _keyfile: Path) -> Custody:
        custody: Custody
        if backend == "pkcs11":
            custody = Pkcs11Custody.provision(_need(secrets.pkcs11_module, PKCS11_MODULE_ENV, backend),
                                              _need(secrets.pkcs11_pin, PKCS11_PIN_ENV, backend), token_label,
                                              archive_id, now=when)
        else:
            custody = OpenBaoCustody.provision(_need(secrets.bao_addr, BAO_ADDR_ENV, backend),
                                               _need(secrets.bao_token, BAO_TOKEN_ENV, backend), archive_id,
                                               mount=mount, now=when, ca_cert=secrets.bao_cacert)
        opened.append(custody)
        return custody

    table = {"backend": backend, **({"token_label": token_label} if backend == "pkcs11" else {"mount": mount}),
             **state, **({"period_keys": period_keys} if period_keys else {})}
    try:
        return Archive.create(Path(root), new_keyring=new_keyring, timezone_name=timezone_name,
                              chunk_seconds=chunk_seconds, actor=actor, custody=table, now=when)
    finally:
        for custody in opened:
            _close(custody)


def open_custody(archive: Archive, secrets: Settings, *, actor: str = "", purpose: str = "") -> Custody:
    """The archive's master keys through its configured backend; every open is audited (``unlock``).

    Raises WrongPassphrase (passphrase, PIN or token refused: audited as
    denied), ConfigError (a needed secret or address missing), IntegrityError
    (the backend holds another archive's keys), ArchiveError / KeyServiceError
    (keys missing, device or server unreachable).
    """
    backend = backend_of(archive)
    why = purpose or "unspecified"
    custody: Custody
    try:
        if backend == "file":  # the key file audits its own unlocks, allowed or refused by the passphrase
            return file_custody.unlock_archive(archive, _need(secrets.passphrase, PASSPHRASE_ENV, backend),
                                               actor=actor, purpose=purpose)
        if backend == "pkcs11":
            custody = pkcs11_custody.unlock_archive(
                archive, _need(secrets.pkcs11_module, PKCS11_MODULE_ENV, backend),
                _need(secrets.pkcs11_pin, PKCS11_PIN_ENV, backend),
                archive.config.custody.get("token_label", DEFAULT_TOKEN_LABEL), actor=actor, purpose=why)
        else:
            custody = OpenBaoCustody.for_archive(archive, _need(secrets.bao_addr, BAO_ADDR_ENV, backend),
                                                 _need(secrets.bao_token, BAO_TOKEN_ENV, backend),
                                                 mount=archive.config.custody.get("mount", DEFAULT_MOUNT),
                                                 ca_cert=secrets.bao_cacert)
    except WrongPassphrase:
        if backend == "openbao":  # the key file and the PKCS#11 unlock audit a wrong passphrase / PIN themselves
            archive.audit.append(actor or "unknown", "unlock", archive.archive_id,
                                 {"reason": "token refused", "purpose": why, "custody": backend}, outcome="denied")
        raise
    except InvestigatorError as err:
        # the other refusals too (server unreachable or sealed, token or keys missing, another archive's keys,
        # a secret not set): each one is in the audit log with its reason (no secret is in the message)
        archive.audit.append(actor or "unknown", "unlock", archive.archive_id,
                             {"reason": str(err), "purpose": why, "custody": backend}, outcome="denied")
        raise
    archive.audit.append(actor or "unknown", "unlock", archive.archive_id,
                         {"purpose": why, "custody": backend, "versions": sorted(custody.versions())}, outcome="ok")
    return custody


def _close(custody: object) -> None:
    close = getattr(custody, "close", None)
    if callable(close):
        try:
            close()
        except InvestigatorError:  # closing is best effort; the keys never left the backend
            pass
