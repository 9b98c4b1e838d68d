"""The separated-duties path (test_separated_duties) on a PKCS#11 token (SoftHSM2) and on OpenBao transit.

The same walk as on the key file, every step of it: the custody sits below the key server, so what changes is
where the master keys, the signing key and the TOTP sealing key live, and every actor's process must not notice.
A module of its own so that test workers share the three long walks.

Without SoftHSM2 or ``bao`` these are skipped, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_separated_duties import bao_server, softhsm, walk_the_path  # noqa: F401  (session fixtures)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["pkcs11", "openbao"])
def test_every_actor_is_a_separate_process_without_the_passphrase_on_a_token_and_on_transit(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    walk_the_path(backend, tmp_path, request)
