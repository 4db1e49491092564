"""The fault proxy and the node's kubelet API serve TLS: a client that connects and then says
nothing must not hold up the clients after it (the handshake used to run in the accepting
thread, so one silent connection stopped every new one)."""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from localcluster import tlsserver
from localcluster.pki import Authority
from localcluster.tlsserver import issued


class Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")


def test_a_silent_client_holds_up_no_one(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(tlsserver, "HANDSHAKE_SECONDS", 3.0)
    authority = Authority(tmp_path)
    server = issued(authority, Hello, "server")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/"
    verify = ssl.create_default_context(cafile=str(authority.cert_file))
    try:
        with socket.create_connection(("127.0.0.1", server.server_address[1])) as silent:
            # connected, no ClientHello: the next clients are served all the same, well before
            # the silent one's handshake deadline
            for _ in range(3):
                assert httpx.get(url, verify=verify, timeout=2.0).text == "hello"
            silent.settimeout(10)
            assert silent.recv(1) == b""  # and the silent one is let go at its deadline
    finally:
        server.shutdown()
        server.server_close()
