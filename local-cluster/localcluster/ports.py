"""Ports for the servers this package starts, taken from below the kernel's ephemeral range.

A port the kernel hands out for `bind(0)` is one it also gives to outgoing connections. A server
that is stopped and started again on its port (kube-apiserver in the watch tests) leaves it free
for a moment, and any client's connection, even one of its own clients retrying against it (a
TCP self-connect), can take it: the new server then exits on "address already in use". Ports
below the range are never chosen for outgoing connections.

Nor is a port handed out twice while its taker lives: each is booked in the machine's registry
(RUN/ports/P, naming the taker's process), so a server restarted on its port does not find it
taken by another test worker's new server (kube-apiserver answering TLS on a port a plain HTTP
server had taken meanwhile: make test, 11-29)."""

from __future__ import annotations

import contextlib
import os
import random
import socket
from pathlib import Path

from .processes import locked, started

RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10000
TRIES = 200
BOOKED = Path("/run/localcluster/ports")  # beside the nodes' registry (node/layout.py RUN)


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
        if _book(port):
            return port
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _book(port: int) -> bool:
    """Book `port` for this process unless a live process, this one included, holds it; True when
    booked (or where the registry cannot be written: the bind's probe alone then)."""
    try:
        with locked(BOOKED / ".lock"):
            path = BOOKED / str(port)
            with contextlib.suppress(FileNotFoundError):
                pid, _, start = path.read_text().partition(" ")
                if pid.isdigit() and start and started(int(pid)) == start:
                    return False
            path.write_text(f"{os.getpid()} {started(os.getpid())}")
            return True
    except OSError:
        return True
