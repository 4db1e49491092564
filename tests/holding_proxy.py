"""A TCP proxy that can hold a request where a test wants a process to be stopped: every connection
is forwarded byte for byte, except that the first request whose bytes contain a chosen pattern
is never sent on (the client waits for an answer that does not come) and the test is told. The
kube tests put it between the workers and the S3 server, so that a LoRA training can be killed
once it has trained past a checkpoint, and before it stores the next, however fast it trains.

    proxy = HoldingProxy(("127.0.0.1", s3_port)).start()
    held = proxy.hold(b"/checkpoints/step-000100.pt")   # a threading.Event, set when it happens
"""

from __future__ import annotations

import contextlib
import socket
import threading

_CHUNK = 64 * 1024


class HoldingProxy:
    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self._listener = socket.create_server((host, 0))
        self.host, self.port = host, int(self._listener.getsockname()[1])
        self._rules: list[tuple[bytes, threading.Event]] = []
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._stopped = threading.Event()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> HoldingProxy:
        self.accepting = threading.Thread(target=self._accept, name="holding-proxy", daemon=True)
        self.accepting.start()
        return self

    def stop(self) -> None:
        """No more connections, and each one cut (as a process that dies cuts its own)."""
        self._stopped.set()
        with self._lock:
            _cut(self._listener)  # wakes the accept, which close alone does not
            for sock in list(self._sockets):
                _cut(sock)

    def hold(self, pattern: bytes) -> threading.Event:
        """Hold the next request that contains `pattern` (once); the event is set when it is held."""
        held = threading.Event()
        with self._lock:
            self._rules.append((pattern, held))
        return held

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, server))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, requests: bool) -> None:
        tail, holding = b"", False
        try:
            while data := source.recv(_CHUNK):
                if requests and not holding:
                    holding = self._matches(tail + data)
                    tail = (tail + data)[-256:]
                if not holding:  # once held, what the client sends goes nowhere
                    target.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                for sock in (source, target):
                    _cut(sock)
                self._sockets.difference_update((source, target))

    def _matches(self, data: bytes) -> bool:
        with self._lock:
            for rule in self._rules:
                pattern, held = rule
                if pattern in data:
                    self._rules.remove(rule)
                    held.set()
                    return True
        return False


def _cut(sock: socket.socket) -> None:
    """Shut down, then closed: the other end told at once. A socket only closed, while another
    thread is blocked in recv or accept on it, stays open (that call holds it) and tells nobody:
    its peer would wait for the rest of an answer until its own timeout."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
