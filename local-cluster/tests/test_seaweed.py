"""SeaweedFS (`make sts-server`): built again only when its pin changes, a clear word when it is not
built; the receiver of its access log keeps each record whole, however the connection cuts it.
The server itself, its STS and its policies are proved in the project's tests/store/test_sts_server.py."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from localcluster import seaweed
from localcluster.fluentlog import FluentReceiver


def test_the_stamp_follows_the_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin, binary = tmp_path / "seaweedfs.txt", tmp_path / "bin" / "weed"
    binary.parent.mkdir()
    binary.write_text("")
    pin.write_text("# a comment\ngithub.com/seaweedfs/seaweedfs@v0.0.0-20261109003541-7506e5f91cd6\n")
    monkeypatch.setattr(seaweed, "PIN", pin)
    monkeypatch.setattr(seaweed, "BINARY", binary)
    monkeypatch.setattr(seaweed, "STAMP", binary.parent / ".weed.pins")
    assert seaweed.module() == "github.com/seaweedfs/seaweedfs@v0.0.0-20261109003541-7506e5f91cd6"
    assert not seaweed.built()
    with pytest.raises(seaweed.SeaweedMissing, match=r"run `make sts-server`"):
        seaweed.binary()
    seaweed.STAMP.write_text(seaweed.pins())
    assert seaweed.built()
    pin.write_text("github.com/seaweedfs/seaweedfs@v0.0.0-20261201000000-0123456789ab\n")
    assert not seaweed.built()


def test_every_port_has_its_flag() -> None:
    flags = [seaweed._flag(name) for name in (*seaweed.PORTS, *seaweed.ADMIN_PORTS)]
    assert flags[:3] == ["master.port", "master.port.grpc", "volume.port"]
    assert flags[-4:] == ["s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc"]


def test_the_access_log_receiver_keeps_records_cut_anywhere(tmp_path: Path) -> None:
    """fluent-logger-golang's JSON form: `[tag, time, record, options]` back to back, cut by the
    connection wherever it is (inside a value, inside a character of several bytes)."""
    receiver = FluentReceiver(tmp_path / "access.jsonl").start()
    records = [
        {"operation": "REST.GET.OBJECT", "key": f"loras/a/{n}/v1/é.png", "status": 200} for n in range(3)
    ]
    sent = "".join(
        json.dumps(["s3.access", 1, r, {}], ensure_ascii=False) for r in records
    ).encode()  # as Go writes
    cut = sent.index("é".encode()) + 1  # between the two bytes of é
    try:
        with socket.create_connection((receiver.host, receiver.port)) as connection:
            connection.sendall(sent[:cut])
            connection.sendall(sent[cut:])
        with socket.create_connection((receiver.host, receiver.port)) as connection:
            connection.sendall(json.dumps(["s3.access", 2, {"key": "last"}, {}]).encode())
        deadline = time.monotonic() + 30  # a hang guard: the records are read by its threads
        while len(receiver.records()) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        receiver.stop()
    # a connection's records in its order; two connections' interleaved as their threads read them
    got = receiver.records()
    assert [r for r in got if r != {"key": "last"}] == records and got.count({"key": "last"}) == 1, got
