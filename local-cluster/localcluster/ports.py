"""Ports for the servers this package starts, taken from below the kernel's ephemeral range.

A port the kernel hands out for `bind(0)` is one it also gives to outgoing connections. A server
that is stopped and started again on its port (kube-apiserver in the watch tests) leaves it free
for a moment, and any client's connection, even one of its own clients retrying against it (a
TCP self-connect), can take it: the new server then exits on "address already in use". Ports
below the range are never chosen for outgoing connections."""

from __future__ import annotations

import random
import socket
from pathlib import Path

RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10000
TRIES = 200


def ephemeral_start() -> int:
    try:
        return int(RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that nothing listens on, outside the ephemeral range where there is room
    below it (else whatever `bind(0)` gives)."""
    top = ephemeral_start()
    for _ in range(TRIES if top - LOWEST > 1000 else 0):
        port = random.randrange(LOWEST, top)  # noqa: S311 - a port, not a secret
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
