"""A tiny HTTP(S) server on localhost for tests: routes map paths to (status, headers, body)."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = tuple[int, dict[str, str], bytes]


@contextmanager
def serve(
    routes: dict[str, Any], ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Yields (base URL, the requests seen). A route value may be a callable returning a Route,
    or ("slow", seconds) to stall before answering. `host`: where to listen (a local cluster's
    pods reach the host at its node address, not at 127.0.0.1)."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append({"path": self.path, "headers": dict(self.headers)})
            route = routes.get(self.path.split("?")[0], (404, {}, b"not found"))
            if callable(route):
                route = route()
            if route[0] == "slow":
                time.sleep(route[1])
                route = (200, {}, b"late")
            status, headers, body = route
            self.send_response(status)
            chunked = headers.pop("Transfer-Encoding", None) == "chunked"
            for key, value in headers.items():
                self.send_header(key, value)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(body), 65536):
                    piece = body[start : start + 65536]
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

    server = ThreadingHTTPServer((host, 0), Handler)
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if ssl_context else "http"
    try:
        name = "localhost" if host == "127.0.0.1" else host
        yield f"{scheme}://{name}:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
