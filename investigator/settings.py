"""Settings that come from the environment, read in one place and only at the edges.

    >>> s = Settings.from_environ({"INVESTIGATOR_LANG": "en-US", "INVESTIGATOR_PASSPHRASE": "x"})
    >>> s.lang, s.passphrase == "x"
    ('en', True)
    >>> "x" in repr(s)
    False
    >>> "ipt1" in repr(Settings.from_environ({"INVESTIGATOR_PROCESS_TICKET": "ipt1.x.y"}))
    False
    >>> Settings.from_environ({}).lang
    'zh-CN'

The edges are the CLI, :func:`investigator.open_case` (its keyword arguments
fall back to these variables) and the report kernel's ``open_report_case``:
they call ``Settings.from_environ(os.environ)`` and pass values down. Library
functions below them never read the environment (a contract test checks
where ``os.environ`` may appear). Secrets in a Settings object are kept out of
its repr.

| variable | meaning |
|---|---|
| INVESTIGATOR_PASSPHRASE | the archive passphrase (embedded key service; the CLI prompts otherwise) |
| INVESTIGATOR_KEY_PASSPHRASE | the passphrase of a person's key file (the CLI prompts otherwise) |
| INVESTIGATOR_SESSION | a session token from ``investigator login`` (report kernels) |
| INVESTIGATOR_KEY_DIR | where personal key files live (default ``~/.investigator/keys/<archive id>``) |
| INVESTIGATOR_VERIFIED_DIR | where ``audit verify``, ``open`` and the key server record the last checkpoint this host verified (default ``~/.investigator/verified``; outside the archive) |
| INVESTIGATOR_LANG | user-interface language: ``zh-CN`` (default) or ``en`` |
| INVESTIGATOR_KEYSERVER | the key server's URL: clients go through it and never read the archive passphrase |
| INVESTIGATOR_REPORT_ARCHIVE | the archive a report kernel opens, set by ``report run`` / ``report reproduce`` (so a moved or copied archive is read where ``--archive`` says, not where the sealed parameters recorded it) |
| INVESTIGATOR_PROCESS_TICKET | a process ticket (``Case.process_ticket``): a report kernel's only credential in key-server mode |
| INVESTIGATOR_PKCS11_MODULE, INVESTIGATOR_PKCS11_PIN | the PKCS#11 custody's module path and user PIN (key server host) |
| BAO_ADDR, BAO_TOKEN, BAO_CACERT | the OpenBao transit custody's address, token and CA file (key server host) |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

PASSPHRASE_ENV = "INVESTIGATOR_PASSPHRASE"
KEY_PASSPHRASE_ENV = "INVESTIGATOR_KEY_PASSPHRASE"
SESSION_ENV = "INVESTIGATOR_SESSION"
KEY_DIR_ENV = "INVESTIGATOR_KEY_DIR"
VERIFIED_DIR_ENV = "INVESTIGATOR_VERIFIED_DIR"
LANG_ENV = "INVESTIGATOR_LANG"
KEYSERVER_ENV = "INVESTIGATOR_KEYSERVER"
PROCESS_TICKET_ENV = "INVESTIGATOR_PROCESS_TICKET"
REPORT_ARCHIVE_ENV = "INVESTIGATOR_REPORT_ARCHIVE"
PKCS11_MODULE_ENV = "INVESTIGATOR_PKCS11_MODULE"
PKCS11_PIN_ENV = "INVESTIGATOR_PKCS11_PIN"
BAO_ADDR_ENV = "BAO_ADDR"
BAO_TOKEN_ENV = "BAO_TOKEN"
BAO_CACERT_ENV = "BAO_CACERT"

DEFAULT_LANG = "zh-CN"


def normalize_lang(value: str | None) -> str:
    """``'en'`` for any English tag (``en``, ``EN``, ``en-US``), else the default ``'zh-CN'``."""
    return "en" if (value or "").strip().lower().startswith("en") else DEFAULT_LANG


@dataclass(frozen=True)
class Settings:
    """Values the edges read from the environment. Empty variables count as unset."""

    passphrase: str | None = field(default=None, repr=False)
    key_passphrase: str | None = field(default=None, repr=False)
    session: str | None = field(default=None, repr=False)
    key_dir: Path | None = None
    lang: str = DEFAULT_LANG
    keyserver: str | None = None
    process_ticket: str | None = field(default=None, repr=False)
    pkcs11_module: str | None = None
    pkcs11_pin: str | None = field(default=None, repr=False)
    bao_addr: str | None = None
    bao_token: str | None = field(default=None, repr=False)
    bao_cacert: str | None = None
    report_archive: Path | None = None
    verified_dir: Path | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "Settings":
        """Read the variables in the table above from ``environ`` (pass ``os.environ`` at an edge)."""
        def get(name: str) -> str | None:
            value = environ.get(name)
            return value if value else None

        key_dir = get(KEY_DIR_ENV)
        return cls(passphrase=get(PASSPHRASE_ENV), key_passphrase=get(KEY_PASSPHRASE_ENV), session=get(SESSION_ENV),
                   key_dir=Path(key_dir).expanduser() if key_dir else None, lang=normalize_lang(get(LANG_ENV)),
                   keyserver=get(KEYSERVER_ENV), process_ticket=get(PROCESS_TICKET_ENV),
                   pkcs11_module=get(PKCS11_MODULE_ENV), pkcs11_pin=get(PKCS11_PIN_ENV), bao_addr=get(BAO_ADDR_ENV),
                   bao_token=get(BAO_TOKEN_ENV), bao_cacert=get(BAO_CACERT_ENV),
                   report_archive=Path(get(REPORT_ARCHIVE_ENV) or "") if get(REPORT_ARCHIVE_ENV) else None,
                   verified_dir=Path(get(VERIFIED_DIR_ENV) or "").expanduser() if get(VERIFIED_DIR_ENV) else None)

    def with_passphrase(self, passphrase: str | None) -> "Settings":
        """These settings with ``passphrase`` (a prompt's answer, an argument) in place of the environment's."""
        return replace(self, passphrase=passphrase) if passphrase else self
