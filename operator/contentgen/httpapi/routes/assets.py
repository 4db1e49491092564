"""Assets by kind, search, usage statistics, lineage, download links and the files themselves."""

from __future__ import annotations

import mimetypes
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, RedirectResponse, Response

from contentgen.catalog import ImagePage, JobPage, LoraPage, SignedUrl, Stats, TranscriptPage
from contentgen.catalog.downloads import DownloadError, choose_artifact, sign
from contentgen.catalog.lineage import Lineage, lineage
from contentgen.catalog.params import DEFAULT_EXPIRES, MAX_EXPIRES, MIN_EXPIRES
from contentgen.errors import ContentgenError
from contentgen.store import LocalStore

from ..deps import (
    CallerDep,
    ListQueryDep,
    OwnerQuery,
    RefPath,
    ServicesDep,
    TypeQuery,
    find_record,
    owner_scope,
    record_scope,
)
from ..errors import ERROR_RESPONSES, ApiError, bad_request
from .common import page_of

router = APIRouter(prefix="/api/assets", tags=["assets"], responses=ERROR_RESPONSES)

# Why a download has no link, as HTTP statuses.
_DOWNLOAD_STATUS = {
    "deleted": 410,
    "no_outputs": 409,
    "file_not_found": 404,
    "artifact_missing": 404,
    "store_mismatch": 500,  # the server's CONTENTGEN_STORE is not where the catalog says
}


@router.get("/loras", response_model=LoraPage, summary="List LoRAs")
def loras(svc: ServicesDep, query: ListQueryDep) -> dict[str, Any]:
    """LoraTraining records; `latestModelUri` is what an ImageGeneration's spec.loras[].url takes."""
    return page_of(svc.catalog.find(query.with_type("lora-training"), query.sort, query.page))


@router.get("/images", response_model=ImagePage, summary="List image generations")
def images(svc: ServicesDep, query: ListQueryDep) -> dict[str, Any]:
    return page_of(svc.catalog.find(query.with_type("image-generation"), query.sort, query.page))


@router.get("/transcripts", response_model=TranscriptPage, summary="List transcriptions")
def transcripts(svc: ServicesDep, query: ListQueryDep) -> dict[str, Any]:
    return page_of(svc.catalog.find(query.with_type("transcription"), query.sort, query.page))


@router.get("/search", response_model=JobPage, summary="Search records")
def search(
    svc: ServicesDep,
    query: ListQueryDep,
    q: Annotated[
        str,
        Query(
            max_length=500,
            description="Words that must all occur (case-insensitive) in the name, tags, description, "
            "prompt, trigger word or transcript.",
        ),
    ],
    type_: TypeQuery = None,
) -> dict[str, Any]:
    try:
        result = svc.catalog.search(q, query.with_type(type_), query.sort, query.page)
    except ValueError as exc:
        raise bad_request("q", str(exc)) from None
    return page_of(result)


@router.get("/stats", response_model=Stats, summary="Usage statistics")
def stats(svc: ServicesDep, who: CallerDep, owner: OwnerQuery = None) -> dict[str, Any]:
    """Counts by type and status, stored bytes and their estimated monthly cost; deleted records are
    left out. An admin without ?owner= gets everyone's."""
    return svc.catalog.stats(owner_scope(who, owner), svc.settings.price_per_gb_month).wire()


@router.get("/{ref:path}/lineage", response_model=Lineage, summary="Where it came from, what it made")
def lineage_of(ref: RefPath, svc: ServicesDep, who: CallerDep, type_: TypeQuery = None) -> dict[str, Any]:
    """An image generation: the LoRAs used (name, id, version), each version's dataset and source
    video. A LoRA: each version with its dataset, source video and contact sheet, and the image
    generations made with it. Only the caller's records are followed."""
    doc = find_record(svc, who, ref, type_)
    return lineage(svc.catalog, doc, record_scope(who)).wire()


FileQuery = Annotated[
    str | None,
    Query(
        max_length=256,
        description="An output's file name (config.json) or path end (v1/model.safetensors, "
        "thumbs/image_1.jpg); default: the latest LoRA model, the first image or transcript.txt.",
    ),
]


def _chosen(doc: dict[str, Any], file: str | None) -> str:
    try:
        return choose_artifact(doc, file)
    except DownloadError as exc:
        raise ApiError(_DOWNLOAD_STATUS.get(exc.code, 500), exc.code, str(exc)) from None


@router.get(
    "/{ref:path}/download",
    response_model=SignedUrl,
    summary="A time-limited download link",
    responses={409: {"description": "No outputs yet."}, 410: {"description": "The assets were deleted."}},
)
def download(
    ref: RefPath,
    svc: ServicesDep,
    who: CallerDep,
    file: FileQuery = None,
    expires: Annotated[int, Query(ge=MIN_EXPIRES, le=MAX_EXPIRES, description="Seconds, up to 7 days.")] = (
        DEFAULT_EXPIRES
    ),
) -> dict[str, Any]:
    """A presigned URL for S3 (signed for CONTENTGEN_STORE_PUBLIC_ENDPOINT_URL when set), a file://
    path for a local store, with its expiry."""
    uri = _chosen(find_record(svc, who, ref), file)
    try:
        signed = sign(svc.store(), uri, expires)
    except DownloadError as exc:
        raise ApiError(_DOWNLOAD_STATUS.get(exc.code, 500), exc.code, str(exc)) from None
    except ContentgenError as exc:
        raise ApiError(502, "store_error", str(exc)) from None
    return signed.wire()


# Stored files are shown on this origin: never let one be taken for a page or a script.
_CONTENT_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}


@router.get(
    "/{ref:path}/content",
    summary="The file itself (for the web UI's images, text and download buttons)",
    response_class=Response,
    responses={
        200: {"description": "The file, from a local store."},
        307: {"description": "To a presigned URL of an S3 store."},
        409: {"description": "No outputs yet."},
        410: {"description": "The assets were deleted."},
    },
)
def content(
    ref: RefPath,
    svc: ServicesDep,
    who: CallerDep,
    file: FileQuery = None,
    download: Annotated[bool, Query(description="Ask the browser to save it instead of showing it.")] = False,
) -> Response:
    """A local store's file is sent from here; an S3 store's is a redirect to a presigned link
    (valid an hour), so large models do not pass through the API."""
    doc = find_record(svc, who, ref)
    uri = _chosen(doc, file)
    store = svc.store()
    name = uri.rsplit("/", 1)[-1]
    if isinstance(store, LocalStore) and store.owns(uri):
        path = store.root / store.key_of(uri)
        if not path.is_file():
            raise ApiError(
                404, "artifact_missing", f"{uri} is listed in the catalog but missing from the store"
            )
        media = next(
            (a.get("contentType") for a in doc.get("artifacts") or [] if a.get("uri") == uri), None
        ) or (mimetypes.guess_type(name)[0] or "application/octet-stream")
        return FileResponse(
            path,
            media_type=media,
            filename=name,
            content_disposition_type="attachment" if download else "inline",
            headers=_CONTENT_HEADERS,
        )
    try:
        signed = sign(store, uri, DEFAULT_EXPIRES)
    except DownloadError as exc:
        raise ApiError(_DOWNLOAD_STATUS.get(exc.code, 500), exc.code, str(exc)) from None
    except ContentgenError as exc:
        raise ApiError(502, "store_error", str(exc)) from None
    return RedirectResponse(signed.url, status_code=307, headers=_CONTENT_HEADERS)
