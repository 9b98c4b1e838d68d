"""Archive settings (``archive.toml``) and runtime settings, loaded at the edge.

    >>> cfg = ArchiveConfig.load(Path("case-archive"))   # doctest: +SKIP
    >>> cfg.timezone
    'Asia/Shanghai'

Nothing here reads the environment at import time; the CLI or a notebook's
first cell loads settings and passes them in.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from investigator.errors import ArchiveError, ConfigError
from investigator.vault.format import FORMAT_VERSION, READABLE_FORMATS
from investigator.vault.layout import CONFIG_NAME as CONFIG_NAME  # re-exported; the name lives in the layout
from investigator.vault.layout import Layout

_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._:/@ -]{1,200}$")  # no quotes or newlines: written into TOML as is

DEFAULT_TZ = "Asia/Shanghai"
DEFAULT_CHUNK_SECONDS = 3600


def check_timezone(name: str) -> ZoneInfo:
    """The zone called ``name``. Raises ConfigError for an unknown zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r}", hint="use an IANA name such as Asia/Shanghai or UTC") from exc


@dataclass(frozen=True)
class ArchiveConfig:
    """The settings an archive is created with; fixed for its lifetime."""

    archive_id: str
    created: str
    timezone: str = DEFAULT_TZ
    chunk_seconds: int = DEFAULT_CHUNK_SECONDS
    signing_public_key: str = ""  # base64 Ed25519
    format_version: int = FORMAT_VERSION
    # Where the master keys live ([custody] in archive.toml; names only, never a secret):
    # backend "file" (keys/master.json, the default and what an archive without the table uses),
    # "pkcs11" (token_label) or "openbao" (mount). investigator.custody.registry reads it.
    custody: dict[str, str] = field(default_factory=lambda: {"backend": "file"})

    @property
    def zone(self) -> ZoneInfo:
        return check_timezone(self.timezone)

    def to_toml(self) -> str:
        return (
            "# investigator archive settings. Do not edit: the archive id and key are bound into every chunk.\n"
            "[archive]\n"
            f'id = "{self.archive_id}"\n'
            f"format_version = {self.format_version}\n"
            f'created = "{self.created}"\n'
            f'timezone = "{self.timezone}"\n'
            f"chunk_seconds = {self.chunk_seconds}\n"
            f'signing_public_key = "{self.signing_public_key}"\n'
            "\n[custody]\n"
            + "".join(f'{k} = "{v}"\n' for k, v in sorted(self.custody.items()))
        )

    @classmethod
    def load(cls, root: Path) -> "ArchiveConfig":
        """Read ``root/archive.toml``.

        Raises ArchiveError when it is missing, unreadable or of an unknown
        format version (archive-format.md: reject unknown versions first).
        """
        path = Layout(Path(root)).config
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ArchiveError(f"{root}: not an investigator archive (no {CONFIG_NAME})",
                               hint="create one with 'investigator init PATH'") from exc
        except OSError as exc:
            raise ArchiveError(f"{path}: unreadable archive settings") from exc
        return cls.parse(data, path)

    @classmethod
    def parse(cls, raw: bytes, path: Path) -> "ArchiveConfig":
        """The settings in ``raw`` (archive.toml's bytes, e.g. read from an object store); ``path`` names it in errors.

        Raises ArchiveError as :meth:`load` does.
        """
        try:
            document = tomllib.loads(raw.decode("utf-8"))
            data = document["archive"]
        except (tomllib.TOMLDecodeError, KeyError, UnicodeDecodeError) as exc:
            raise ArchiveError(f"{path}: unreadable archive settings") from exc
        version = data.get("format_version")
        if version not in READABLE_FORMATS:
            raise ArchiveError(f"{path}: archive format version {version!r} is not supported "
                               f"(this program reads versions {', '.join(map(str, READABLE_FORMATS))})")
        try:
            cfg = cls(archive_id=str(data["id"]), created=str(data["created"]),
                      timezone=str(data["timezone"]), chunk_seconds=int(data["chunk_seconds"]),
                      signing_public_key=str(data["signing_public_key"]), format_version=int(version),
                      custody=_custody_table(document.get("custody"), path))
        except (KeyError, ValueError) as exc:
            raise ArchiveError(f"{path}: missing or invalid setting ({exc})") from exc
        check_timezone(cfg.timezone)
        if cfg.chunk_seconds <= 0 or 86400 % cfg.chunk_seconds:
            raise ArchiveError(f"{path}: chunk_seconds must divide a day, got {cfg.chunk_seconds}")
        return cfg


def parse_custody_table(table: object, path: Path) -> dict[str, str]:
    """A [custody] table checked as archive.toml's is (ArchiveError naming ``path`` otherwise)."""
    return _custody_table(table, path)


def _custody_table(table: object, path: Path) -> dict[str, str]:
    """The [custody] table: string names only; absent means the key file (archives made before it existed)."""
    if table is None:
        return {"backend": "file"}
    if not isinstance(table, dict) or not all(isinstance(v, str) and _SAFE_VALUE.match(v) for v in table.values()):
        raise ArchiveError(f"{path}: [custody] must hold plain names (backend, token_label, mount ...)")
    if not table.get("backend"):
        raise ArchiveError(f"{path}: [custody] names no backend (file, pkcs11 or openbao)")
    return {str(k): str(v) for k, v in table.items()}


def validate_chunk_seconds(value: int) -> int:
    """Raise ConfigError unless ``value`` divides a day into whole chunks (60 s .. 86400 s)."""
    if value < 60 or value > 86400 or 86400 % value:
        raise ConfigError(f"chunk size {value} s must be between 60 and 86400 and divide a day evenly",
                          hint="e.g. 900, 1800, 3600 (default), 21600 or 86400")
    return value
