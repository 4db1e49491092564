"""A multipart upload cut by an S3 outage leaves nothing behind (issue 48), on the real S3 server
(versitygw), stopped in the middle of an upload and started again on the same port:

- the worker's abort is tried again while the server is away, and lands once it is back;
- an abort that gives up (the server away too long) is caught by the next attempt of the run,
  which aborts the uploads under its own prefixes, and by the operator's sweep of stale uploads,
  which never touches uploads outside the store's prefix or younger than its bound."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contentgen.errors import TransientError
from contentgen.store.s3 import MULTIPART_THRESHOLD, S3Store
from localcluster.s3server import S3Server
from tests.s3server import client, make_bucket, s3_server, use_endpoint

KEY = "loras/alice/u1/v2/model.safetensors"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """A server of this test's own, so that it can be stopped and started again."""
    with s3_server(tmp_path / "s3") as running:
        use_endpoint(monkeypatch, running.endpoint)
        make_bucket(running.endpoint, "outage")
        yield running


def uploads(server: S3Server) -> list[dict[str, Any]]:
    return list(client(server.endpoint).list_multipart_uploads(Bucket="outage").get("Uploads", []))


def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.safetensors"
    path.write_bytes(os.urandom(MULTIPART_THRESHOLD + 1024 * 1024))  # two parts
    return path


def stop_after_first_part(store: S3Store, server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server goes away right after the upload's first part is stored."""
    upload_part = store.client.upload_part

    def part(**kwargs: Any) -> Any:
        answer = upload_part(**kwargs)
        if kwargs["PartNumber"] == 1:
            server.stop()
        return answer

    monkeypatch.setattr(store.client, "upload_part", part)


def test_an_abort_is_tried_again_until_the_server_is_back(
    server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = S3Store("outage", "contentgen")
    stop_after_first_part(store, server, monkeypatch)
    tries: list[float] = []

    def wait(seconds: float) -> None:  # the abort's wait between tries: the server comes back
        tries.append(seconds)
        if len(tries) == 2:
            server.start()

    monkeypatch.setattr("contentgen.store.s3.pause", wait)
    with pytest.raises(TransientError) as failed:
        store.put_once_file(KEY, big_file(tmp_path), "application/octet-stream")
    assert failed.value.reason == "StoreUnavailable"
    assert len(tries) >= 2  # refused while away, then aborted
    assert uploads(server) == []  # no part left stored (and billed)
    assert not store.exists(KEY)


def test_an_abort_that_gave_up_is_done_by_the_next_attempt(
    server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = S3Store("outage", "contentgen")
    stop_after_first_part(store, server, monkeypatch)
    monkeypatch.setattr("contentgen.store.s3.ABORT_SECONDS", 0.0)  # gives up at once
    with caplog.at_level(logging.WARNING, "contentgen.store.s3"), pytest.raises(TransientError):
        store.put_once_file(KEY, big_file(tmp_path), "application/octet-stream")
    (said,) = [r.getMessage() for r in caplog.records if r.name == "contentgen.store.s3"]
    assert "could not abort the upload" in said and "\n" not in said
    server.start()
    assert [u["Key"] for u in uploads(server)] == [f"contentgen/{KEY}"]
    # another store prefix in the same bucket, and a young upload under ours, are not swept
    foreign = client(server.endpoint).create_multipart_upload(Bucket="outage", Key="other-app/big.bin")
    assert store.abort_uploads("", older_than=3600) == 0
    assert len(uploads(server)) == 2
    # the next attempt of the run aborts what is under its own prefixes, whatever its age
    assert store.abort_uploads("loras/alice/u1/v2/") == 1
    assert [u["UploadId"] for u in uploads(server)] == [foreign["UploadId"]]
    # the operator's sweep of the whole store prefix leaves the other application's alone
    assert store.abort_uploads("") == 0
    assert len(uploads(server)) == 1
