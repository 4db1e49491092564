"""Assets by kind, search, usage statistics, lineage, download links and the files themselves."""

from __future__ import annotations

import mimetypes
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from contentgen.api import now
from contentgen.catalog import ImagePage, JobPage, LoraPage, SignedUrl, Stats, TranscriptPage, pruning
from contentgen.catalog.downloads import DownloadError, choose_artifact, download_name, sign
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
    "version_not_found": 404,
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
        "thumbs/image_1.jpg); default: the version's LoRA model, first image or transcript.txt.",
    ),
]
VersionQuery = Annotated[
    int | None, Query(ge=1, description="The version (default: the latest usable one, or any for `file`).")
]


def _chosen(doc: dict[str, Any], file: str | None, version: int | None = None) -> str:
    try:
        return choose_artifact(doc, file, version)
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
    version: VersionQuery = None,
    expires: Annotated[int, Query(ge=MIN_EXPIRES, le=MAX_EXPIRES, description="Seconds, up to 7 days.")] = (
        DEFAULT_EXPIRES
    ),
) -> dict[str, Any]:
    """A presigned URL for S3 (signed for CONTENTGEN_STORE_PUBLIC_ENDPOINT_URL when set; browsers
    save it as NAME-vN…, e.g. avatar-v3.safetensors), a file:// path for a local store, with its
    expiry."""
    doc = find_record(svc, who, ref)
    uri = _chosen(doc, file, version)
    try:
        signed = sign(svc.store(), uri, expires, download_name=download_name(doc, uri))
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
        200: {
            "description": "The file, from a local store, with a Content-Disposition naming it after "
            "the record and version (avatar-v3.safetensors, portrait-v2-image_1.png)."
        },
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
    version: VersionQuery = None,
    download: Annotated[bool, Query(description="Ask the browser to save it instead of showing it.")] = False,
) -> Response:
    """A local store's file is sent from here; an S3 store's is a redirect to a presigned link
    (valid an hour), so large models do not pass through the API."""
    doc = find_record(svc, who, ref)
    uri = _chosen(doc, file, version)
    store = svc.store()
    name = uri.rsplit("/", 1)[-1]
    saved_as = download_name(doc, uri)
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
            filename=saved_as,
            content_disposition_type="attachment" if download else "inline",
            headers=_CONTENT_HEADERS,
        )
    try:
        signed = sign(store, uri, DEFAULT_EXPIRES, download_name=saved_as if download else None)
    except DownloadError as exc:
        raise ApiError(_DOWNLOAD_STATUS.get(exc.code, 500), exc.code, str(exc)) from None
    except ContentgenError as exc:
        raise ApiError(502, "store_error", str(exc)) from None
    return RedirectResponse(signed.url, status_code=307, headers=_CONTENT_HEADERS)


class RemovalPlan(BaseModel):
    """What removing versions takes away (or took away, once confirmed)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    name: str = Field(description="namespace/name")
    versions: list[int] = Field(description="The versions whose outputs go.")
    kept: list[int] = Field(description="The usable versions that stay.")
    objects: list[str] = Field(description="The store keys that go.")
    used_by: dict[str, int] = Field(
        alias="usedBy", description="LoRA versions: how many image generations were made with each."
    )
    dry_run: bool = Field(alias="dryRun", description="True: nothing was removed (add ?confirm=true).")
    removed: int = Field(description="Objects removed (0 in a dry run).")


ConfirmQuery = Annotated[
    bool, Query(description="Remove for real; without it the answer only says what would go (a dry run).")
]


def _carry_out(svc: Any, plan: pruning.Removal, confirm: bool, who: str) -> dict[str, Any]:
    removed = 0
    if confirm and plan.versions:
        try:
            removed = pruning.erase(svc.store(), plan)
        except ContentgenError as exc:
            raise ApiError(502, "store_error", f"{exc}; the record is unchanged") from None
        pruning.record(svc.catalog, plan, when=now(), by=who)
    return {**plan.summary(), "dryRun": not confirm, "removed": removed}


def _planned(make: Any) -> pruning.Removal:
    try:
        plan: pruning.Removal = make()
    except DownloadError as exc:
        raise ApiError(_DOWNLOAD_STATUS.get(exc.code, 500), exc.code, str(exc)) from None
    except ValueError as exc:
        raise bad_request("keep", str(exc)) from None
    return plan


@router.delete(
    "/{ref:path}/versions/{version}",
    response_model=RemovalPlan,
    summary="Delete one version (a dry run unless ?confirm=true)",
    responses={410: {"description": "That version was deleted already."}},
)
def delete_version(
    ref: RefPath,
    version: Annotated[int, Path(ge=1, description="The version to delete.")],
    svc: ServicesDep,
    who: CallerDep,
    confirm: ConfirmQuery = False,
) -> dict[str, Any]:
    """Removes that version's stored outputs and moves it to the record's deletedVersions (the
    entry stays, for history); the other versions stay usable. Without ?confirm=true, says what
    would go."""
    doc = find_record(svc, who, ref)
    plan = _planned(lambda: pruning.plan_versions(svc.catalog, svc.store(), doc, [version]))
    return _carry_out(svc, plan, confirm, "api")


@router.post("/{ref:path}/prune", response_model=RemovalPlan, summary="Keep the newest N versions")
def prune(
    ref: RefPath,
    svc: ServicesDep,
    who: CallerDep,
    keep: Annotated[int, Query(ge=1, description="How many of the newest usable versions to keep.")],
    confirm: ConfirmQuery = False,
) -> dict[str, Any]:
    """Removes the outputs of every usable version but the newest `keep` (a dry run unless
    ?confirm=true); their entries move to deletedVersions. Nothing else ever removes versions."""
    doc = find_record(svc, who, ref)
    plan = _planned(lambda: pruning.plan_prune(svc.catalog, svc.store(), doc, keep))
    return _carry_out(svc, plan, confirm, "api")
