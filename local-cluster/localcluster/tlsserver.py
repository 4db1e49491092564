"""A threading HTTPS server whose TLS handshakes happen in each connection's own thread.

`ssl.SSLContext.wrap_socket(listening, server_side=True)` makes `accept()` complete the handshake
in the one thread that serves the listening socket: a client that connects and then says nothing
(a peer whose event loop is busy, a task cancelled mid-connect) holds up every connection after it.
Here `accept()` only accepts; the handshake runs in the connection's thread, with a deadline.
"""

from __future__ import annotations

import logging
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pki import Authority

log = logging.getLogger(__name__)

HANDSHAKE_SECONDS = 10.0


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext
    ) -> None:
        super().__init__(address, handler)
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def finish_request(self, request: Any, client_address: Any) -> None:
        assert isinstance(request, ssl.SSLSocket)
        try:
            request.settimeout(HANDSHAKE_SECONDS)
            request.do_handshake()
            request.settimeout(None)
        except (OSError, ValueError) as exc:  # a silent, slow or non-TLS client: it alone is refused
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


def issued(
    authority: Authority,
    handler: type[BaseHTTPRequestHandler],
    name: str,
    common_name: str = "",
    host: str = "127.0.0.1",
) -> TLSServer:
    """A server on a free port of `host`, with the certificate `authority` issues it as `name`
    (not started)."""
    serving = authority.issue(name, common_name=common_name or name, hosts=(host,), server=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(serving.cert), str(serving.key))
    return TLSServer((host, 0), handler, context)
