"""The servers' ports are never ones the kernel gives to outgoing connections."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from localcluster.ports import BOOKED, _book, ephemeral_start, free_port


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


def test_a_port_is_not_handed_out_again_while_its_taker_lives() -> None:
    """Booked for its taker: a server restarted on its port finds it still its own."""
    mine = free_port()
    assert not _book(mine)  # this process's own, taken once
    child = subprocess.run(
        [sys.executable, "-c", f"from localcluster.ports import _book; print(_book({mine}))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == "False"
    gone = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # no process has this pid
    (BOOKED / str(mine)).write_text(f"{gone} 5")  # a holder that has ended
    assert _book(mine)
