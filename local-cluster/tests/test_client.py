"""The small client the node and the tests use: an API server that does not answer is an OSError
(Unreachable), which the node's loops wait out, never an httpx error that ends their thread."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from localcluster.client import Client, Unreachable
from localcluster.pki import Authority


def test_an_api_server_that_does_not_answer_is_unreachable(tmp_path: Path) -> None:
    with socket.socket() as free:  # a port nothing listens on once this closes
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    authority = Authority(tmp_path)
    client = Client(f"https://127.0.0.1:{port}", authority.cert_file, timeout=2.0)
    with pytest.raises(Unreachable, match=r"GET /api/v1/pods: ") as raised:
        client.get("/api/v1/pods")
    assert isinstance(raised.value, OSError)
    with pytest.raises(OSError, match=r"watch /api/v1/pods: "):
        next(client.watch("/api/v1/pods"))
    client.close()
