"""Links and integrity on the real S3 server (versitygw): presigned links that are expired,
tampered with, for another key, signed with a wrong secret, valid for more than 7 days, or used to
PUT are refused; uploads carry a checksum the server checks; downloads are checked against the
SHA-256 recorded at upload. moto accepted every one of these."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import botocore.exceptions
import httpx
import pytest

from contentgen.store.base import StoredObjectCorrupt
from contentgen.store.s3 import MAX_LINK_SECONDS, MULTIPART_THRESHOLD, S3Store, s3_client
from tests.s3server import client
from tests.waiting import wait_for

KEY = "generated-images/u/1/v1/image_1.png"


@pytest.fixture
def store(s3: str) -> S3Store:
    made = S3Store(s3, "cg")
    made.put_bytes(KEY, b"pixels", "image/png")
    made.put_bytes("generated-images/u/2/v1/image_1.png", b"someone else's", "image/png")
    return made


def signed_at(url: str) -> float:
    stamp = parse_qs(urlparse(url).query)["X-Amz-Date"][0]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


def refused(response: httpx.Response, code: str) -> bool:
    return response.status_code == 403 and f"<Code>{code}</Code>" in response.text


def test_a_link_works_until_it_expires(store: S3Store) -> None:
    url = store.presign(KEY, 2)
    assert parse_qs(urlparse(url).query)["X-Amz-Expires"] == ["2"]
    # Past its 2 s (and any rounding of the signing second), by the clock the server reads.
    wait_for(lambda: time.time() > signed_at(url) + 4, 60, "the link's expiry")
    expired = httpx.get(url)
    assert refused(expired, "AccessDenied") and "expired" in expired.text.lower(), expired.text
    assert httpx.get(store.presign(KEY, 600)).content == b"pixels"  # the object is still there


def test_a_tampered_signature_is_refused(store: S3Store) -> None:
    url = store.presign(KEY, 600)
    signature = parse_qs(urlparse(url).query)["X-Amz-Signature"][0]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert refused(httpx.get(url.replace(signature, flipped)), "SignatureDoesNotMatch")


def test_a_link_for_one_key_does_not_open_another(store: S3Store) -> None:
    url = store.presign(KEY, 600)
    other = url.replace("/generated-images/u/1/", "/generated-images/u/2/")
    assert other != url
    response = httpx.get(other)
    assert refused(response, "SignatureDoesNotMatch") and b"someone else" not in response.content


def test_a_link_signed_with_a_wrong_secret_is_refused(store: S3Store, s3_endpoint: str) -> None:
    forged = S3Store(store.bucket, "cg", client=client(s3_endpoint, secret="not-the-secret"))
    url = forged.signer.generate_presigned_url(
        "get_object", Params={"Bucket": store.bucket, "Key": f"cg/{KEY}"}, ExpiresIn=600
    )
    assert refused(httpx.get(url), "SignatureDoesNotMatch")


def test_a_link_valid_for_more_than_7_days_is_refused(store: S3Store) -> None:
    with pytest.raises(ValueError, match="1 to 604800 seconds"):
        store.presign(KEY, MAX_LINK_SECONDS + 1)
    assert httpx.get(store.presign(KEY, MAX_LINK_SECONDS)).content == b"pixels"
    # boto3 signs anything; the server refuses what S3 refuses.
    url = s3_client().generate_presigned_url(
        "get_object", Params={"Bucket": store.bucket, "Key": f"cg/{KEY}"}, ExpiresIn=MAX_LINK_SECONDS + 1
    )
    response = httpx.get(url)
    assert response.status_code in (400, 403) and b"pixels" not in response.content, response.text


def test_a_get_link_cannot_put(store: S3Store) -> None:
    url = store.presign(KEY, 600)
    response = httpx.put(url, content=b"overwritten")
    assert refused(response, "SignatureDoesNotMatch")
    assert store.get_bytes(KEY) == b"pixels"


def test_an_upload_with_a_wrong_checksum_is_refused(s3: str, s3_endpoint: str) -> None:
    raw = client(s3_endpoint)
    wrong = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    with pytest.raises(botocore.exceptions.ClientError) as sha:
        raw.put_object(Bucket=s3, Key="a.bin", Body=b"these bytes", ChecksumSHA256=wrong)
    assert sha.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, sha.value.response
    md5 = base64.b64encode(hashlib.md5(b"other bytes").digest()).decode()
    with pytest.raises(botocore.exceptions.ClientError) as content_md5:
        raw.put_object(Bucket=s3, Key="a.bin", Body=b"these bytes", ContentMD5=md5)
    assert content_md5.value.response["Error"]["Code"] == "BadDigest", content_md5.value.response
    assert raw.list_objects_v2(Bucket=s3).get("KeyCount") == 0


def test_the_store_s_uploads_carry_their_sha256(s3: str, tmp_path: Path) -> None:
    """The checksum the server checked is kept with the object: the SHA-256 of a single upload,
    and the checksum of the parts' checksums (`...-N`) of a multipart one."""
    store = S3Store(s3, "cg")
    small = store.put_bytes("small.bin", b"x" * 1000, "x/y")
    head = store.client.head_object(Bucket=s3, Key="cg/small.bin", ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == small.sha256
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(MULTIPART_THRESHOLD + 1024))
    store.put_file("big.bin", big, "x/y")
    head = store.client.head_object(Bucket=s3, Key="cg/big.bin", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"].endswith("-2"), head


def corrupt(path: Path) -> None:
    """What a failing disk does: some bytes change under the server (its POSIX backend's files)."""
    with path.open("r+b") as fh:
        fh.write(b"THE")


def test_a_corrupted_object_is_detected_on_download(
    s3: str,
    s3_server,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """A single upload's object: the server keeps its SHA-256 checksum, and the read is checked
    against it as it streams (botocore asks for it)."""
    store = S3Store(s3, "cg")
    store.put_bytes("out/v1/model.bin", b"the trained weights", "x/y")
    corrupt(s3_server.root / s3 / "cg" / "out" / "v1" / "model.bin")
    with pytest.raises(StoredObjectCorrupt, match=r"model.bin is corrupt: .* restore it") as raised:
        store.get_bytes("out/v1/model.bin")
    assert raised.value.reason == "StoreCorrupt"
    with pytest.raises(StoredObjectCorrupt):
        store.get_file("out/v1/model.bin", tmp_path / "model.bin")
    assert list(tmp_path.iterdir()) == []  # nothing half-checked is left behind


def test_a_corrupted_multipart_object_is_detected_by_its_recorded_sha256(
    s3: str,
    s3_server,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """A multipart object's checksum is one of its parts' checksums, which no read can check:
    the SHA-256 recorded at upload (the object's metadata) is what the read is checked against."""
    store = S3Store(s3, "cg")
    big = tmp_path / "upload" / "model.safetensors"
    big.parent.mkdir()
    big.write_bytes(os.urandom(MULTIPART_THRESHOLD + 1024))
    artifact = store.put_file("loras/v1/model.safetensors", big, "x/y")
    assert (
        store.get_file("loras/v1/model.safetensors", tmp_path / "ok" / "m").read_bytes() == big.read_bytes()
    )
    corrupt(s3_server.root / s3 / "cg" / "loras" / "v1" / "model.safetensors")
    with pytest.raises(
        StoredObjectCorrupt, match=rf"its bytes hash to sha256 \w+, and {artifact.sha256} was recorded"
    ):
        store.get_file("loras/v1/model.safetensors", tmp_path / "back" / "m")
    assert not (tmp_path / "back" / "m").exists() and not (tmp_path / "back" / "m.partial").exists()
