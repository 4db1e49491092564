"""put_once keeps "no stored object is written twice under one key" when writers race: on the real
S3 server (If-None-Match: *, single and multipart) and on the local store (a hard link that cannot
replace). Writers meet at a barrier and write at once."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from contentgen.api import Artifact
from contentgen.store import LocalStore, ObjectExists, ObjectStore
from contentgen.store.base import KeyTaken
from contentgen.store.s3 import MULTIPART_THRESHOLD, S3Store, write_outcome

WRITERS = 6


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
    else:
        yield S3Store(request.getfixturevalue("s3"), "race")


def race(writers: int, write: Callable[[int], Artifact]) -> list[Artifact | BaseException]:
    """`write(i)` in `writers` threads released together; each one's result or exception."""
    barrier = threading.Barrier(writers)
    results: list[Artifact | BaseException] = [RuntimeError("did not run")] * writers

    def run(i: int) -> None:
        barrier.wait(timeout=120)
        try:
            results[i] = write(i)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not any(thread.is_alive() for thread in threads)
    return results


def written(results: list[Any]) -> list[Artifact]:
    return [r for r in results if isinstance(r, Artifact)]


def test_a_conditional_create_lets_exactly_one_writer_in(store: ObjectStore) -> None:
    """The primitive, without put_once's look first: every writer sends its create at once."""
    payloads = [f"writer {i}".encode() * 100 for i in range(WRITERS)]
    results = race(WRITERS, lambda i: store.put_bytes("out/v1/k.bin", payloads[i], "x/y", if_absent=True))
    (winner,) = written(results)
    assert all(isinstance(r, KeyTaken) for r in results if r is not winner), results
    assert hashlib.sha256(store.get_bytes("out/v1/k.bin")).hexdigest() == winner.sha256


def test_racing_writers_of_other_bytes_one_writes_the_others_are_refused(store: ObjectStore) -> None:
    payloads = [os.urandom(2048) for _ in range(WRITERS)]
    results = race(WRITERS, lambda i: store.put_once_bytes("out/v1/image.png", payloads[i], "image/png"))
    (winner,) = written(results)
    refused = [r for r in results if isinstance(r, ObjectExists)]
    assert len(refused) == WRITERS - 1, results
    assert store.get_bytes("out/v1/image.png") == payloads[results.index(winner)]
    assert [i.key for i in store.list("out/")] == ["out/v1/image.png"]


def test_racing_writers_of_the_same_bytes_all_succeed_with_one_object(store: ObjectStore) -> None:
    data = os.urandom(4096)
    results = race(WRITERS, lambda _: store.put_once_bytes("out/v1/same.bin", data, "x/y"))
    assert len(written(results)) == WRITERS, results
    assert {a.sha256 for a in written(results)} == {hashlib.sha256(data).hexdigest()}
    assert store.get_bytes("out/v1/same.bin") == data
    assert [i.key for i in store.list("out/")] == ["out/v1/same.bin"]


def test_racing_multipart_uploads_complete_once(store: ObjectStore, tmp_path: Path) -> None:
    """Files above the multipart threshold: the completion is the conditional step on S3."""
    writers = 3  # three 17 MiB uploads: enough to race, light enough for a loaded machine
    files = []
    for i in range(writers):
        path = tmp_path / f"model-{i}.safetensors"
        path.write_bytes(os.urandom(MULTIPART_THRESHOLD + 1024 * 1024))
        files.append(path)
    results = race(writers, lambda i: store.put_once_file("loras/v1/model.safetensors", files[i], "x/y"))
    (winner,) = written(results)
    assert sum(isinstance(r, ObjectExists) for r in results) == writers - 1, results
    assert store.get_bytes("loras/v1/model.safetensors") == files[results.index(winner)].read_bytes()
    if isinstance(store, S3Store):  # the losers' parts were aborted, not left behind
        uploads = store.client.list_multipart_uploads(Bucket=store.bucket)
        assert uploads.get("Uploads", []) == []


def test_what_s3_answers_means_for_a_write() -> None:
    assert write_outcome("PreconditionFailed", if_absent=True) == "taken"
    assert write_outcome("NotImplemented", if_absent=True) == "unsupported"
    assert write_outcome("ConditionalRequestConflict", if_absent=True) == "again"
    assert write_outcome("PreconditionFailed", if_absent=False) == "error"
    assert write_outcome("AccessDenied", if_absent=True) == "error"


def test_a_server_without_conditional_writes_is_refused_not_trusted(s3: str) -> None:
    """An S3 server that answers 501 to If-None-Match (some S3-compatibles do) gets no output:
    without the condition a second writer could replace it. The 501 is injected into the real
    request path (botocore's event hooks); versitygw itself supports the condition."""
    import botocore.exceptions

    from contentgen.store.s3 import ConditionalWritesUnsupported

    store = S3Store(s3)

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if params.get("IfNoneMatch"):
            raise botocore.exceptions.ClientError(
                {
                    "Error": {
                        "Code": "NotImplemented",
                        "Message": "A header you provided implies functionality that is not implemented",
                    }
                },
                "PutObject",
            )

    store.client.meta.events.register("before-parameter-build.s3.PutObject", refuse)
    with pytest.raises(ConditionalWritesUnsupported, match="does not support conditional writes") as raised:
        store.put_once_bytes("out/v1/a.bin", b"x", "x/y")
    assert raised.value.reason == "StoreUnsupported"
    assert store.head("out/v1/a.bin") is None
    store.put_bytes("temp/state.json", b"{}", "application/json")  # mutable state still writes
