"""The small client the node and the tests use: an API server that does not answer is an OSError
(Unreachable), which the node's loops wait out, never an httpx error that ends their thread."""

from __future__ import annotations

import os
import socket
import threading
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


def test_an_answer_that_is_not_tls_names_who_listens_there(tmp_path: Path) -> None:
    """A plain server on the API server's port (or the server garbling its answer): the error
    says which process listens there, so a test's failure tells the two apart."""
    with socket.create_server(("127.0.0.1", 0)) as plain:
        port = plain.getsockname()[1]

        def answer() -> None:
            connection, _ = plain.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        threading.Thread(target=answer, daemon=True).start()
        client = Client(f"https://127.0.0.1:{port}", Authority(tmp_path).cert_file, timeout=5.0)
        with pytest.raises(Unreachable) as raised:
            client.get("/api/v1/pods")
        client.close()
    said = str(raised.value)
    assert "WRONG_VERSION_NUMBER" in said, said
    assert f"listening on port {port}: LISTEN" in said and f"pid={os.getpid()}," in said, said
