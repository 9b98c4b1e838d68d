"""`report verify`: pinned to the archive key, read-only without --archive, and fed hostile notebooks.

A small report notebook (a provenance record, no data) is sealed by the demo grant's
operator in a copy of the demo organisation (tests/unit/authority/conftest.py).
"""

from __future__ import annotations

import copy
import shutil
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner

from investigator import _crypto
from investigator.authority.grants import load_grant
from investigator.cli import main
from investigator.reports.notebook import PROVENANCE_MIME
from investigator.reports.seal import code_digest, environment_differences, seal_notebook, verify_report
from investigator.vault.store import Archive

from .conftest import NOW, Org


def _fingerprint(archive: Archive) -> str:
    return hashlib.sha256(_crypto.VerifyKey.from_b64(archive.config.signing_public_key).raw).hexdigest()


def _sealed(org: Org) -> Any:
    operator = load_grant(org.grant_path).operator
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("record_provenance(case)")
    record = {"archive_id": org.archive.archive_id, "grant_id": org.grant_id, "chunks": [], "merkle_roots": {}}
    cell.outputs = [nbformat.v4.new_output("display_data", data={PROVENANCE_MIME: record, "text/plain": "p"})]
    nb.cells = [nbformat.v4.new_markdown_cell("# report"), cell]
    nb.metadata["papermill"] = {"parameters": {"archive": str(org.archive.root), "grant": org.grant_id}}
    seal_notebook(nb, archive=org.archive, signer=org.key(operator), person=operator,
                  now=NOW + timedelta(minutes=10))
    return nb


@pytest.fixture
def sealed(org: Org, tmp_path: Path) -> Path:
    path = tmp_path / "report.ipynb"
    nbformat.write(_sealed(org), str(path))
    return path


def _cli(*args: object):
    return CliRunner().invoke(main, ["report", "verify", *map(str, args)])


def test_matching_pin_passes_and_a_wrong_pin_fails_with_the_reason(org: Org, sealed: Path) -> None:
    nb = nbformat.read(str(sealed), as_version=4)
    good = verify_report(nb, archive=org.archive, pin=_fingerprint(org.archive))
    assert good.ok, good.problems
    assert any("signing key pinned" in c for c in good.checked)
    other = hashlib.sha256(_crypto.SigningKey.generate().public.raw).hexdigest()
    bad = verify_report(nb, archive=org.archive, pin=other)
    assert not bad.ok and any("not the pinned key" in p for p in bad.problems)
    unpinned = verify_report(nb, archive=org.archive)
    assert unpinned.ok and any("taken from the archive itself" in w for w in unpinned.warnings)


def test_cli_pins_by_fingerprint_and_by_the_archive_key_file(org: Org, sealed: Path) -> None:
    root = org.archive.root
    by_hex = _cli(sealed, "--archive", root, "--fingerprint", _fingerprint(org.archive))
    by_file = _cli(sealed, "--archive", root, "--pubkey", root / "keys" / "archive-signing.pub")
    for out in (by_hex, by_file):
        assert out.exit_code == 0, out.output
        assert "signing key pinned" in out.output
    wrong = _cli(sealed, "--archive", root, "--fingerprint", "ab" * 32)
    assert wrong.exit_code == 4 and "not the pinned key" in wrong.output


def test_the_replaced_archive_key_is_caught_with_a_pin(org: Org, sealed: Path) -> None:
    genuine = _fingerprint(org.archive)
    forged = _crypto.SigningKey.generate().public.b64()
    toml = org.archive.root / "archive.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace(org.archive.config.signing_public_key, forged))
    (org.archive.root / "keys" / "archive-signing.pub").write_text(forged + "\n")
    out = _cli(sealed, "--archive", org.archive.root, "--fingerprint", genuine)
    assert out.exit_code == 4 and "not the pinned key" in out.output


def test_verify_is_read_only_unless_archive_is_given(org: Org, sealed: Path) -> None:
    log = org.archive.root / "audit" / "log.jsonl"
    before = log.read_bytes()
    named = _cli(sealed)  # the report names the archive: it is read, never written
    assert named.exit_code == 0, named.output
    assert "read-only" in named.output and log.read_bytes() == before
    explicit = _cli(sealed, "--archive", org.archive.root)
    assert explicit.exit_code == 0, explicit.output
    added = log.read_bytes()[len(before):].decode().splitlines()
    assert [json.loads(line)["action"] for line in added if '"action"' in line][-1] == "report.verify"


def _edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")


def _seal(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["metadata"]["investigator"]["seal"]


HOSTILE = [
    ("not JSON", lambda p: p.write_text('{"cells": [\n  oops'), "line 2, column 3"),
    ("a JSON list", lambda p: p.write_text("[1]"), "not a notebook"),
    ("cells not a list", lambda p: _edit(p, lambda d: d.update(cells=7)), "not a notebook"),
    ("metadata a list", lambda p: _edit(p, lambda d: d.update(metadata=[])), "not a notebook"),
    ("seal a string", lambda p: _edit(p, lambda d: d["metadata"]["investigator"].update(seal="x")),
     "metadata.investigator.seal: the notebook is not sealed"),
    ("seal body grant a list", lambda p: _edit(p, lambda d: _seal(d)["body"].update(grant=[1])),
     "metadata.investigator.seal"),
    ("cell digests a number", lambda p: _edit(p, lambda d: _seal(d)["body"].update(cell_digests=5, digest="x")),
     "cells: malformed"),
    ("reviews a string", lambda p: _edit(p, lambda d: d["metadata"]["investigator"].update(reviews="r")),
     "metadata.investigator.reviews"),
    ("sealed data a string", lambda p: _edit(p, lambda d: _seal(d)["body"].update(data="d")),
     "metadata.investigator.seal.body.data: malformed"),
]


@pytest.mark.parametrize("name,change,position", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_reports_exit_4_with_the_position(org: Org, sealed: Path, name, change, position) -> None:
    change(sealed)
    out = _cli(sealed, "--archive", org.archive.root)
    assert out.exit_code == 4, out.output
    assert isinstance(out.exception, SystemExit) and "Traceback" not in out.output
    assert position in out.output


def test_verify_report_never_raises_on_odd_shapes(org: Org) -> None:
    nb = _sealed(org)
    for odd in ({"metadata": 3}, {"metadata": {"investigator": []}}, [], "x"):
        assert not verify_report(odd).ok
    broken = copy.deepcopy(nb)
    broken["metadata"]["investigator"]["seal"]["signature"] = {"not": "a string"}
    broken["metadata"]["investigator"]["seal"]["public"] = 12
    assert not verify_report(broken, archive=org.archive, record=False).ok


def test_the_seal_records_the_search_normalization(org: Org, sealed: Path) -> None:
    # which messages a keyword finds depends on the normalization tables: the signed seal says which were used
    from investigator import textnorm

    doc = json.loads(sealed.read_text(encoding="utf-8"))
    assert _seal(doc)["body"]["package"]["search_normalization"] == str(textnorm.norm_version()) == "1710689403"
    assert _seal(doc)["body"]["package"]["investigator_code"] == code_digest()  # the code, not just the version
    _edit(sealed, lambda d: _seal(d)["body"]["package"].update(search_normalization="2740499686"))
    bad = verify_report(nbformat.read(str(sealed), as_version=4), archive=org.archive)
    assert not bad.ok and any("package" in p for p in bad.problems), bad.problems


def test_code_digest_follows_every_file_of_the_package_but_not_its_caches(tmp_path: Path) -> None:
    tree = tmp_path / "investigator"
    (tree / "vault").mkdir(parents=True)
    (tree / "vault" / "ingest.py").write_text("A = 1\n")
    (tree / "data.json").write_text("{}")
    before = code_digest(tree)
    (tree / "__pycache__").mkdir()
    (tree / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"cache")
    (tree / "vault" / "ingest.pyc").write_bytes(b"cache")
    assert code_digest(tree) == before  # caches do not count
    moved = tmp_path / "elsewhere" / "investigator"
    shutil.copytree(tree, moved)
    assert code_digest(moved) == before  # nor where it is installed
    (moved / "vault" / "ingest.py").write_text("A = 2\n")
    assert code_digest(moved) != before  # one changed line does


def test_a_reproduction_says_what_ran_differently() -> None:
    sealed = {"python": "3.11.7", "investigator": "0.1.0", "investigator_code": "sha256:aa", "polars": "2.1.0"}
    now = {"python": "3.11.7", "investigator": "0.1.0", "investigator_code": "sha256:bb", "polars": "2.1.0",
           "search_normalization": "1710689403"}
    assert environment_differences(sealed, now) == [
        "investigator_code: sealed with sha256:aa, reproduced with sha256:bb",
        "search_normalization: not recorded in the seal (sealed by an older release); here 1710689403"]
    assert environment_differences(dict(now), now) == []
