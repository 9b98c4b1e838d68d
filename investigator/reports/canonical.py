"""The canonical form of an executed notebook and its content digest.

    >>> nb = nbformat.read("report.ipynb", as_version=4)     # doctest: +SKIP
    >>> content_digest(nb)                                    # doctest: +SKIP
    'sha256:3f0c...'

Two runs of a deterministic report under the same grant must give the same
digest, and any change a reader can see must change it. The canonical form
(docs/reviewer.md, "What the digest covers") keeps every cell's type, source,
tags, execution count and outputs, and leaves out or normalizes only what
legitimately changes between runs:

- notebook metadata other than the kernel's name and language (papermill's
  timings and paths, the seal itself under ``metadata.investigator``);
- cell ids (random in nbformat 4.5), cell metadata other than ``tags``
  (execution timings, papermill status, JupyterLab view state like ``scrolled``);
- output ``transient`` data (display ids);
- widget model ids (renumbered in order of appearance) and the order of the
  widget state;
- timing lines libraries print (jieba's ``Loading model cost 0.8 seconds.``).

Anything else is content, UUIDs included: a UUID printed in a table or a
text/html output is something a reader sees. (The report helpers give plotly
figures fixed element ids, so reruns agree without renumbering.) Format 1
(``investigator-notebook-canonical/1``) also renumbered every UUID inside
text/html and JavaScript outputs; seals that name it verify by its rules.

The digest is SHA-256 over the RFC 8785 bytes of the canonical form.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterator
from typing import Any

from investigator.schema import canonical_json

CANONICAL_FORMAT = "investigator-notebook-canonical/2"
# format 1 renumbered UUIDs inside HTML and JavaScript outputs (it took them for random element ids)
CANONICAL_FORMAT_V1 = "investigator-notebook-canonical/1"
CANONICAL_FORMATS = (CANONICAL_FORMAT_V1, CANONICAL_FORMAT)
_TIMING_LINES = re.compile(
    r"^(Building prefix dict from .*|Loading model from cache .*|Loading model cost [0-9.]+ seconds\.|"
    r"Dumping model to file cache .*|Prefix dict has been built successfully\.|Dump cache file failed\.)\n?",
    re.MULTILINE)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_ID_MIMES = ("text/html", "application/javascript")
_KEEP_NB_METADATA = {"kernelspec": ("name", "language"), "language_info": ("name",)}


def sealed_canonical_format(body: dict[str, Any]) -> str:
    """The canonical format a seal body names (format 1 for seals made before the field had a choice).

    Raises ValueError for a format this version does not know.
    """
    fmt = str(body.get("canonical") or CANONICAL_FORMAT_V1)
    if fmt not in CANONICAL_FORMATS:
        raise ValueError(f"unknown canonical format {fmt!r} (known: {', '.join(CANONICAL_FORMATS)})")
    return fmt


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _widget_ids(nb: dict[str, Any]) -> dict[str, str]:
    """Widget model id -> ``widget-N``: first the ids outputs show, in order, then the rest of the state."""
    order: list[str] = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            view = (output.get("data") or {}).get(_WIDGET_VIEW)
            if isinstance(view, dict) and view.get("model_id") and view["model_id"] not in order:
                order.append(view["model_id"])
    state = ((nb.get("metadata") or {}).get("widgets") or {}).get(_WIDGET_STATE, {}).get("state", {}) or {}
    rest = sorted((k for k in state if k not in order), key=lambda k: canonical_json(state[k]))
    return {old: f"widget-{i}" for i, old in enumerate(order + rest)}


def _replace_ids(obj: Any, ids: dict[str, str]) -> Any:
    if not ids:
        return obj
    if isinstance(obj, dict):
        return {ids.get(k, k): _replace_ids(v, ids) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_replace_ids(v, ids) for v in obj]
    if isinstance(obj, str):
        if obj in ids:
            return ids[obj]
        if obj.startswith("IPY_MODEL_") and obj[10:] in ids:
            return "IPY_MODEL_" + ids[obj[10:]]
    return obj


def _renumber_uuids(text: str) -> str:
    seen: dict[str, str] = {}

    def sub(match: re.Match[str]) -> str:
        return seen.setdefault(match.group(0).lower(), f"uuid-{len(seen)}")

    return _UUID.sub(sub, text)


def _output(output: dict[str, Any], ids: dict[str, str], fmt: str) -> dict[str, Any]:
    out = {k: v for k, v in output.items() if k != "transient"}
    if out.get("output_type") == "stream":
        out["text"] = _TIMING_LINES.sub("", _text(out.get("text")))
    if "data" in out:
        data = {}
        for mime, value in out["data"].items():
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                value = "".join(value)
            if fmt == CANONICAL_FORMAT_V1 and mime in _ID_MIMES and isinstance(value, str):
                value = _renumber_uuids(value)
            data[mime] = value
        out["data"] = data
    return _replace_ids(out, ids)


def canonical_cell(cell: dict[str, Any], ids: dict[str, str] | None = None,
                   fmt: str = CANONICAL_FORMAT) -> dict[str, Any]:
    """One cell's canonical form (see the module docstring) in format ``fmt``."""
    out: dict[str, Any] = {"cell_type": cell.get("cell_type"), "source": _text(cell.get("source"))}
    tags = (cell.get("metadata") or {}).get("tags")
    if tags:
        out["tags"] = list(tags)
    if cell.get("cell_type") == "code":
        out["execution_count"] = cell.get("execution_count")
        outputs = [_output(o, ids or {}, fmt) for o in cell.get("outputs", []) or []]
        # a stream that held only timing lines leaves nothing a reader sees
        out["outputs"] = [o for o in outputs if not (o.get("output_type") == "stream" and not o["text"])]
    if cell.get("attachments"):
        out["attachments"] = cell["attachments"]
    return out


def canonical_notebook(nb: dict[str, Any], fmt: str = CANONICAL_FORMAT) -> dict[str, Any]:
    """The canonical form of a whole notebook (a plain dict, JSON-ready) in format ``fmt``.

    Raises ValueError for a format this version does not know.
    """
    if fmt not in CANONICAL_FORMATS:
        raise ValueError(f"unknown canonical format {fmt!r} (known: {', '.join(CANONICAL_FORMATS)})")
    nb = copy.deepcopy(dict(nb))
    ids = _widget_ids(nb)
    meta = nb.get("metadata") or {}
    kept: dict[str, Any] = {}
    for key, fields in _KEEP_NB_METADATA.items():
        if isinstance(meta.get(key), dict):
            kept[key] = {f: meta[key][f] for f in fields if f in meta[key]}
    widgets = (meta.get("widgets") or {}).get(_WIDGET_STATE, {}).get("state")
    if widgets:
        kept["widgets"] = _replace_ids(dict(sorted(((ids.get(k, k), v) for k, v in widgets.items()))), ids)
    return {"format": fmt, "nbformat": nb.get("nbformat"), "metadata": kept,
            "cells": [canonical_cell(c, ids, fmt) for c in nb.get("cells", [])]}


def _digest(obj: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(obj)).hexdigest()


def content_digest(nb: dict[str, Any], fmt: str = CANONICAL_FORMAT) -> str:
    """``sha256:<hex>`` over the RFC 8785 bytes of :func:`canonical_notebook`."""
    return _digest(canonical_notebook(nb, fmt))


def cell_digests(nb: dict[str, Any], fmt: str = CANONICAL_FORMAT) -> list[str]:
    """One digest per cell (so verification can name the cell that changed)."""
    return [_digest(c) for c in canonical_notebook(nb, fmt)["cells"]]


def metadata_digest(nb: dict[str, Any], fmt: str = CANONICAL_FORMAT) -> str:
    canonical = canonical_notebook(nb, fmt)
    return _digest({"nbformat": canonical["nbformat"], "metadata": canonical["metadata"]})


def describe_cell(nb: dict[str, Any], index: int) -> str:
    """``cell 7 (code: 'rn.show_table(...')`` — how verification names a cell."""
    cells = nb.get("cells", [])
    if not 0 <= index < len(cells):
        return f"cell {index} (missing)"
    cell = cells[index]
    first = next((line for line in _text(cell.get("source")).splitlines() if line.strip()), "")
    tags = (cell.get("metadata") or {}).get("tags") or []
    tag_text = f", tags {','.join(tags)}" if tags else ""
    return f"cell {index} ({cell.get('cell_type')}{tag_text}: {first[:60]!r})"


def diff_cells(expected: list[str], nb: dict[str, Any], fmt: str = CANONICAL_FORMAT) -> Iterator[str]:
    """Names of the cells whose digests differ from ``expected`` (added, removed or changed)."""
    actual = cell_digests(nb, fmt)
    for i in range(max(len(expected), len(actual))):
        if i >= len(actual):
            yield f"cell {i} was removed"
        elif i >= len(expected):
            yield f"{describe_cell(nb, i)} was added"
        elif expected[i] != actual[i]:
            yield f"{describe_cell(nb, i)} changed"
