"""The real S3 server of the tests: versitygw (POSIX backend) built from its Go module by `make
s3-server`, over HTTP on localhost. It refuses what S3 refuses (expired, tampered or forged links,
wrong checksums, a second conditional create), which moto's server accepted."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3

from localcluster.s3server import S3Server

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def s3_server(root: Path) -> Iterator[S3Server]:
    """Start versitygw on a free port of 127.0.0.1 serving ROOT, for the account of S3_ENV."""
    server = S3Server(
        root,
        access_key=S3_ENV["AWS_ACCESS_KEY_ID"],
        secret_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        region=S3_ENV["AWS_DEFAULT_REGION"],
    ).start()
    try:
        yield server
    finally:
        server.stop()


def use_endpoint(monkeypatch, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    follow_environment()


def follow_environment() -> None:
    """boto3's default session keeps the credentials it resolved first, for the rest of the
    process: where the environment now names another account (a test cluster's own S3 server has
    one), the next client gets a new session, which reads them again."""
    session = boto3.DEFAULT_SESSION
    if session is None:
        return
    credentials = session.get_credentials()
    wanted = (os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY"))
    if credentials is None or (credentials.access_key, credentials.secret_key) != wanted:
        boto3.DEFAULT_SESSION = None


def client(endpoint: str, secret: str | None = None):  # type: ignore[no-untyped-def]
    """A plain boto3 client for the test account (or another secret), path-style."""
    from botocore.config import Config

    env = {**os.environ, **S3_ENV}
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or env["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )


def make_bucket(endpoint: str, bucket: str) -> None:
    client(endpoint).create_bucket(Bucket=bucket)
