"""An S3 endpoint that accepts connections but never answers (a stopped or wedged server) fails fast and clearly."""

from __future__ import annotations

import socket
import time

import pytest

from investigator.backup.s3 import S3Config, S3Target
from investigator.backup.target import TargetError


def test_a_server_that_stops_answering_fails_a_call_within_a_minute_by_default():
    """With SeaweedFS stopped (SIGSTOP: the kernel still accepts connections) `backup run --to s3://...` sat for
    243 s with no output before 'S3 endpoint not reachable (ReadTimeoutError)' (botocore's 60 s read timeout,
    4 attempts), and a key server with an S3 witness would have waited as long at every checkpoint. The
    defaults now bound one call."""
    config = S3Config(endpoint="http://127.0.0.1:9")
    client = S3Target("bucket", "prefix", config).client.meta.config
    worst = client.retries["total_max_attempts"] * (client.connect_timeout + client.read_timeout)
    assert worst <= 60, worst


def test_an_endpoint_that_never_answers_is_named_as_unreachable(tmp_path):
    with socket.socket() as silent:  # listens (the handshake completes) and never reads or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        target = S3Target("bucket", "prefix", S3Config(endpoint=endpoint, access_key_id="k", secret_access_key="s",
                                                       connect_timeout=1, read_timeout=1, attempts=1))
        started = time.monotonic()
        with pytest.raises(TargetError, match="S3 endpoint not reachable") as caught:
            target.prepare()
        assert time.monotonic() - started < 10
    assert "AWS_ENDPOINT_URL" in caught.value.hint
