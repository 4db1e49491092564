"""Assets by kind, search, usage statistics and download links."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from contentgen.catalog import ImagePage, JobPage, LoraPage, SignedUrl, Stats, TranscriptPage
from contentgen.catalog.downloads import DownloadError, choose_artifact, sign
from contentgen.catalog.params import DEFAULT_EXPIRES, MAX_EXPIRES, MIN_EXPIRES
from contentgen.errors import ContentgenError

from ..deps import (
    CallerDep,
    IdPath,
    ListQueryDep,
    OwnerQuery,
    ServicesDep,
    TypeName,
    owner_scope,
    record_scope,
)
from ..errors import ERROR_RESPONSES, ApiError, bad_request, not_found
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
    return page_of(svc.catalog.find(query.filters(type="lora-training"), query.sort, query.page))


@router.get("/images", response_model=ImagePage, summary="List image generations")
def images(
    svc: ServicesDep,
    query: ListQueryDep,
    model: Annotated[str | None, Query(description="Only this image model, e.g. flux-pro.")] = None,
) -> dict[str, Any]:
    return page_of(
        svc.catalog.find(query.filters(type="image-generation", model=model), query.sort, query.page)
    )


@router.get("/transcripts", response_model=TranscriptPage, summary="List transcriptions")
def transcripts(svc: ServicesDep, query: ListQueryDep) -> dict[str, Any]:
    return page_of(svc.catalog.find(query.filters(type="transcription"), query.sort, query.page))


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
    type_: Annotated[TypeName | None, Query(alias="type", description="Only this kind of asset.")] = None,
) -> dict[str, Any]:
    try:
        result = svc.catalog.search(q, query.filters(type=type_), query.sort, query.page)
    except ValueError as exc:
        raise bad_request("q", str(exc)) from None
    return page_of(result)


@router.get("/stats", response_model=Stats, summary="Usage statistics")
def stats(svc: ServicesDep, who: CallerDep, owner: OwnerQuery = None) -> dict[str, Any]:
    """Counts by type and status, stored bytes and their estimated monthly cost; deleted records are
    left out. An admin without ?owner= gets everyone's."""
    return svc.catalog.stats(owner_scope(who, owner), svc.settings.price_per_gb_month).wire()


@router.get(
    "/{id}/download",
    response_model=SignedUrl,
    summary="A time-limited download link",
    responses={409: {"description": "No outputs yet."}, 410: {"description": "The assets were deleted."}},
)
def download(
    id: IdPath,
    svc: ServicesDep,
    who: CallerDep,
    file: Annotated[
        str | None,
        Query(
            max_length=256,
            description="An output's file name (config.json) or path end (v1/model.safetensors); "
            "default: the latest LoRA model, the first image or transcript.txt.",
        ),
    ] = None,
    expires: Annotated[int, Query(ge=MIN_EXPIRES, le=MAX_EXPIRES, description="Seconds, up to 7 days.")] = (
        DEFAULT_EXPIRES
    ),
) -> dict[str, Any]:
    """A presigned URL for S3 (a file:// path for a local store) with its expiry."""
    doc = svc.catalog.get(id, owner=record_scope(who))
    if doc is None:
        raise not_found(id)
    try:
        signed = sign(svc.store(), choose_artifact(doc, file), expires)
    except DownloadError as exc:
        raise ApiError(_DOWNLOAD_STATUS.get(exc.code, 500), exc.code, str(exc)) from None
    except ContentgenError as exc:
        raise ApiError(502, "store_error", str(exc)) from None
    return signed.wire()
