"""Assets by kind, search, usage statistics, lineage, download links and the files themselves."""

from __future__ import annotations

import inspect
import mimetypes
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from contentgen.api import now
from contentgen.api.kinds.image_generation import KIND as IMAGE_GENERATION
from contentgen.api.kinds.lora_training import KIND as LORA_TRAINING
from contentgen.api.kinds.transcription import KIND as TRANSCRIPTION
from contentgen.catalog import ImagePage, LoraPage, SignedUrl, Stats, TranscriptPage, pruning
from contentgen.catalog.downloads import DownloadError, choose_artifact, download_name, sign
from contentgen.catalog.kinds import has_transcript, transcript_kinds
from contentgen.catalog.lineage import Lineage, lineage
from contentgen.catalog.params import DEFAULT_EXPIRES, MAX_EXPIRES, MIN_EXPIRES
from contentgen.catalog.queries import SORT_HELP, search_words
from contentgen.catalog.search import RELEVANCE, SearchPage, search_page
from contentgen.errors import ContentgenError
from contentgen.store import LocalStore, ObjectStore

from ..deps import (
    SEARCH_PATTERN,
    CallerDep,
    ListQuery,
    ListQueryDep,
    OwnerQuery,
    RefPath,
    ServicesDep,
    TypeQuery,
    counted_download,
    find_readable,
    find_record,
    list_query,
    matches,
    owner_scope,
    record_scope,
    stored_spec,
)
from ..errors import ERROR_RESPONSES, ApiError, bad_request, documented_error
from ..kinds import seeded
from ..ranges import PartOfFile, RangeHeader, Unsatisfiable, WholeFile, wanted
from .common import page_of

router = APIRouter(prefix="/api/assets", tags=["assets"], responses=ERROR_RESPONSES)

# Why a download has no link, as HTTP statuses.
_DOWNLOAD_STATUS = {
    "deleted": 410,
    "no_outputs": 409,
    "file_not_found": 404,
    "artifact_missing": 404,
    "store_mismatch": 409,  # the outputs are in another store than this server's CONTENTGEN_STORE
    "version_not_found": 404,
}


def _refused(exc: DownloadError) -> ApiError:
    """Why there is no link or file, as the API answers it (_DOWNLOAD_STATUS)."""
    return ApiError(_DOWNLOAD_STATUS.get(exc.code, 500), exc.code, str(exc))


def _signed(store: ObjectStore, uri: str, expires: int, saved_as: str | None = None) -> SignedUrl:
    """A time-limited link to `uri` (saved as `saved_as`); the store's refusal or failure as the API
    answers it."""
    try:
        return sign(store, uri, expires, download_name=saved_as)
    except DownloadError as exc:
        raise _refused(exc) from None
    except ContentgenError as exc:
        raise ApiError(502, "store_error", str(exc)) from None


# Another owner's record shared with the caller for use only (docs/sharing.md): no files.
_USE_ONLY = documented_error(
    "Another owner's record shared with the caller for use only (code use_only): its files "
    "are not given; or ?owner= of an owner the caller does not act for."
)
# What a route that reads an output answers when it cannot.
_MISMATCH = "or they are in another store than this server's (code store_mismatch: the message names it)"
_STORE_ERROR = documented_error(
    "The store failed or refused the request (code store_error: the message says what "
    "to fix, e.g. a bucket that does not exist)."
)


@router.get("/loras", response_model=LoraPage, summary="List LoRAs")
def loras(svc: ServicesDep, query: ListQueryDep) -> dict[str, Any]:
    """LoraTraining records; `latestModelUri` is what an ImageGeneration's spec.loras[].url takes."""
    return page_of(svc.catalog.find(query.with_type(LORA_TRAINING.catalog_type), query.sort, query.page))


@router.get("/images", response_model=ImagePage, summary="List image generations")
def images(svc: ServicesDep, query: ListQueryDep) -> dict[str, Any]:
    return page_of(svc.catalog.find(query.with_type(IMAGE_GENERATION.catalog_type), query.sort, query.page))


@router.get("/transcripts", response_model=TranscriptPage, summary="List transcriptions")
def transcripts(svc: ServicesDep, query: ListQueryDep) -> dict[str, Any]:
    return page_of(svc.catalog.find(query.with_type(TRANSCRIPTION.catalog_type), query.sort, query.page))


SearchSortField = Literal[
    "relevance", "createdAt", "updatedAt", "completedAt", "name", "status", "type", "owner", "totalBytes"
]


def _search_query(**params: Any) -> tuple[ListQuery, bool]:
    """list_query's parameters, with `sort` that also takes (and defaults to) relevance."""
    ranked = params["sort"] == RELEVANCE
    return list_query(**{**params, "sort": "createdAt" if ranked else params["sort"]}), ranked


_LIST = inspect.signature(list_query, eval_str=True)
_search_query.__signature__ = _LIST.replace(  # type: ignore[attr-defined]
    parameters=[
        p.replace(
            annotation=Annotated[
                SearchSortField,
                Query(
                    description="relevance (best first: the default), or a field: " + SORT_HELP["sort"][9:]
                ),
            ],
            default=RELEVANCE,
        )
        if p.name == "sort"
        else p
        for p in _LIST.parameters.values()
    ],
    return_annotation=tuple[ListQuery, bool],
)


@router.get("/search", response_model=SearchPage, summary="Search records")
def search(
    svc: ServicesDep,
    query: Annotated[tuple[ListQuery, bool], Depends(_search_query)],
    q: Annotated[
        str,
        Query(
            max_length=500,
            description='Words and "quoted phrases" that must all occur, as whole words in any case, in '
            "the name, tags, description, prompt, trigger word or transcript.",
            json_schema_extra={"pattern": SEARCH_PATTERN},
        ),
    ],
    type_: TypeQuery = None,
) -> dict[str, Any]:
    """Best first: words in a name, tag or trigger word weigh most, then description and prompt,
    then transcripts. `hits` says, for each record, where the words occur, with snippets of
    transcripts at their time in the recording and a link that plays from there."""
    listed, ranked = query
    try:
        search_words(q)
        if not matches(SEARCH_PATTERN, q):
            raise ValueError("control characters are not searched for: give 1 to 20 words")
        result = svc.catalog.search(q, listed.with_type(type_), None if ranked else listed.sort, listed.page)
    except ValueError as exc:
        raise bad_request("q", str(exc)) from None
    return search_page(result)


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
    doc = find_readable(svc, who, ref, type_)
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
        raise _refused(exc) from None


@router.get(
    "/{ref:path}/download",
    response_model=SignedUrl,
    summary="A time-limited download link",
    responses={
        403: _USE_ONLY,
        409: {"description": f"No outputs yet, {_MISMATCH}."},
        410: {"description": "The assets were deleted."},
        502: _STORE_ERROR,
    },
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
    expiry. Counted in the record's usage (GET .../usage); a record shared for use only answers 403."""
    doc = find_readable(svc, who, ref, download=True)
    uri = _chosen(doc, file, version)
    signed = _signed(svc.store(), uri, expires, download_name(doc, uri))
    counted_download(svc, doc, uri)
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
            "the record and version (avatar-v3.safetensors, portrait-v2-image_1.png), and "
            "Accept-Ranges: bytes."
        },
        206: {
            "description": "The one byte range asked for (Range), with Content-Range: bytes first-last/size."
        },
        307: {"description": "To a presigned URL of an S3 store (S3 serves Range itself)."},
        403: _USE_ONLY,
        409: {"description": f"No outputs yet, {_MISMATCH}."},
        410: {"description": "The assets were deleted."},
        416: documented_error(
            "The range starts past the end of the file (code range_not_satisfiable), "
            "with Content-Range: bytes */size."
        ),
        502: _STORE_ERROR,
    },
)
def content(
    ref: RefPath,
    svc: ServicesDep,
    who: CallerDep,
    file: FileQuery = None,
    version: VersionQuery = None,
    download: Annotated[bool, Query(description="Ask the browser to save it instead of showing it.")] = False,
    range_: RangeHeader = None,
) -> Response:
    """A local store's file is sent from here; an S3 store's is a redirect to a presigned link
    (valid an hour), so large models do not pass through the API. With ?download=true it counts as
    a download in the record's usage."""
    doc = find_readable(svc, who, ref, download=True)
    uri = _chosen(doc, file, version)
    if download:
        counted_download(svc, doc, uri)
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
        return _ranged(path, range_, media_type=media, filename=saved_as, attach=download)
    signed = _signed(store, uri, DEFAULT_EXPIRES, saved_as if download else None)
    return RedirectResponse(signed.url, status_code=307, headers=_CONTENT_HEADERS)


def _ranged(path: Any, asked: str | None, *, media_type: str, filename: str, attach: bool) -> Response:
    part = wanted(asked, path.stat().st_size)
    if isinstance(part, Unsatisfiable):
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"Range: {asked} starts past the end of the {part.size}-byte file; ask for bytes=0-"
            f"{max(part.size - 1, 0)} or less",
            headers={"Content-Range": f"bytes */{part.size}"},
        )
    kwargs: dict[str, Any] = {
        "media_type": media_type,
        "filename": filename,
        "content_disposition_type": "attachment" if attach else "inline",
        "headers": {**_CONTENT_HEADERS, "Accept-Ranges": "bytes"},
    }
    return PartOfFile(path, part=part, **kwargs) if part else WholeFile(path, **kwargs)


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
        raise _refused(exc) from None
    except ValueError as exc:
        raise bad_request("keep", str(exc)) from None
    except ContentgenError as exc:
        raise ApiError(502, "store_error", f"{exc}; the record is unchanged") from None
    return plan


@router.delete(
    "/{ref:path}/versions/{version}",
    response_model=RemovalPlan,
    summary="Delete one version (a dry run unless ?confirm=true)",
    responses={410: {"description": "That version was deleted already."}, 502: _STORE_ERROR},
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


@router.post(
    "/{ref:path}/prune",
    response_model=RemovalPlan,
    summary="Keep the newest N versions",
    responses={502: _STORE_ERROR},
)
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


# --- transcripts as timed text, a record as a manifest, a transcript's source ----------------------


class TranscriptSegment(BaseModel):
    start: float = Field(description="Seconds into the audio.")
    end: float
    speaker: str | None = Field(description="The speaker's label (A, B, ...) with speakerLabels; else null.")
    text: str


class TimedTranscript(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    version: int
    duration_seconds: float = Field(alias="durationSeconds")
    speakers: list[str]
    placeholder: bool = Field(description="True when the offline provider wrote it (not a transcript).")
    timed: bool = Field(description="False when the provider gave no word times (the text spans the audio).")
    segments: list[TranscriptSegment] = Field(description="Speaker turns, cut at sentence ends when long.")


TranscriptFormat = Literal["json", "srt", "vtt", "txt"]


@router.get(
    "/{ref:path}/transcript",
    summary="A transcript with timestamps and speakers: segments (JSON), SRT, WebVTT or timed text",
    response_model=TimedTranscript,
    responses={
        200: {
            "description": "format json: the segments; srt, vtt, txt: the file (with ?download=true as an "
            "attachment named NAME-vN.srt ...).",
            "content": {
                "application/x-subrip": {"schema": {"type": "string"}},
                "text/vtt": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        },
        409: {
            "description": "No transcript yet, the record is not a Transcription (code not_applicable), "
            f"{_MISMATCH}."
        },
        410: {"description": "That version's outputs were deleted."},
        502: _STORE_ERROR,
    },
)
def transcript(
    ref: RefPath,
    svc: ServicesDep,
    who: CallerDep,
    format: Annotated[
        TranscriptFormat, Query(description="json (segments), srt, vtt (subtitles) or txt (timed text).")
    ] = "json",
    version: VersionQuery = None,
    download: Annotated[bool, Query(description="Ask the browser to save it.")] = False,
) -> Any:
    """Made from the provider's response kept in the store (transcript.json); no provider is asked.
    Subtitle cues hold at most two lines of 42 characters and 7 seconds, a new one per speaker."""
    from contentgen.catalog.downloads import transcript_of
    from contentgen.transcripts import MEDIA_TYPES, as_json, export, read

    doc = find_record(svc, who, ref)
    if not has_transcript(doc.get("kind")):
        raise ApiError(
            409, "not_applicable", f"ref: {doc['_id']} is a {doc.get('kind')}, not a {transcript_kinds()}"
        )
    try:
        response, duration, number = transcript_of(doc, svc.store(), version)
    except DownloadError as exc:
        raise _refused(exc) from None
    except ContentgenError as exc:
        raise ApiError(502, "store_error", str(exc)) from None
    if format == "json":
        return {"id": doc["_id"], "version": number, **as_json(read(response, duration))}
    text = export(response, format, duration)
    headers = {"X-Content-Type-Options": "nosniff"}
    if download:
        headers["Content-Disposition"] = (
            f'attachment; filename="{doc.get("name") or doc["_id"]}-v{number}.{format}"'
        )
    return Response(text, media_type=MEDIA_TYPES[format], headers=headers)


@router.get(
    "/{ref:path}/manifest",
    summary="A version's settings as a manifest kubectl applies as it is",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/yaml": {
                    "schema": {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"]}
                }
            },
            "description": "The manifest (YAML).",
        },
        404: {"description": "No such record, or no such version."},
        409: {"description": "A seed for a record without one (code not_applicable)."},
        502: _STORE_ERROR,
    },
)
def manifest(
    ref: RefPath,
    svc: ServicesDep,
    who: CallerDep,
    version: VersionQuery = None,
    fresh: Annotated[
        bool,
        Query(
            description="A new resource (the record's name with a random suffix); default: the record's own "
            "name, so applying it where the resource exists runs the settings as a new version of it."
        ),
    ] = False,
    seed: Annotated[
        int | None, Query(ge=0, le=4294967295, description="ImageGeneration, VideoGeneration: this seed.")
    ] = None,
) -> Response:
    """apiVersion, kind, metadata (name, namespace) and the spec the version ran, without the
    fields that say what the defaults say."""
    from ..manifests import manifest_yaml

    doc = find_record(svc, who, ref)
    if seed is not None and not seeded(doc.get("kind")):
        raise ApiError(409, "not_applicable", f"seed: a {doc.get('kind')} has no seed")
    try:
        text = manifest_yaml(doc, version, fresh_name=fresh, seed=seed, stored=stored_spec(svc, doc))
    except ValueError as exc:
        raise ApiError(404, "version_not_found", str(exc)) from None
    except ContentgenError as exc:  # an older version's spec is read from the store
        raise ApiError(502, "store_error", str(exc)) from None
    return Response(text, media_type="application/yaml", headers={"X-Content-Type-Options": "nosniff"})


_MEDIA = {
    ".mp3",
    ".m4a",
    ".aac",
    ".wav",
    ".ogg",
    ".oga",
    ".opus",
    ".flac",
    ".mp4",
    ".m4v",
    ".mov",
    ".webm",
    ".mkv",
}


@router.get(
    "/{ref:path}/source",
    summary="The audio or video a transcription or LoRA was made from (for the web UI's player)",
    response_class=Response,
    responses={
        200: {
            "description": "The file (a local source, on a laptop: contentgen api --local); ranges served."
        },
        307: {"description": "To its http(s) URL, or to a presigned link when it is in this API's store."},
        404: {"description": "No source the API can hand out (another bucket, a local file elsewhere)."},
        502: _STORE_ERROR,
    },
)
def source(ref: RefPath, svc: ServicesDep, who: CallerDep, version: VersionQuery = None) -> Response:
    """The version's source URL: an http(s) one is redirected to; one in the API's store is
    presigned; a local file only by a laptop's API (auth local), and only a media file."""
    from contentgen.api import is_local_path

    doc = find_record(svc, who, ref)
    url = _source_url(doc, version)
    if url.startswith(("http://", "https://")):
        return RedirectResponse(url, status_code=307)
    if url.startswith("s3://"):
        return RedirectResponse(_presigned_source(svc.store(), url), status_code=307)
    if is_local_path(url) and svc.identities.local and (path := _local_media(url)) is not None:
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media, headers=_CONTENT_HEADERS)
    raise ApiError(404, "not_found", f"the source {url} cannot be played from here")


def _source_url(doc: dict[str, Any], version: int | None) -> str:
    """The source URL of the version asked for, else of the newest, else of the record; 404 for none."""
    from contentgen.catalog.downloads import version_of

    try:
        chosen = version_of(doc, version) if version is not None else None
    except DownloadError as exc:
        raise _refused(exc) from None
    versions = doc.get("versions") or []
    picked = chosen or (versions[-1] if versions else {})
    url = str(picked.get("sourceUrl") or doc.get("sourceUrl") or "")
    if not url:
        raise ApiError(404, "not_found", f"{doc['_id']} has no source")
    return url


def _presigned_source(store: ObjectStore, url: str) -> str:
    """A time-limited link to `url` in the API's store; 404 for a URL of another store."""
    if not store.owns(url):
        raise ApiError(
            404, "not_found", f"the source {url} is not in this API's store: it cannot be played here"
        )
    return _signed(store, url, DEFAULT_EXPIRES).url


def _local_media(url: str) -> FilePath | None:
    """The media file a local path or file:// URL names, if it is one."""
    from urllib.parse import unquote, urlparse

    path = FilePath(unquote(urlparse(url).path) if url.startswith("file://") else url).expanduser()
    return path if path.suffix.lower() in _MEDIA and path.is_file() else None
