"""Importers: chat exports and event logs -> normalized Polars frames.

One module per format, all of one shape (like papermill's engines): ``NAME``,
``sniff(path, head) -> bool`` and ``parse(path, options) -> ImportResult``.

    >>> from investigator.importers import read_export, ImportOptions
    >>> result = read_export("slack-export.zip")                      # doctest: +SKIP
    >>> result.messages.select("ts", "sender_name", "text").head()    # doctest: +SKIP
    >>> read_export("chat.txt", format="whatsapp",
    ...             options=ImportOptions(tz="Europe/Berlin", date_order="dmy"))  # doctest: +SKIP

No crypto here and nothing is written anywhere: the archive stores the frames.
Every refusal is an :class:`~investigator.errors.ImportFormatError` naming the
file, the position and what was expected (docs/formats.md).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from investigator.errors import ImportFormatError

from investigator.importers import (
    authlog,
    discord,
    events_csv,
    events_jsonl,
    normalized_csv,
    normalized_jsonl,
    slack,
    telegram,
    wechat_pywxdump,
    wechat_wechatmsg,
    wecom,
    whatsapp,
)
from investigator.importers._container import read_head
from investigator.importers._model import ImportOptions, ImportResult, SourceFile, Skipped

__all__ = [
    "FORMATS",
    "ImportOptions",
    "ImportResult",
    "Skipped",
    "SourceFile",
    "detect_format",
    "get_importer",
    "read_export",
]

# Detection order: the most specific sniffers first, the catch-all csv/jsonl last.
_REGISTRY: dict[str, ModuleType] = {
    module.NAME: module
    for module in (
        slack,
        telegram,
        discord,
        whatsapp,
        wecom,
        wechat_pywxdump,
        wechat_wechatmsg,
        authlog,
        events_jsonl,
        events_csv,
        normalized_jsonl,
        normalized_csv,
    )
}

FORMATS: tuple[str, ...] = (
    "jsonl", "csv", "slack", "telegram", "whatsapp", "discord", "wecom",
    "wechat-pywxdump", "wechat-wechatmsg", "events-csv", "events-jsonl", "authlog",
)
assert set(FORMATS) == set(_REGISTRY)


def get_importer(name: str) -> ModuleType:
    """The module that reads format ``name``.

    Raises ImportFormatError for an unknown name, listing the known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ImportFormatError("options", "format", "one of " + ", ".join(FORMATS)) from None


def detect_format(path: str | Path) -> str:
    """The format of the export at ``path``, from its name, layout and first bytes.

    Raises ImportFormatError naming the file and the formats tried when none matches.
    """
    path = Path(path)
    if not path.exists():
        raise ImportFormatError(path.name, "", "an existing file or folder")
    try:
        head = read_head(path)
    except OSError as exc:
        raise ImportFormatError(path.name, "", "a readable file") from exc
    for name, module in _REGISTRY.items():
        try:
            if module.sniff(path, head):
                return name
        except ImportFormatError:
            raise
        except Exception:  # a sniffer that chokes on odd bytes simply does not match
            continue
    raise ImportFormatError(path.name, "", "a known export format (tried " + ", ".join(_REGISTRY) + ")",
                            hint="pass --format NAME explicitly")


def read_export(path: str | Path, *, format: str = "auto", options: ImportOptions = ImportOptions()) -> ImportResult:
    """Read the export at ``path`` into normalized frames.

    ``format="auto"`` runs :func:`detect_format`. Strict by default: the first
    malformed record raises ImportFormatError(file, position, expected); with
    ``options.lenient`` such records are skipped and listed in ``result.skipped``.
    Hostile archives (path traversal, symlinks, bombs, huge lines, deep JSON,
    invalid UTF-8) always raise ImportFormatError.
    """
    path = Path(path)
    name = detect_format(path) if format == "auto" else format
    module = get_importer(name)
    try:
        return module.parse(path, options)
    except ImportFormatError:
        raise
    except RecursionError as exc:
        raise ImportFormatError(path.name, "", "JSON nested at most 64 levels deep") from exc
    except MemoryError as exc:
        raise ImportFormatError(path.name, "", "an export small enough to read into memory") from exc
