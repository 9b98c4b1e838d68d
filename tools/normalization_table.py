"""Rebuild or check the search normalization tables shipped in investigator/data/normalization.json.

    .venv/bin/python tools/normalization_table.py --check   # exit 1 if the file differs from the rules built here
    .venv/bin/python tools/normalization_table.py --write   # build from the rules here and write the file

A maintenance step for developers, run after a normalization rule (investigator/textnorm.py), the
confusables file (investigator/data/confusables.txt) or OpenCC changes. The file is what every
installation searches with, whatever its Python's Unicode version: commit it with the change, and
note the new fingerprint (``version``) in docs/analysis.md. tests/unit/test_textnorm.py fails while
the shipped file differs from the rules built under the project's Python (3.11, Unicode 14.0.0).
搜索规范化表的维护工具：规则、confusables 或 OpenCC 变更后重建。
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from investigator import textnorm  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="build the tables from the rules here and write the file")
    action.add_argument("--check", action="store_true", help="exit 1 if the file differs from the rules built here")
    args = parser.parse_args(argv)
    if args.write:
        header = textnorm.write_table_file()
        print(f"wrote {textnorm.TABLE_FILE}: {header}")
        return 0
    display, compact, header = textnorm.read_table_file(textnorm.TABLE_FILE)
    if (display, compact) == textnorm.build_tables():
        print(f"{textnorm.TABLE_FILE} equals the tables built here ({header})")
        return 0
    print(f"{textnorm.TABLE_FILE} differs from the tables built here: the file was built with {header}, "
          f"this Python has Unicode {textnorm.unicodedata.unidata_version}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
