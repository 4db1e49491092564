"""Which artifact of a record to hand out, and a time-limited link to it.

The primary artifact is the latest LoRA model, the first image or transcript.txt; `file` picks
another by file name (`config.json`) or by the end of its path (`v1/model.safetensors`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from contentgen.store import ObjectNotFound, ObjectStore

from .document import DELETED
from .params import check_expires
from .records import SignedUrl


class DownloadError(Exception):
    """Why there is no link; `code` is what the HTTP API reports."""

    code = "download_failed"


class AssetsDeleted(DownloadError):
    code = "deleted"


class NoOutputs(DownloadError):
    code = "no_outputs"


class NoSuchFile(DownloadError):
    code = "file_not_found"


class ArtifactMissing(DownloadError):
    code = "artifact_missing"


class StoreMismatch(DownloadError):
    code = "store_mismatch"


def primary_uri(doc: dict[str, Any]) -> str:
    kind = doc.get("kind")
    if kind == "LoraTraining":
        return str(doc.get("latestModelUri") or "")
    if kind == "ImageGeneration":
        images = doc.get("images") or []
        return str(images[0]["uri"]) if images else ""
    return str((doc.get("transcript") or {}).get("textUri") or "")


def output_uris(doc: dict[str, Any]) -> list[str]:
    """Every output URI the record names, oldest first, without repeats."""
    uris = [a["uri"] for a in doc.get("artifacts") or []]
    for version in doc.get("versions") or []:
        uris += [version.get(k, "") for k in ("configUri", "modelUri", "datasetUri")]
        uris += [version.get("contactSheetUri", ""), version.get("contactSheetThumbnailUri", "")]
    for image in doc.get("images") or []:
        uris += [image["uri"], image.get("thumbnailUri", "")]
    transcript = doc.get("transcript") or {}
    uris += [transcript.get("jsonUri", ""), transcript.get("textUri", "")]
    return list(dict.fromkeys(u for u in uris if u))


def choose_artifact(doc: dict[str, Any], file: str | None = None) -> str:
    if doc.get("status") == DELETED:
        raise AssetsDeleted(f"{doc['_id']} was deleted; its assets were removed")
    if not file:
        uri = primary_uri(doc)
        if not uri:
            raise NoOutputs(f"{doc['_id']} has no outputs yet (status {doc.get('status')})")
        return uri
    uris = output_uris(doc)
    matches = [u for u in uris if u.endswith("/" + file.strip("/"))]
    if not matches:
        names = sorted({u.rsplit("/", 1)[-1] for u in uris})
        available = ", ".join(names) if names else "none"
        raise NoSuchFile(f"{doc['_id']} has no file {file!r} (files: {available})")
    return matches[-1]  # the newest, e.g. the latest version's model.safetensors


def sign(store: ObjectStore, uri: str, expires_seconds: int, now: datetime | None = None) -> SignedUrl:
    """A presigned URL for S3, the file:// URI for the local store; the store must hold `uri`."""
    check_expires(expires_seconds)
    if not store.owns(uri):
        raise StoreMismatch(f"{uri} is not in the configured store {store!r} (CONTENTGEN_STORE)")
    issued = now or datetime.now(UTC)
    try:
        url = store.presign(store.key_of(uri), expires_seconds)
    except ObjectNotFound:
        raise ArtifactMissing(f"{uri} is listed in the catalog but missing from the store") from None
    return SignedUrl(url=url, expires_at=issued + timedelta(seconds=expires_seconds), uri=uri)
