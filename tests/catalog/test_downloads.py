"""Which artifact a download hands out, and the link for the local store (S3: tests/httpapi)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from contentgen.catalog.document import marked_deleted, without_versions
from contentgen.catalog.downloads import (
    ArtifactMissing,
    AssetsDeleted,
    NoOutputs,
    NoSuchFile,
    NoSuchVersion,
    StoreMismatch,
    choose_artifact,
    download_name,
    sign,
)
from contentgen.store import LocalStore
from tests.catalog.factory import T0, image_doc, lora_doc, transcript_doc


def name_of(uri: str) -> str:
    return "/".join(uri.rsplit("/", 2)[-2:])


def test_the_primary_artifact_of_each_kind() -> None:
    assert name_of(choose_artifact(lora_doc("u", versions=3))) == "v3/model.safetensors"
    assert name_of(choose_artifact(image_doc("u", images=3))) == "v1/image_1.png"
    assert name_of(choose_artifact(transcript_doc("u"))) == "v1/transcript.txt"


def test_a_file_by_name_picks_the_newest_or_by_path_an_older_one() -> None:
    doc = lora_doc("u", versions=3)
    assert name_of(choose_artifact(doc, "model.safetensors")) == "v3/model.safetensors"
    assert name_of(choose_artifact(doc, "config.json")) == "v3/config.json"
    assert name_of(choose_artifact(doc, "v1/model.safetensors")) == "v1/model.safetensors"
    assert name_of(choose_artifact(image_doc("u", images=3), "image_2.png")) == "v1/image_2.png"
    assert name_of(choose_artifact(transcript_doc("u"), "transcript.json")) == "v1/transcript.json"


def test_a_version_picks_its_own_outputs() -> None:
    first = image_doc("u", images=2, seed=1)
    both = image_doc("u", images=1, seed=2, version=2, previous=first)
    assert name_of(choose_artifact(both)) == "v2/image_1.png"  # the latest version's
    assert name_of(choose_artifact(both, version=1)) == "v1/image_1.png"
    assert name_of(choose_artifact(both, "image_2.png")) == "v1/image_2.png"  # only v1 has a second
    with pytest.raises(NoSuchFile, match=r"no file 'image_2\.png' in version 2"):
        choose_artifact(both, "image_2.png", version=2)
    with pytest.raises(NoSuchVersion, match=r"has no version 3 \(usable versions: v1, v2\)"):
        choose_artifact(both, version=3)
    pruned = without_versions(both, [1], at=T0, by="cli")
    with pytest.raises(AssetsDeleted, match="version 1 of u was deleted"):
        choose_artifact(pruned, version=1)


def test_downloads_are_named_after_the_record_and_version() -> None:
    lora = lora_doc("u", name="avatar", versions=3)
    assert download_name(lora, choose_artifact(lora)) == "avatar-v3.safetensors"
    assert download_name(lora, choose_artifact(lora, "config.json", version=2)) == "avatar-v2-config.json"
    images = image_doc("u", name="portrait", images=1, version=2, previous=image_doc("u", name="portrait"))
    assert download_name(images, choose_artifact(images)) == "portrait-v2-image_1.png"
    thumb = images["versions"][0]["images"][0]["thumbnailUri"]
    assert download_name(images, thumb) == "portrait-v1-thumb-image_1.jpg"
    assert download_name(transcript_doc("u", name="talk"), choose_artifact(transcript_doc("u"))) == (
        "talk-v1-transcript.txt"
    )
    # before versions, images were unversioned: version 1
    legacy = {
        **images,
        "schema": 2,
        "versions": [
            {**images["versions"][0], "images": [{"uri": "s3://b/generated-images/alice/u/image_1.png"}]}
        ],
    }
    assert download_name(legacy, "s3://b/generated-images/alice/u/image_1.png") == "portrait-v1-image_1.png"


def test_an_unknown_file_lists_the_files() -> None:
    with pytest.raises(NoSuchFile, match=r"no file 'x.bin' \(files: transcript.json, transcript.txt\)"):
        choose_artifact(transcript_doc("u"), "x.bin")
    with pytest.raises(NoSuchFile):
        choose_artifact(lora_doc("u"), "model")  # a name must match whole


def test_no_link_before_outputs_exist_or_after_deletion() -> None:
    with pytest.raises(NoOutputs, match="has no outputs yet \\(latest run Running\\)"):
        choose_artifact(lora_doc("u", phase="Running"))
    removed = marked_deleted(image_doc("u"), at=T0, policy="Delete", outputs_kept=False, by="operator")
    assert removed is not None
    with pytest.raises(AssetsDeleted, match="deleted"):
        choose_artifact(removed)
    # Retain: the resource is gone, its outputs are kept and still handed out
    kept = marked_deleted(image_doc("u"), at=T0, policy="Retain", outputs_kept=True, by="operator")
    assert kept is not None and name_of(choose_artifact(kept)) == "v1/image_1.png"


def test_the_local_store_links_by_file_uri(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    doc = image_doc("u", uri_of=store.uri)
    store.put_bytes("generated-images/alice/u/v1/image_1.png", b"png", "image/png")
    signed = sign(store, choose_artifact(doc), 600, now=T0)
    assert signed.url == (tmp_path / "store/generated-images/alice/u/v1/image_1.png").as_uri()
    assert signed.uri == signed.url
    assert signed.expires_at == T0 + timedelta(seconds=600)
    assert signed.wire()["expiresAt"] == "2025-03-01T12:10:00Z"


def test_links_need_the_artifact_in_the_configured_store(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    elsewhere = r"is in the store s3://catalog-tests, not in .*: set CONTENTGEN_STORE=s3://catalog-tests "
    with pytest.raises(StoreMismatch, match=elsewhere):
        sign(store, choose_artifact(image_doc("u")), 600)  # an s3:// URI
    with pytest.raises(ArtifactMissing, match="missing from the store"):
        sign(store, choose_artifact(image_doc("u", uri_of=store.uri)), 600)
    with pytest.raises(ValueError, match="between 1 second"):
        sign(store, choose_artifact(image_doc("u", uri_of=store.uri)), 0)
