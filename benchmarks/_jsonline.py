"""The last line of every benchmark: one JSON object with every figure and ratio, comparable run to run.

    parser = argparse.ArgumentParser(...)
    add_json_flag(parser)
    args = parser.parse_args()
    with human_output(args):
        ...print the table...
    emit("search", {"messages": n, ...})

Without ``--json`` the table goes to stdout and the JSON object is its last line; with ``--json`` the
table goes to stderr and stdout holds the JSON line alone (for scripts that collect figures).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print only the final JSON line on stdout (the human-readable table goes to stderr)")


@contextlib.contextmanager
def human_output(args: argparse.Namespace) -> Iterator[None]:
    """Send what is printed inside the block to stderr when ``--json`` was given."""
    if getattr(args, "json", False):
        with contextlib.redirect_stdout(sys.stderr):
            yield
    else:
        yield


def emit(benchmark: str, figures: dict[str, Any]) -> None:
    """Print the JSON line: the benchmark's name, date, machine and ``figures``."""
    import polars as pl

    record = {"benchmark": benchmark, "date": time.strftime("%Y-%m-%d"), "python": platform.python_version(),
              "polars": pl.__version__, "cores": os.cpu_count(),
              "load_average": [round(x, 2) for x in os.getloadavg()], **figures}
    print(json.dumps(record, ensure_ascii=False), flush=True)


def json_stdout(args: argparse.Namespace) -> TextIO:
    """For scripts that print as they go: with ``--json`` send everything after this call to stderr.

    Returns the real stdout, for the final ``print(json.dumps(...), file=out)``.
    """
    out = sys.stdout
    if getattr(args, "json", False):
        sys.stdout = sys.stderr
    return out
