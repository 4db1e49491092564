"""POST /api/uploads: a file for a create to name (docs/http-api.md#uploads), as the web UI's create
forms send a LoRA's source video or the picture a video animates. The file is stored once, under a
key of its own in its owner's part of the store (`uploads/{owner}/{id}/{name}`, store/keys.py), and
the answer's `uri` goes where a spec takes a URL: in a cluster an s3:// URI the workers fetch with the
store's credentials (admission takes s3:// URLs), on a laptop (`contentgen api --local`) a file://
URI its local runs read. Its first bytes must be of the type it says it is; pictures and media have
caps of their own."""

from __future__ import annotations

import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from contentgen.api.common import OWNER_PATTERN
from contentgen.api.validation import said
from contentgen.errors import ContentgenError
from contentgen.store import keys

from ..creators import store_failure
from ..deps import CallerDep, ServicesDep
from ..errors import ERROR_RESPONSES, ApiError, Responses, documented_error

router = APIRouter(prefix="/api", tags=["create"])
MIB = 1024 * 1024


@dataclass(frozen=True)
class Media:
    what: str  # picture, video, audio
    suffix: str
    formats: tuple[str, ...]  # what its first bytes may show (sniffed)
    cap: int  # bytes


PICTURE_CAP = 20 * MIB
MEDIA_CAP = 1024 * MIB
# What may be uploaded, by content type: what it is, the key's suffix, how its first bytes begin.
TYPES: dict[str, Media] = {
    "image/png": Media("picture", ".png", ("png",), PICTURE_CAP),
    "image/jpeg": Media("picture", ".jpg", ("jpeg",), PICTURE_CAP),
    "image/webp": Media("picture", ".webp", ("webp",), PICTURE_CAP),
    "video/mp4": Media("video", ".mp4", ("iso",), MEDIA_CAP),
    "video/quicktime": Media("video", ".mov", ("iso",), MEDIA_CAP),
    "video/webm": Media("video", ".webm", ("ebml",), MEDIA_CAP),
    "video/x-matroska": Media("video", ".mkv", ("ebml",), MEDIA_CAP),
    "audio/mpeg": Media("audio", ".mp3", ("mp3",), MEDIA_CAP),
    "audio/mp4": Media("audio", ".m4a", ("iso",), MEDIA_CAP),
    "audio/wav": Media("audio", ".wav", ("wav",), MEDIA_CAP),
    "audio/ogg": Media("audio", ".ogg", ("ogg",), MEDIA_CAP),
}
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")  # an MP4/MOV/M4A file's first box


def sniffed(first: bytes) -> str:
    """The format a file's first bytes show, or "" for none of those taken."""
    if first.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if first.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if first[:4] == b"RIFF" and first[8:12] == b"WEBP":
        return "webp"
    if first[:4] == b"RIFF" and first[8:12] == b"WAVE":
        return "wav"
    if first[4:8] in _ISO_BOXES:
        return "iso"
    if first.startswith(b"\x1a\x45\xdf\xa3"):
        return "ebml"
    if first.startswith(b"ID3") or (len(first) > 1 and first[0] == 0xFF and first[1] & 0xE0 == 0xE0):
        return "mp3"
    if first.startswith(b"OggS"):
        return "ogg"
    return ""


NAME_PATTERN = said(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
    "a file name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 100 "
    "characters (e.g. lighthouse.png)",
)


class Uploaded(BaseModel):
    """A file stored for its owner's specs to name."""

    uri: str = Field(
        description="Where it is: s3://BUCKET/KEY in a cluster, file:///PATH on a laptop; what a spec's "
        "source.url or image.url takes."
    )
    key: str = Field(description="Its key in the store: uploads/OWNER/ID/NAME, written once.")
    owner: str
    content_type: str = Field(alias="contentType")
    size_bytes: int = Field(alias="sizeBytes")
    sha256: str
    what: str = Field(description="picture, video or audio: what its type is.")

    model_config = {"populate_by_name": True}


def _caps() -> str:
    return (
        f"a picture (image/png, image/jpeg, image/webp) at most {PICTURE_CAP // MIB} MiB; a video "
        "(video/mp4, video/quicktime, video/webm, video/x-matroska) or audio (audio/mpeg, audio/mp4, "
        f"audio/wav, audio/ogg) at most {MEDIA_CAP // MIB} MiB"
    )


UPLOAD_RESPONSES: Responses = {
    201: {"model": Uploaded, "description": "Stored, once, under a key of its own."},
    400: documented_error("A bad parameter (owner, name), named in the message."),
    401: ERROR_RESPONSES[401],
    403: documented_error(
        "The caller does not act for that owner (code forbidden), or this API does not create (code "
        "create_disabled: uploads are for creates)."
    ),
    413: documented_error(f"Larger than its type may be (code too_large): {_caps()}."),
    415: documented_error(
        "A type not taken, or content whose first bytes are not of the type it says (code "
        "unsupported_media_type)."
    ),
    502: documented_error("The store failed or refused (code store_error); nothing was stored."),
    503: ERROR_RESPONSES[503],
}


@router.post(
    "/uploads",
    response_model=Uploaded,
    response_model_by_alias=True,
    status_code=201,
    summary="Upload a source video, audio or a picture for a create to name",
    responses=UPLOAD_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": f"The file's bytes, as they are (no form encoding): {_caps()}.",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in TYPES},
        }
    },
)
async def upload(
    request: Request,
    response: Response,
    svc: ServicesDep,
    who: CallerDep,
    owner: Annotated[
        str | None,
        Query(max_length=63, pattern=OWNER_PATTERN, description="Whose it is (default: the caller's)."),
    ] = None,
    name: Annotated[
        str | None,
        Query(
            max_length=100,
            pattern=NAME_PATTERN,
            description="Its file name, the key's last part (default: upload and its type's extension).",
        ),
    ] = None,
) -> dict[str, Any]:
    """Stores the request's body for `owner`: in the cluster's bucket (an s3:// URI, which its workers
    fetch and admission takes) or a laptop's store (a file:// URI, which its local runs read). Put the
    answer's `uri` in a spec's source.url (a LoraTraining's video, a Transcription's audio) or
    image.url (the picture a VideoGeneration animates)."""
    if svc.creator is None:
        raise ApiError(
            403, "create_disabled", "this API does not create resources, and uploads are for creates"
        )
    whose = owner or who.owner
    if not who.may_act_for(whose):
        raise ApiError(403, "forbidden", f"{who.user} does not act for owner {whose!r}")
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    media = TYPES.get(content_type)
    if media is None:
        raise ApiError(
            415, "unsupported_media_type", f"Content-Type {content_type or 'none'}: upload {_caps()}"
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > media.cap:
        raise _too_large(media)
    with tempfile.TemporaryDirectory(prefix="contentgen-upload-") as scratch:
        path = Path(scratch) / "upload"
        await _receive(request, path, media)
        key = keys.upload(whose, uuid.uuid4().hex, name or f"upload{media.suffix}")
        try:
            stored = await run_in_threadpool(svc.store().put_once_file, key, path, content_type)
        except (ContentgenError, OSError) as exc:
            raise ApiError(502, "store_error", f"{store_failure(exc)}; nothing was stored") from None
    response.status_code = 201
    return {
        "uri": stored.uri,
        "key": key,
        "owner": whose,
        "contentType": content_type,
        "sizeBytes": stored.size_bytes,
        "sha256": stored.sha256,
        "what": media.what,
    }


async def _receive(request: Request, path: Path, media: Media) -> None:
    """The body written to `path`, refused (413) past its cap and (415) where its first bytes are
    not of its type."""
    size, first = 0, b""
    with path.open("wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > media.cap:
                raise _too_large(media)
            if len(first) < 16:
                first = (first + chunk)[:16]
            out.write(chunk)
    if size == 0:
        raise ApiError(
            415, "unsupported_media_type", "the upload is empty: send the file's bytes as the body"
        )
    if sniffed(first) not in media.formats:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the file is not {_article(media.what)} of type {request.headers.get('content-type')}: its "
            "first bytes are not that format's",
        )


def _too_large(media: Media) -> ApiError:
    cap = f"{media.cap // MIB} MiB"
    return ApiError(413, "too_large", f"the file is larger than {_article(media.what)} may be here ({cap})")


def _article(what: str) -> str:
    return f"an {what}" if re.match(r"[aeiou]", what) else f"a {what}"
