"""A TLS proxy in front of the API server that injects failures, for tests and benchmarks: a client
pointed at it (its kubeconfig's server) meets the real API server, except that chosen requests
are answered with a 500, open watches can be cut, and all its traffic can be slowed down or
dropped (a network that loses packets: requests are never sent on, the client hears nothing and
times out). Credentials pass through untouched, so RBAC and audit see the client itself; a `tag`
is added to its User-Agent, so that the audit log tells two clients with one identity apart.

    proxy = FaultProxy(cluster.control.url, cluster.control.ca).start()
    proxy.inject("patch", "imagegenerations/status", times=2)
    proxy.drop_watches()
    proxy.slow(5.0)   # every request waits 5 s before it is sent on
    proxy.drop()      # from now on nothing is sent on, nor answered
    proxy.heal()
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from .pki import Authority
from .tlsserver import issued

_PATH = re.compile(
    r"^/(?:api/v1|apis/[^/]+/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?/?$"
)
HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


def verb_and_resource(method: str, target: str) -> tuple[str, str]:
    """("patch", "imagegenerations/status") for a request, as the API server's RequestInfo reads it."""
    url = urlsplit(target)
    match = _PATH.match(url.path)
    if not match:
        return method.lower(), url.path
    resource, name, sub = match.group("resource"), match.group("name"), match.group("sub")
    query = parse_qs(url.query)
    verb = {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }.get(
        method, "get" if name else ("watch" if query.get("watch", ["false"])[0] in ("true", "1") else "list")
    )
    return verb, f"{resource}/{sub}" if sub else resource


class FaultProxy:
    def __init__(self, upstream: str, ca: Authority, host: str = "127.0.0.1", tag: str = "") -> None:
        self.upstream = upstream.rstrip("/")
        self.tag = tag
        self._delay = 0.0
        self._dropping = False
        self._healed = threading.Condition()
        self.dropped = 0  # requests never sent on
        self._faults: Counter[tuple[str, str]] = Counter()
        self.injected: Counter[tuple[str, str]] = Counter()
        self._watches: set[socket.socket] = set()
        # Each connection's thread and socket while it is served, and each relayed answer's
        # upstream socket while it is read: `stop` ends them before anything is closed.
        self._serving: dict[threading.Thread, socket.socket] = {}
        self._relaying: dict[threading.Thread, socket.socket] = {}
        self._lock = threading.Lock()
        self._client = httpx.Client(
            verify=ssl.create_default_context(cafile=str(ca.cert_file)),
            timeout=httpx.Timeout(30.0, read=None),
        )
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def handle(self) -> None:
                with proxy._lock:
                    proxy._serving[threading.current_thread()] = self.connection
                try:
                    super().handle()
                finally:
                    with proxy._lock:
                        proxy._serving.pop(threading.current_thread(), None)

            def do_GET(self) -> None:
                proxy._handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815 - the base's naming

        self.httpd = issued(ca, Handler, f"fault-proxy-{host}", "fault-proxy", host)
        self.url = f"https://{host}:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fault-proxy", daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self, wait: float = 10.0) -> None:
        """No more connections; each one served is cut and its thread waited for (`wait` seconds
        in all), and only then is anything closed. A socket is never closed under a thread that
        still uses it: its number is given to the next socket this process opens, and OpenSSL,
        which keeps that number, would read from it or write into it (CI and make test, 11-30: a
        later test's connections to the API server met WRONG_VERSION_NUMBER and BAD_RECORD_MAC
        just after a module's proxy stopped)."""
        self.heal()
        self.httpd.shutdown()
        with self._lock:
            serving, relaying = dict(self._serving), list(self._relaying.values())
        for sock in [*serving.values(), *relaying]:  # each thread sees its streams end
            _cut(sock)
        deadline = time.monotonic() + wait
        for thread in serving:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.httpd.server_close()
        self._client.close()

    def inject(self, verb: str, resource: str, times: int = 1) -> None:
        """The next `times` requests with this verb on this resource ("jobs", "pods/status") get a 500."""
        with self._lock:
            self._faults[(verb, resource)] += times

    def withdraw(self, verb: str, resource: str) -> int:
        """Withdraw the failures of this verb and resource not served yet (a burst that is over);
        how many."""
        with self._lock:
            left = max(0, self._faults.pop((verb, resource), 0))
        return left

    def slow(self, seconds: float) -> None:
        """Every request from now on waits `seconds` before it is sent on (0: no more)."""
        with self._lock:
            self._delay = seconds

    def drop(self) -> None:
        """From now on no request is sent on or answered (the client times out), and open watches
        are cut; a request already waiting out a `slow` delay is not sent on either."""
        with self._lock:
            self._dropping = True
        self.drop_watches()

    def heal(self) -> None:
        """Traffic passes again, undelayed. Requests dropped meanwhile stay lost: their connections
        are closed unanswered."""
        with self._lock:
            self._dropping, self._delay = False, 0.0
        with self._healed:
            self._healed.notify_all()

    def _lost(self, h: BaseHTTPRequestHandler) -> None:
        """A dropped request: no answer until traffic passes again, then the connection closes."""
        with self._lock:
            self.dropped += 1
        with self._healed:
            self._healed.wait_for(lambda: not self._dropping)
        h.close_connection = True

    def drop_watches(self) -> int:
        """Cut every open watch (its client sees the stream end and must watch or list again)."""
        with self._lock:
            watches = list(self._watches)
        for sock in watches:
            _cut(sock)
        return len(watches)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        verb, resource = verb_and_resource(h.command, h.path)
        with self._lock:
            fail = self._faults[(verb, resource)] > 0
            if fail:
                self._faults[(verb, resource)] -= 1
                self.injected[(verb, resource)] += 1
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        with self._lock:
            delay = self._delay
        if delay:
            time.sleep(delay)
        with self._lock:
            dropping = self._dropping
        if dropping:
            self._lost(h)
            return
        if fail:
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": "injected by the fault proxy",
                "reason": "InternalError",
                "code": 500,
            }
            data = json.dumps(status).encode()
            h.send_response(500)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_HEADERS}
        if self.tag:
            agent = next((k for k in headers if k.lower() == "user-agent"), "User-Agent")
            headers[agent] = f"{headers.get(agent, '')} ({self.tag})".strip()
        request = self._client.build_request(h.command, self.upstream + h.path, headers=headers, content=body)
        try:
            response = self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            data = str(exc).encode()
            h.send_response(502)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        watching = verb == "watch"
        stream = response.extensions.get("network_stream")
        with self._lock:
            if stream is not None:
                self._relaying[threading.current_thread()] = stream.get_extra_info("socket")
            if watching:
                self._watches.add(h.connection)
        try:
            h.send_response(response.status_code)
            # The body is relayed as it came (iter_raw: still gzipped when the API server
            # compressed it), so its Content-Encoding goes along with it.
            for key, value in response.headers.items():
                if key.lower() not in HOP_HEADERS:
                    h.send_header(key, value)
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            for chunk in response.iter_raw():
                if chunk:
                    h.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    h.wfile.flush()
            h.wfile.write(b"0\r\n\r\n")
        except (OSError, httpx.HTTPError):
            h.close_connection = True
        finally:
            response.close()
            with self._lock:
                self._relaying.pop(threading.current_thread(), None)
                self._watches.discard(h.connection)


def _cut(sock: socket.socket) -> None:
    """The connection shut down both ways, its socket left open for the thread that uses it to
    close. TCP's own shutdown: SSLSocket.shutdown would first drop its TLS state, and a write of
    that thread's in the moment before the shutdown would go out as plain text."""
    with contextlib.suppress(OSError):  # closed already, or never connected
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
