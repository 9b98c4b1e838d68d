"""keyword_sweep takes a saved search by name: `investigator report run keyword_sweep ... -r saved_search NAME`."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from investigator import analysis as A
from investigator.cli import main
from investigator.demo import DEMO_PASSPHRASE, demo_grant, demo_session, open_demo_case
from investigator.demo.people import DEMO_ONLY_PASSPHRASE
from investigator.reports import notebook as rn
from investigator.reports.seal import verify_report
from investigator.vault.store import Archive
from investigator.widgets.saved import SavedSearches

pytestmark = pytest.mark.slow


def test_report_run_keyword_sweep_with_a_saved_search_by_name(demo_archive, tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(demo_archive, root)
    case = open_demo_case(root)
    SavedSearches(case).save("complaints", {"query": "投诉", "mode": "word", "types": ["text"]})
    distinct = rn.distinct_messages(case.messages(progress=False), rn.case_people(case))
    expected = A.search(A.by_types(distinct, ["text"]), "投诉", mode="word", tz=case.timezone)
    assert expected.height > 0
    env = {"INVESTIGATOR_PASSPHRASE": DEMO_PASSPHRASE,
           "INVESTIGATOR_KEY_PASSPHRASE": DEMO_ONLY_PASSPHRASE.format(person="sunli")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        done = CliRunner().invoke(main, ["report", "run", "keyword_sweep", "--archive", str(root), "--grant",
                                         demo_grant(root), "--as", "sunli", "--session", demo_session(root),
                                         "--key-dir", str(root / "demo-keys"), "-o", str(tmp_path / "out"),
                                         "-r", "saved_search", "complaints", "-p", "keywords", "[退款]",
                                         "--no-html", "--json"], env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    notebook = Path(json.loads(done.stdout)["notebook"])
    nb = nbformat.read(str(notebook), as_version=4)
    assert nb.metadata["papermill"]["parameters"]["saved_search"] == "complaints"
    text = "\n".join(str((o.get("data") or {}).get("text/markdown") or (o.get("data") or {}).get("text/html") or
                         o.get("text", "")) for c in nb.cells for o in c.get("outputs", []))
    assert "保存的搜索 **complaints**" in text and "query = `投诉`" in text and "mode = `word`" in text
    # the saved search's hits, not the keywords parameter's (退款)
    assert f"{expected.height} 次命中，{expected['record_hash'].n_unique()} 条不同的消息" in text
    archive = Archive.open(root)
    runs = [e for e in archive.audit.entries() if e.action == "search.run"]
    assert [(e.outcome, e.details["name"], e.actor) for e in runs] == [("ok", "complaints", "sunli")]
    assert verify_report(nb, archive=archive).ok
