"""Both stores behave the same through the one interface; S3 runs on the real S3 server
(versitygw, tests/s3server.py)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from contentgen.errors import InvalidInput
from contentgen.store import LocalStore, ObjectExists, ObjectNotFound, ObjectStore, keys, open_store
from contentgen.store.base import StoredObjectCorrupt
from contentgen.store.s3 import MULTIPART_THRESHOLD, S3Store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
    else:
        bucket = request.getfixturevalue("s3")
        yield S3Store(bucket, "pre/fix")


def test_put_get_head_roundtrip(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(4096)
    artifact = store.put_bytes("a/b/one.bin", data, "application/x-test")
    assert artifact.size_bytes == len(data)
    assert artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert artifact.uri == store.uri("a/b/one.bin")
    assert store.key_of(artifact.uri) == "a/b/one.bin"
    assert store.get_bytes("a/b/one.bin") == data
    target = store.get_file("a/b/one.bin", tmp_path / "out" / "copy.bin")
    assert target.read_bytes() == data
    info = store.head("a/b/one.bin")
    assert info is not None and info.size_bytes == len(data)

    source = tmp_path / "file.png"
    source.write_bytes(b"\x89PNG" + data)
    artifact = store.put_file("images/x.png", source, "image/png")
    assert artifact.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    info = store.head("images/x.png")
    assert info is not None and info.content_type == "image/png"


def test_missing_objects(store: ObjectStore, tmp_path: Path) -> None:
    assert store.head("nope") is None
    assert not store.exists("nope")
    with pytest.raises(ObjectNotFound):
        store.get_bytes("nope")
    with pytest.raises(ObjectNotFound):
        store.get_file("nope", tmp_path / "x")
    assert store.delete("nope") is False


def test_list_and_delete(store: ObjectStore) -> None:
    for key in (
        "loras/u/1/v1/model.safetensors",
        "loras/u/1/v2/model.safetensors",
        "loras/u/10/v1/x",
        "other/y",
    ):
        store.put_bytes(key, b"x", "application/octet-stream")
    assert sorted(i.key for i in store.list("loras/u/1/")) == [
        "loras/u/1/v1/model.safetensors",
        "loras/u/1/v2/model.safetensors",
    ]
    assert store.delete("loras/u/1/v2/model.safetensors") is True
    with pytest.raises(ValueError, match="must end with '/'"):
        store.delete_prefix("loras/u/1")
    assert store.delete_prefix("loras/u/1/") == 1
    assert [i.key for i in store.list("loras/")] == ["loras/u/10/v1/x"]
    assert store.exists("other/y")


def test_size_cap_on_download(store: ObjectStore, tmp_path: Path) -> None:
    store.put_bytes("big", b"x" * 2000, "application/octet-stream")
    with pytest.raises(InvalidInput, match="limit"):
        store.get_file("big", tmp_path / "big", max_bytes=1000)


def test_keys_of_other_stores_are_refused(store: ObjectStore) -> None:
    assert not store.owns("s3://someone-else/x")
    assert not store.owns("file:///etc/passwd")
    with pytest.raises(ValueError, match="invalid object key"):
        store.put_bytes("../escape", b"x", "text/plain")


def test_s3_presigned_url_reads_the_object_with_its_name(s3: str) -> None:
    store = S3Store(s3)
    store.put_bytes("generated-images/u/1/image_1.png", b"pixels", "image/png")
    url = store.presign("generated-images/u/1/image_1.png", 600)
    query = parse_qs(urlparse(url).query)
    assert query["X-Amz-Expires"] == ["600"]
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"pixels"
    # Without the signature the bucket is private.
    assert httpx.get(url.split("?")[0]).status_code == 403
    with pytest.raises(ObjectNotFound):
        store.presign("missing.png", 600)
    # A name to save it under travels in the signature: S3 answers with that Content-Disposition.
    named = store.presign("generated-images/u/1/image_1.png", 600, download_name="fox-v2-image_1.png")
    saved = httpx.get(named)
    assert saved.content == b"pixels"
    assert saved.headers["content-disposition"] == (
        "attachment; filename=\"fox-v2-image_1.png\"; filename*=UTF-8''fox-v2-image_1.png"
    )


def test_s3_multipart_upload_streams_large_files(s3: str, tmp_path: Path) -> None:
    store = S3Store(s3)
    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        for _ in range(MULTIPART_THRESHOLD // (1024 * 1024) + 2):
            out.write(os.urandom(1024 * 1024))
    artifact = store.put_file("loras/u/1/v1/model.safetensors", big, "application/octet-stream")
    info = store.head("loras/u/1/v1/model.safetensors")
    assert info is not None and info.size_bytes == big.stat().st_size
    # The checksum travels as metadata, so it is known without reading the object back.
    assert info.sha256 == artifact.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    assert (
        store.get_file("loras/u/1/v1/model.safetensors", tmp_path / "back.bin").read_bytes()
        == big.read_bytes()
    )


def test_local_presign_is_the_file_path(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("t/x.txt", b"hi", "text/plain")
    url = store.presign("t/x.txt", 60)
    assert url == (tmp_path / "t" / "x.txt").resolve().as_uri()


def test_local_reads_are_checked_against_the_recorded_sha256(tmp_path: Path) -> None:
    """As an S3 object's metadata keeps its SHA-256, a local file keeps it in an extended
    attribute set before the file is put in place; a file whose bytes changed since is refused
    on every read, and nothing half-checked is left at the destination."""
    store = LocalStore(tmp_path / "store")
    data = b"the trained weights"
    store.put_once_bytes("loras/u/1/v1/model.safetensors", data, "application/octet-stream")
    info = store.head("loras/u/1/v1/model.safetensors")
    assert info is not None and info.sha256 == hashlib.sha256(data).hexdigest()
    path = store.root / "loras/u/1/v1/model.safetensors"
    with path.open("r+b") as fh:  # what a failing disk does: some bytes change under the store
        fh.write(b"THE")
    with pytest.raises(StoredObjectCorrupt, match=r"model.safetensors is corrupt: .* restore it") as raised:
        store.get_bytes("loras/u/1/v1/model.safetensors")
    assert raised.value.reason == "StoreCorrupt"
    out = tmp_path / "out"
    with pytest.raises(StoredObjectCorrupt):
        store.get_file("loras/u/1/v1/model.safetensors", out / "model.safetensors")
    assert list(out.iterdir()) == []

    store.put_bytes("state/x.json", b"{}", "application/json")  # a rewrite records its own digest
    store.put_bytes("state/x.json", b"{ }", "application/json")
    assert store.get_bytes("state/x.json") == b"{ }"
    by_hand = store.root / "by-hand.txt"  # put there without the store: no digest, read as it is
    by_hand.write_bytes(b"hello")
    assert store.get_bytes("by-hand.txt") == b"hello"
    assert store.get_file("by-hand.txt", out / "copy.txt").read_bytes() == b"hello"


def test_open_store(tmp_path: Path, s3: str) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    local = open_store(f"file://{tmp_path}/data")
    assert isinstance(local, LocalStore) and local.root == (tmp_path / "data").resolve()
    remote = open_store(f"s3://{s3}/some/prefix")
    assert isinstance(remote, S3Store) and remote.uri("k") == f"s3://{s3}/some/prefix/k"
    for bad in ("s3://", "ftp://x/y"):
        with pytest.raises(ValueError, match="store URL"):
            open_store(bad)


def test_key_layout() -> None:
    assert keys.lora_version("u", "abc", 2) == "loras/u/abc/v2/"
    assert keys.image("u", "abc", 2, 3) == "generated-images/u/abc/v2/image_3.png"
    assert keys.transcripts_version("u", "abc", 4) == "transcripts/u/abc/v4/"
    assert keys.result_key("transcription", "u", "abc", 1) == "transcripts/u/abc/v1/result.json"
    assert keys.result_key("image-generation", "u", "abc", 3) == "generated-images/u/abc/v3/result.json"
    # version 0: where results were before versions (read, never written)
    assert keys.result_key("transcription", "u", "abc", 0) == "transcripts/u/abc/result.json"
    assert keys.resource_roots("lora-training", "u", "abc") == [
        "loras/u/abc/",
        "datasets/u/abc/",
        "temp/abc/",
    ]
    assert keys.version_roots("lora-training", "u", "abc", 2) == ["loras/u/abc/v2/", "datasets/u/abc/v2/"]
    with pytest.raises(ValueError, match="runs are numbered from 1"):
        keys.image("u", "abc", 0, 1)
    for owner in ("a/b", "..", "", "a..b"):
        with pytest.raises(ValueError, match="cannot be part of an object key"):
            keys.lora_root(owner, "abc")


def test_a_lora_version_is_found_from_its_model_or_any_of_its_checkpoints() -> None:
    """A promoted checkpoint is the version's model: a picture made with it keeps its lineage (and
    a video of that picture its person's faces) as one made with model.safetensors does."""
    model = "s3://b/p/loras/u/abc/v2/model.safetensors?X-Amz-Signature=x"
    checkpoint = "file:///s/loras/u/abc/v2/checkpoints/step-000500.safetensors"
    assert keys.lora_of_uri(model) == keys.lora_of_uri(checkpoint) == ("u", "abc", 2)
    assert (keys.checkpoint_of_uri(model), keys.checkpoint_of_uri(checkpoint)) == (None, 500)
    for other in (
        "file:///s/loras/u/abc/v2/config.json",
        "file:///s/loras/u/abc/v2/checkpoints/step-000500.pt",  # a trainer's state, not a LoRA
        "https://example.com/my.safetensors",
    ):
        assert keys.lora_of_uri(other) is None and keys.checkpoint_of_uri(other) is None


def test_versions_in_reads_every_layout() -> None:
    stored = [
        "generated-images/u/abc/image_1.png",  # before versions: version 1
        "generated-images/u/abc/v2/image_1.png",
        "generated-images/u/abc/v7/thumbs/image_1.jpg",
        "generated-images/u/other/v9/image_1.png",  # another resource
        "loras/u/abc/v3/model.safetensors",  # another kind
    ]
    assert keys.versions_in("image-generation", "u", "abc", stored) == {1, 2, 7}
    assert keys.versions_in("lora-training", "u", "abc", stored) == {3}
    assert keys.version_of_uri("s3://b/p/generated-images/u/abc/v12/thumbs/image_1.jpg") == 12
    assert keys.version_of_uri("file:///s/transcripts/u/abc/transcript.txt") is None
    assert keys.is_mutable("temp/abc/checkpoints/images.json") and keys.is_mutable("outbox/catalog/x.json")
    assert not keys.is_mutable("generated-images/u/abc/v1/image_1.png")


def test_outputs_are_written_once(store: ObjectStore, tmp_path: Path) -> None:
    """put_once: a new key is written; the same bytes again are left alone (an earlier attempt of
    the run stored them); other bytes under it are refused, and the first stay."""
    first = store.put_once_bytes("out/v1/a.bin", b"paid for", "application/octet-stream")
    again = store.put_once_bytes("out/v1/a.bin", b"paid for", "application/octet-stream")
    assert again == first
    with pytest.raises(ObjectExists, match=r"already holds other content .* never overwritten") as raised:
        store.put_once_bytes("out/v1/a.bin", b"something else", "application/octet-stream")
    assert raised.value.reason == "ObjectExists"
    assert store.get_bytes("out/v1/a.bin") == b"paid for"
    path = tmp_path / "f.bin"
    path.write_bytes(b"from a file")
    made = store.put_once_file("out/v1/f.bin", path, "application/octet-stream")
    assert store.put_once_file("out/v1/f.bin", path, "application/octet-stream") == made
    path.write_bytes(b"changed")
    with pytest.raises(ObjectExists):
        store.put_once_file("out/v1/f.bin", path, "application/octet-stream")
    assert store.get_bytes("out/v1/f.bin") == b"from a file"
