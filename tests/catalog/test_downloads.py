"""Which artifact a download hands out, and the link for the local store (S3: tests/httpapi)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from contentgen.catalog.downloads import (
    ArtifactMissing,
    AssetsDeleted,
    NoOutputs,
    NoSuchFile,
    StoreMismatch,
    choose_artifact,
    sign,
)
from contentgen.store import LocalStore
from tests.catalog.factory import T0, image_doc, lora_doc, transcript_doc


def name_of(uri: str) -> str:
    return "/".join(uri.rsplit("/", 2)[-2:])


def test_the_primary_artifact_of_each_kind() -> None:
    assert name_of(choose_artifact(lora_doc("u", versions=3))) == "v3/model.safetensors"
    assert name_of(choose_artifact(image_doc("u", images=3))) == "u/image_1.png"
    assert name_of(choose_artifact(transcript_doc("u"))) == "u/transcript.txt"


def test_a_file_by_name_picks_the_newest_or_by_path_an_older_one() -> None:
    doc = lora_doc("u", versions=3)
    assert name_of(choose_artifact(doc, "model.safetensors")) == "v3/model.safetensors"
    assert name_of(choose_artifact(doc, "config.json")) == "v3/config.json"
    assert name_of(choose_artifact(doc, "v1/model.safetensors")) == "v1/model.safetensors"
    assert name_of(choose_artifact(image_doc("u", images=3), "image_2.png")) == "u/image_2.png"
    assert name_of(choose_artifact(transcript_doc("u"), "transcript.json")) == "u/transcript.json"


def test_an_unknown_file_lists_the_files() -> None:
    with pytest.raises(NoSuchFile, match=r"no file 'x.bin' \(files: transcript.json, transcript.txt\)"):
        choose_artifact(transcript_doc("u"), "x.bin")
    with pytest.raises(NoSuchFile):
        choose_artifact(lora_doc("u"), "model")  # a name must match whole


def test_no_link_before_outputs_exist_or_after_deletion() -> None:
    with pytest.raises(NoOutputs, match="has no outputs yet \\(status Running\\)"):
        choose_artifact(lora_doc("u", phase="Running"))
    deleted = {**image_doc("u"), "status": "Deleted"}
    with pytest.raises(AssetsDeleted, match="deleted"):
        choose_artifact(deleted)


def test_the_local_store_links_by_file_uri(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    doc = image_doc("u", uri_of=store.uri)
    store.put_bytes("generated-images/alice/u/image_1.png", b"png", "image/png")
    signed = sign(store, choose_artifact(doc), 600, now=T0)
    assert signed.url == (tmp_path / "store/generated-images/alice/u/image_1.png").as_uri()
    assert signed.uri == signed.url
    assert signed.expires_at == T0 + timedelta(seconds=600)
    assert signed.wire()["expiresAt"] == "2025-03-01T12:10:00Z"


def test_links_need_the_artifact_in_the_configured_store(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    with pytest.raises(StoreMismatch, match="not in the configured store"):
        sign(store, choose_artifact(image_doc("u")), 600)  # an s3:// URI
    with pytest.raises(ArtifactMissing, match="missing from the store"):
        sign(store, choose_artifact(image_doc("u", uri_of=store.uri)), 600)
    with pytest.raises(ValueError, match="between 1 second"):
        sign(store, choose_artifact(image_doc("u", uri_of=store.uri)), 0)
