"""The separated-duties path (test_separated_duties) on OpenBao transit (a dev server on loopback).

The same walk as on the key file, every step of it: the custody sits below the key server, so what changes is
where the master keys, the signing key and the TOTP sealing key live, and every actor's process must not notice.
One module per custody, so that test workers share the three long walks.

Without `bao` this is skipped, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_separated_duties import bao_server, softhsm, walk_the_path  # noqa: F401  (session fixtures)


@pytest.mark.slow
def test_every_actor_is_a_separate_process_without_the_passphrase_on_openbao(tmp_path: Path,
                                                                          request: pytest.FixtureRequest) -> None:
    walk_the_path("openbao", tmp_path, request)
