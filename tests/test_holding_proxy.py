"""tests/holding_proxy.py's cuts reach both ends: a server that closes mid-answer, and `stop()`,
each leave the client reading an end (EOF), not waiting for the rest of an answer until its own
timeout (the pool test's hang: a socket closed while the other pump was blocked in recv on it
stayed open and told the client nothing)."""

from __future__ import annotations

import socket
import threading

from tests.holding_proxy import HoldingProxy


def _server(answer: bytes, close: bool) -> tuple[socket.socket, threading.Event]:
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(1024)
        conn.sendall(answer)
        if close:
            conn.close()  # mid-answer: the rest never comes
        done.wait(10)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener, done


def _read_to_end(endpoint: tuple[str, int], stop: HoldingProxy | None = None) -> bytes:
    with socket.create_connection(endpoint, timeout=5) as client:  # a hang fails in 5 s, not 600
        client.sendall(b"GET /a HTTP/1.1\r\n\r\n")
        got = client.recv(1024)
        if stop is not None:
            stop.stop()
        while data := client.recv(1024):
            got += data
        return got


def test_a_server_that_closes_mid_answer_closes_the_clients_connection_too() -> None:
    listener, done = _server(b"part of an answer", close=True)
    proxy = HoldingProxy(listener.getsockname()).start()
    try:
        assert _read_to_end((proxy.host, proxy.port)) == b"part of an answer"
    finally:
        done.set()
        proxy.stop()


def test_stop_cuts_every_connection_and_its_accept() -> None:
    listener, done = _server(b"the first lines", close=False)
    proxy = HoldingProxy(listener.getsockname()).start()
    try:
        assert _read_to_end((proxy.host, proxy.port), stop=proxy) == b"the first lines"
    finally:
        done.set()
    # this proxy's accept thread (another test's proxy in this worker process may still be serving)
    proxy.accepting.join(5)
    assert not proxy.accepting.is_alive(), "stop() left the accept waiting"


def test_stop_closes_each_socket_only_after_its_threads_have_ended() -> None:
    """No socket is closed while a pump may still call it: when stop() returns, every pump has
    ended and every socket is closed (fileno -1), the listener's too."""
    listener, done = _server(b"the first lines", close=False)
    proxy = HoldingProxy(listener.getsockname()).start()
    try:
        with socket.create_connection((proxy.host, proxy.port), timeout=5) as client:
            client.sendall(b"GET /a HTTP/1.1\r\n\r\n")
            assert client.recv(1024) == b"the first lines"
            pairs = list(proxy._pairs)
            pumps = list(proxy._pumps)
            proxy.stop()
            assert [p for p in pumps if p.is_alive()] == []
            assert [s.fileno() for pair in pairs for s in pair.sockets] == [-1, -1]
            assert proxy._listener.fileno() == -1
            assert client.recv(1024) == b""
    finally:
        done.set()
