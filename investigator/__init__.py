"""investigator: policy-checked, encrypted, auditable investigation of chat records.

    >>> import investigator
    >>> investigator.__version__
    '0.1.0'
    >>> case = investigator.open_case("demo-archive", grant="G-...", person="sunli", totp="123456")  # doctest: +SKIP
    >>> hits = investigator.search(case.messages(), '加班费 OR "overtime pay"', mode="word")        # doctest: +SKIP

The public API is small on purpose and imported explicitly, so a type checker
sees ``open_case(...) -> Case``; everything else is reachable through its
package (``investigator.vault``, ``investigator.access``, ``investigator.analysis``
...; docs/architecture.md has the map). Importing the package has one side
effect, registering the ``s3://`` witness kind (vault/witness.py; boto3 loads on first use); it
loads Polars (about 0.5 s) but not jieba, which the first word-mode search loads.
"""

from __future__ import annotations

from investigator._version import __version__
from investigator.access.case import Case, open_case
from investigator.analysis import search
from investigator.errors import InvestigatorError
from investigator.vault.store import Archive
from investigator.vault.witness import Witness, register_scheme


def _s3_witness(spec: str) -> "Witness":
    """An ``s3://`` witness, made by the backup layer (which loads boto3 only now, when one is used)."""
    from investigator.backup.witness import s3_witness

    return s3_witness(spec)


# s3:// witnesses wherever a checkpoint is written (CLI, key server, notebooks), not only in processes that
# happened to import investigator.backup: `investigator ingest` once recorded 'witness.failed: no witness of
# kind s3:// is available here' for every checkpoint of an archive whose policy names an S3 witness
register_scheme("s3", _s3_witness)

__all__ = ["Archive", "Case", "InvestigatorError", "__version__", "open_case", "search"]
