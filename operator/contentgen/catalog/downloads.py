"""Which artifact of a record to hand out, and a time-limited link to it.

The primary artifact is the latest version's LoRA model, first image or transcript.txt; `version`
picks another version, `file` another output by file name (`config.json`) or by the end of its path
(`v1/model.safetensors`). Downloads are named after the record and the version
(`download_name`: avatar-v3.safetensors, portrait-v2-image_1.png).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from contentgen.api.versions import LEGACY_VERSION, numbered, version_entry
from contentgen.store import ObjectNotFound, ObjectStore
from contentgen.store.keys import version_of_uri

from .document import DELETED
from .kinds import CATALOG_KINDS, catalog_kind, transcript_kinds
from .migrate import upgrade
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
    """The record's outputs are in another store than the one this program was given: it was
    written by a run against another CONTENTGEN_STORE (or --store)."""

    code = "store_mismatch"

    def __init__(self, uri: str, store: ObjectStore) -> None:
        where = _store_of(uri)
        super().__init__(
            f"{uri} is in the store {where}, not in {_store_url(store)} (CONTENTGEN_STORE): set "
            f"CONTENTGEN_STORE={where} (or --store {where}), the store that run wrote to"
        )


_ROOTS = re.compile(r"/(loras|datasets|generated-images|generated-videos|transcripts|evaluations)/")


def _store_of(uri: str) -> str:
    """The store a URI of an output is in: what comes before the key layout's first root."""
    found = _ROOTS.search(uri)
    return uri[: found.start()] if found else uri.rsplit("/", 1)[0]


def _store_url(store: ObjectStore) -> str:
    """The store as CONTENTGEN_STORE names it (s3://bucket/prefix, file:///dir)."""
    return store.uri("_").removesuffix("/_")


class NoSuchVersion(DownloadError):
    code = "version_not_found"


def primary_uri(version: dict[str, Any], kind: str) -> str:
    """A version's main output, as its kind declares it (kinds/): the LoRA model, the first image,
    the video, transcript.txt."""
    return catalog_kind(kind).primary(version)


def version_uris(version: dict[str, Any]) -> list[str]:
    """Every output URI a version names, without repeats."""
    uris = [a["uri"] for a in version.get("artifacts") or []]
    uris += [version.get(k, "") for k in ("modelUri", "finalModelUri", "configUri", "datasetUri")]
    uris += [version.get("contactSheetUri", ""), version.get("contactSheetThumbnailUri", "")]
    for image in version.get("images") or []:
        uris += [image["uri"], image.get("thumbnailUri", "")]
    video = version.get("video") or {}
    uris += [video.get(k, "") for k in ("uri", "posterUri", "thumbnailUri", "stripUri")]
    transcript = version.get("transcript") or {}
    uris += [transcript.get("jsonUri", ""), transcript.get("textUri", "")]
    return list(dict.fromkeys(u for u in uris if u))


def output_uris(doc: dict[str, Any]) -> list[str]:
    """Every output URI the record names, oldest version first, without repeats."""
    doc = upgrade(doc)
    uris = [a["uri"] for a in doc.get("artifacts") or []]
    for version in doc.get("versions") or []:
        uris += version_uris(version)
    return list(dict.fromkeys(uris))


def version_of(doc: dict[str, Any], number: int) -> dict[str, Any]:
    """A usable version of the record; NoSuchVersion (or AssetsDeleted) naming what there is."""
    doc = upgrade(doc)
    if (version := version_entry(doc, number)) is not None:
        return dict(version)
    if numbered(doc.get("deletedVersions") or [], number) is not None:
        raise AssetsDeleted(f"version {number} of {doc['_id']} was deleted; its outputs were removed")
    have = ", ".join(f"v{v['version']}" for v in doc.get("versions") or []) or "none"
    raise NoSuchVersion(f"{doc['_id']} has no version {number} (usable versions: {have})")


def choose_artifact(doc: dict[str, Any], file: str | None = None, version: int | None = None) -> str:
    """The output to hand out: `file` (a file name, or the end of its path) of `version`, or of
    any version (the newest that has it); without `file`, the version's (default: the latest
    version's) main output."""
    doc = upgrade(doc)
    if doc.get("status") == DELETED and version is None:
        raise AssetsDeleted(f"{doc['_id']} was deleted; its assets were removed")
    live = _training_files(doc, version) if file and version is not None else None
    if live is not None and file:
        return _named(doc, [live], file, version)
    versions = [version_of(doc, version)] if version is not None else doc.get("versions") or []
    return _named(doc, versions, file, version) if file else _main_output(doc, versions)


def _training_files(doc: dict[str, Any], number: int) -> dict[str, Any] | None:
    """What a LoRA training under way has stored so far, as a version of its own: each scored
    checkpoint's grid and report (latestRun.training), which the web UI's live view shows before the
    version is made; None where `number` is not the latest run's, or is a usable version already."""
    run = doc.get("latestRun") or {}
    if int(run.get("version") or 0) != number or version_entry(doc, number) is not None:
        return None
    points = (run.get("training") or {}).get("checkpoints") or []
    uris = [str(p[k]) for p in points for k in ("gridUri", "reportUri") if p.get(k)]
    return {"version": number, "artifacts": [{"uri": uri} for uri in uris]} if uris else None


def _main_output(doc: dict[str, Any], versions: list[dict[str, Any]]) -> str:
    """The last version's main output (its kind says which)."""
    uri = primary_uri(versions[-1], str(doc.get("kind"))) if versions else ""
    if not uri:
        state = (doc.get("latestRun") or {}).get("phase") or doc.get("status")
        raise NoOutputs(f"{doc['_id']} has no outputs yet (latest run {state})")
    return uri


def _named(doc: dict[str, Any], versions: list[dict[str, Any]], file: str, version: int | None) -> str:
    """The newest of the versions' files (and, of any version, the record's) named `file`."""
    uris = [u for v in versions for u in version_uris(v)]
    if version is None:
        uris = list(dict.fromkeys([a["uri"] for a in doc.get("artifacts") or []] + uris))
    matches = [u for u in uris if u.endswith("/" + file.strip("/"))]
    if not matches:
        names = sorted({u.rsplit("/", 1)[-1] for u in uris})
        available = ", ".join(names) if names else "none"
        where = f" in version {version}" if version is not None else ""
        raise NoSuchFile(f"{doc['_id']} has no file {file!r}{where} (files: {available})")
    return matches[-1]  # the newest, e.g. the latest version's model.safetensors


def download_name(doc: dict[str, Any], uri: str) -> str:
    """The name a download is saved under: NAME-vN.safetensors for a LoRA's weights, else
    NAME-vN-FILE (NAME-v2-image_1.png, NAME-v1-transcript.txt, NAME-v3-thumb-image_1.jpg)."""
    doc = upgrade(doc)
    number = version_of_uri(uri)
    if number is None:  # the unversioned layout before versions, or a version that lists it
        number = next(
            (int(v["version"]) for v in doc.get("versions") or [] if uri in version_uris(v)), LEGACY_VERSION
        )
    file = uri.split("?", 1)[0].rsplit("/", 1)[-1]
    if "/thumbs/" in uri:
        file = f"thumb-{file}"
    stem = f"{doc.get('name') or doc['_id']}-v{number}"
    return f"{stem}.safetensors" if file == "model.safetensors" else f"{stem}-{file}"


def sign(
    store: ObjectStore,
    uri: str,
    expires_seconds: int,
    now: datetime | None = None,
    download_name: str | None = None,
) -> SignedUrl:
    """A presigned URL for S3 (saved as `download_name` by browsers), the file:// URI for the local
    store; the store must hold `uri`."""
    check_expires(expires_seconds)
    if not store.owns(uri):
        raise StoreMismatch(uri, store)
    issued = now or datetime.now(UTC)
    try:
        url = store.presign(store.key_of(uri), expires_seconds, download_name)
    except ObjectNotFound:
        raise ArtifactMissing(f"{uri} is listed in the catalog but missing from the store") from None
    return SignedUrl(url=url, expires_at=issued + timedelta(seconds=expires_seconds), uri=uri)


def transcript_of(
    doc: dict[str, Any], store: ObjectStore, version: int | None = None
) -> tuple[dict[str, Any], float, int]:
    """(the provider's response in transcript.json, the audio's length in seconds, the version) of
    a transcription's `version` (default: the latest usable one)."""
    doc = upgrade(doc)
    _check_transcribed(doc, version)
    uri = choose_artifact(doc, "transcript.json", version)
    chosen = _version_listing(doc, uri, version)
    response = _stored_transcript(store, uri)
    duration = float((chosen.get("transcript") or {}).get("durationSeconds") or 0.0)
    return response, duration, int(chosen.get("version") or version or 0)


def _check_transcribed(doc: dict[str, Any], version: int | None) -> None:
    """NoSuchFile for a record of a kind without transcripts; NoOutputs for one not transcribed yet."""
    declared = CATALOG_KINDS.get(str(doc.get("kind")))
    if declared is None or not declared.transcript:
        raise NoSuchFile(
            f"{doc['_id']} is a {doc.get('kind')}, not a {transcript_kinds()}: it has no transcript"
        )
    if version is None and not doc.get("versions") and doc.get("status") != DELETED:
        state = (doc.get("latestRun") or {}).get("phase") or doc.get("status")
        raise NoOutputs(f"{doc['_id']} has no transcript yet (latest run {state})")


def _version_listing(doc: dict[str, Any], uri: str, version: int | None) -> dict[str, Any]:
    """The version asked for, else the newest that lists `uri` ({} for none)."""
    chosen = version_of(doc, version) if version is not None else None
    if chosen is None:
        chosen = next((v for v in reversed(doc.get("versions") or []) if uri in version_uris(v)), {})
    return chosen


def _stored_transcript(store: ObjectStore, uri: str) -> dict[str, Any]:
    """The JSON object stored at `uri`; ArtifactMissing when it is gone, damaged or not an object."""
    import json

    if not store.owns(uri):
        raise StoreMismatch(uri, store)
    try:
        data = store.get_bytes(store.key_of(uri))
    except ObjectNotFound:
        raise ArtifactMissing(f"{uri} is listed in the catalog but missing from the store") from None
    try:
        response = json.loads(data)
    except ValueError:
        raise ArtifactMissing(f"{uri} is not JSON: the stored transcript is damaged") from None
    if not isinstance(response, dict):
        raise ArtifactMissing(f"{uri} is not a transcript (a JSON object)")
    return response
