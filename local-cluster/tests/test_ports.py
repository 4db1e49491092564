"""The servers' ports are never ones the kernel gives to outgoing connections."""

from __future__ import annotations

import socket

from localcluster.ports import ephemeral_start, free_port


def test_a_free_port_is_below_the_ephemeral_range_and_free() -> None:
    ports = {free_port() for _ in range(20)}
    assert all(10000 <= port < ephemeral_start() for port in ports), ports
    assert len(ports) > 1  # chosen at random, not one fixed port two test workers would share
    with socket.socket() as server:
        server.bind(("127.0.0.1", ports.pop()))
        server.listen()


def test_outgoing_connections_take_ports_of_the_ephemeral_range() -> None:
    """What the choice relies on: a connection's own port comes from the range."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", free_port()))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            assert client.getsockname()[1] >= ephemeral_start()
