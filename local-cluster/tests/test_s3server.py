"""The S3 server (`make s3-server`): built again only when its pin changes, a clear word when it is
not built, and a started server that answers S3 for its account only."""

from __future__ import annotations

from pathlib import Path

import boto3
import botocore.exceptions
import pytest

from localcluster import s3server


def test_the_stamp_follows_the_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin, binary = tmp_path / "versitygw.txt", tmp_path / "bin" / "versitygw"
    binary.parent.mkdir()
    binary.write_text("")
    pin.write_text("# a comment\ngithub.com/versity/versitygw/cmd/versitygw@v1.8.0\n")
    monkeypatch.setattr(s3server, "PIN", pin)
    monkeypatch.setattr(s3server, "BINARY", binary)
    monkeypatch.setattr(s3server, "STAMP", binary.parent / ".versitygw.pins")
    assert s3server.module() == "github.com/versity/versitygw/cmd/versitygw@v1.8.0"
    assert not s3server.built()
    with pytest.raises(s3server.S3ServerMissing, match=r"run `make s3-server`"):
        s3server.binary()
    s3server.STAMP.write_text(s3server.pins())
    assert s3server.built()
    pin.write_text("github.com/versity/versitygw/cmd/versitygw@v1.9.0\n")  # a new pin: build again
    assert not s3server.built()


def test_a_started_server_answers_its_account_only(tmp_path: Path) -> None:
    server = s3server.S3Server(tmp_path / "root", secret_key="right-secret").start()
    try:

        def client(secret: str):  # type: ignore[no-untyped-def]
            return boto3.client(
                "s3",
                endpoint_url=server.endpoint,
                region_name=server.region,
                aws_access_key_id=server.access_key,
                aws_secret_access_key=secret,
            )

        client("right-secret").create_bucket(Bucket="bucket")
        client("right-secret").put_object(Bucket="bucket", Key="k/x.txt", Body=b"hello")
        assert (tmp_path / "root" / "bucket" / "k" / "x.txt").read_bytes() == b"hello"  # the POSIX backend
        with pytest.raises(botocore.exceptions.ClientError, match="SignatureDoesNotMatch"):
            client("wrong-secret").get_object(Bucket="bucket", Key="k/x.txt")
    finally:
        server.stop()
    assert server.process is not None and server.process.poll() is not None


def test_the_access_log_has_a_line_per_request_with_its_status(tmp_path: Path) -> None:
    """What a test counts writes with: the operation, the key and the answer, a request a line (a
    refused conditional write is a 412, not a write)."""
    server = s3server.S3Server(tmp_path / "root", access_log=tmp_path / "access.log").start()
    try:
        client = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            region_name=server.region,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
        )
        client.create_bucket(Bucket="bucket")
        client.put_object(Bucket="bucket", Key="k/x.txt", Body=b"hello", IfNoneMatch="*")
        with pytest.raises(botocore.exceptions.ClientError, match="PreconditionFailed"):
            client.put_object(Bucket="bucket", Key="k/x.txt", Body=b"hello", IfNoneMatch="*")
    finally:
        server.stop()
    assert server.requests() == [
        ("CreateBucket", "-", 200),
        ("PutObject", "k/x.txt", 200),
        ("PutObject", "k/x.txt", 412),
    ]
