"""The project's S3 adapter (store/s3.py `S3Store`) with a run's role session on SeaweedFS (IAM and
STS, tests/seaweed.py): outputs written once (If-None-Match: * on PUT and on completing a
multipart upload, enforced by the server, racing writers included), checksums checked by the
server, reads, listings, deletes and links within the run's prefixes, and what such a session
cannot do: look beyond them, or list unfinished uploads to clean them up."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from contentgen.errors import PermanentError
from contentgen.store.base import KeyTaken, ObjectExists, UploadsRefused
from contentgen.store.s3 import MULTIPART_THRESHOLD, S3Store
from localcluster.seaweed import SeaweedServer
from tests.seaweed import admin, error_code, run_policy, session


@pytest.fixture
def run(sts_server: SeaweedServer) -> tuple[S3Store, str, str]:
    """An S3Store on the bucket signing with a run's session (its prefix, owner A's LoRA its input),
    the prefix, and the input's key."""
    uid = uuid.uuid4().hex[:8]
    lora, own = f"loras/owner-a/{uid}/v1/model.safetensors", f"generated-images/owner-b/{uid}/v1/"
    admin(sts_server).put_object(Bucket=sts_server.bucket, Key=lora, Body=b"weights")
    policy = run_policy(sts_server.bucket, [lora], [own, f"temp/{uid}/"])
    return S3Store(sts_server.bucket, "", client=session(sts_server, policy, f"run-{uid}").client), own, lora


def test_outputs_are_written_once(run: tuple[S3Store, str, str]) -> None:
    store, own, _ = run
    first = store.put_once_bytes(f"{own}image_1.png", b"pixels", "image/png")
    assert store.put_once_bytes(f"{own}image_1.png", b"pixels", "image/png") == first  # left alone
    with pytest.raises(ObjectExists):
        store.put_once_bytes(f"{own}image_1.png", b"other pixels", "image/png")
    with pytest.raises(KeyTaken):  # the server's If-None-Match: *, not a look first
        store.put_bytes(f"{own}image_1.png", b"other pixels", "image/png", if_absent=True)
    assert store.get_bytes(f"{own}image_1.png") == b"pixels"


def test_racing_conditional_writers_one_wins(run: tuple[S3Store, str, str]) -> None:
    store, own, _ = run

    def write(n: int) -> str:
        try:
            store.put_bytes(f"{own}raced.png", f"writer {n}".encode(), "image/png", if_absent=True)
        except KeyTaken:
            return "taken"
        return f"writer {n}"

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(write, range(6)))
    winners = [outcome for outcome in outcomes if outcome != "taken"]
    assert len(winners) == 1, outcomes
    assert store.get_bytes(f"{own}raced.png") == winners[0].encode()


def test_a_large_output_goes_up_in_checked_parts_once(run: tuple[S3Store, str, str], tmp_path: Path) -> None:
    store, own, _ = run
    big = tmp_path / "model.safetensors"
    big.write_bytes(os.urandom(MULTIPART_THRESHOLD + 1024))
    written = store.put_once_file(f"{own}model.safetensors", big, "application/octet-stream")
    assert written.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    assert store.put_once_file(f"{own}model.safetensors", big, "application/octet-stream") == written
    with pytest.raises(KeyTaken):  # completing the upload is conditional
        store.put_file(f"{own}model.safetensors", big, "application/octet-stream", if_absent=True)
    back = store.get_file(f"{own}model.safetensors", tmp_path / "back")
    assert back.read_bytes() == big.read_bytes()


def test_the_server_checks_what_it_is_sent(run: tuple[S3Store, str, str]) -> None:
    store, own, _ = run
    other = b"other bytes"
    wrong = {
        "ChecksumSHA256": base64.b64encode(hashlib.sha256(other).digest()).decode(),
        "ContentMD5": base64.b64encode(hashlib.md5(other).digest()).decode(),
    }
    answers = {
        name: error_code(
            lambda name=name: store.client.put_object(
                Bucket=store.bucket, Key=f"{own}x", Body=b"bytes", **{name: wrong[name]}
            )
        )
        for name in wrong
    }
    assert answers == {"ChecksumSHA256": "BadDigest", "ContentMD5": "BadDigest"}
    assert store.head(f"{own}x") is None


def test_reads_lists_deletes_and_links_within_the_run(run: tuple[S3Store, str, str]) -> None:
    store, own, lora = run
    store.put_once_bytes(f"{own}image_1.png", b"pixels", "image/png")
    store.put_once_bytes(f"{own}image_2.png", b"more pixels", "image/png")
    assert store.get_bytes(lora) == b"weights"  # an input, by its exact key
    assert [info.key for info in store.list(own)] == [f"{own}image_1.png", f"{own}image_2.png"]
    link = httpx.get(store.presign(f"{own}image_1.png", 600, "picture.png"))
    assert link.content == b"pixels" and "picture.png" in link.headers["content-disposition"]
    assert httpx.get(store.presign(lora, 600)).content == b"weights"
    assert store.delete(f"{own}image_1.png") is True
    assert store.delete(f"{own}image_1.png") is False
    assert store.delete_prefix(own) == 1
    assert list(store.list(own)) == []
    S3Store(store.bucket, own, client=store.client).check()  # a store on the run's prefix


def test_what_a_run_session_cannot_do_through_the_adapter(run: tuple[S3Store, str, str]) -> None:
    store, own, lora = run
    another = lora.replace("model.safetensors", "dataset.zip")
    refused = {
        "read another key of the owner": lambda: store.get_bytes(another),
        "write outside its prefixes": lambda: store.put_once_bytes(another, b"x", "application/zip"),
        "list outside its prefixes": lambda: list(store.list(lora.rsplit("/", 2)[0] + "/")),
        "check the bucket's root": store.check,
    }
    answers = {what: _refusal(call) for what, call in refused.items()}
    assert all(answer.startswith("object store refused the request") for answer in answers.values()), answers
    # Cleaning up unfinished uploads lists them: s3:ListBucketMultipartUploads, not the run's to have.
    with pytest.raises(UploadsRefused):
        store.abort_uploads(own)


def _refusal(call: Callable[[], object]) -> str:
    try:
        call()
    except PermanentError as exc:
        return str(exc)
    return "allowed"
