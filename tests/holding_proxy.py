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


class _Pair:
    """A client's connection and its upstream one, pumped by two threads: closed by the last of
    them to end, so that no socket is closed under a thread that may still call it (its number
    would go to the next socket the process opens, and the call with it)."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.sockets, self.pumping = (client, server), 2


class HoldingProxy:
    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self._listener = socket.create_server((host, 0))
        self.host, self.port = host, int(self._listener.getsockname()[1])
        self._rules: list[tuple[bytes, threading.Event]] = []
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._pumps: list[threading.Thread] = []
        self._stopped = threading.Event()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> HoldingProxy:
        self.accepting = threading.Thread(target=self._accept, name="holding-proxy", daemon=True)
        self.accepting.start()
        return self

    def stop(self, wait: float = 10.0) -> None:
        """No more connections, and each one cut (as a process that dies cuts its own): shut down,
        which wakes the threads blocked on them; each is closed when its threads have ended."""
        self._stopped.set()
        _shut(self._listener)  # wakes the accept, which close alone does not
        self.accepting.join(wait)
        with self._lock:
            for pair in self._pairs:
                for sock in pair.sockets:
                    _shut(sock)
            pumps = list(self._pumps)
        for pump in pumps:
            pump.join(wait)
        if not self.accepting.is_alive():
            self._listener.close()

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
            pair = _Pair(client, server)
            pumps = [
                threading.Thread(target=self._pump, args=(client, server, True, pair), daemon=True),
                threading.Thread(target=self._pump, args=(server, client, False, pair), daemon=True),
            ]
            with self._lock:
                if self._stopped.is_set():  # stop() came while this one connected
                    client.close()
                    server.close()
                    return
                self._pairs.add(pair)
                self._pumps = [t for t in self._pumps if t.is_alive()] + pumps
            for pump in pumps:
                pump.start()

    def _pump(self, source: socket.socket, target: socket.socket, requests: bool, pair: _Pair) -> None:
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
                for sock in pair.sockets:  # the other end told at once, the other pump woken
                    _shut(sock)
                pair.pumping -= 1
                last = pair.pumping == 0
                if last:
                    self._pairs.discard(pair)
            if last:
                for sock in pair.sockets:
                    sock.close()

    def _matches(self, data: bytes) -> bool:
        with self._lock:
            for rule in self._rules:
                pattern, held = rule
                if pattern in data:
                    self._rules.remove(rule)
                    held.set()
                    return True
        return False


def _shut(sock: socket.socket) -> None:
    """Shut down, not closed: the other end told at once, and a thread blocked in recv or accept on
    it woken, while its number stays this socket's until whoever closes it knows no thread uses it.
    (A socket only closed under a blocked call stays open and tells nobody.)"""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
