"""What a training's drawer of the watch's pictures (a family's: flux_live.py, video_live.py) draws:
only the LoRA of the checkpoint it has just stored (or none, the baseline), and only the prompts
it encoded before its text encoders left."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlparse

from contentgen.errors import InvalidInput
from contentgen.providers.base import ImageRequest


def asked(request: ImageRequest, lora_uri: str, encoded: Mapping[str, Any]) -> list[str]:
    """The LoRA `request` asks for (its URL without a presigned query; [] for none), refused in
    one line where a training cannot draw it."""
    wanted = [lora.url.split("?", 1)[0] for lora in request.loras]
    held = not wanted or (len(wanted) == 1 and names(wanted[0], lora_uri))
    if not held or any(lora.scale != 1 for lora in request.loras):
        raise InvalidInput(
            f"a training draws only with the LoRA of the checkpoint it has just stored ({_short(lora_uri)}) "
            f"at scale 1, or none, not {', '.join(_short(w) for w in wanted)}"
        )
    if request.prompt not in encoded:
        raise InvalidInput(
            f"a training draws only the prompts it encoded before training: {request.prompt!r}"
        )
    return wanted


def names(url: str, uri: str) -> bool:
    """Whether `url` (what the watch hands a provider: the stored URI itself, or a presigned link
    to it, path-style or virtual-hosted) names the object stored at `uri` (pure)."""
    url, uri = url.split("?", 1)[0], uri.split("?", 1)[0]
    if not uri or url == uri:
        return bool(uri)
    stored, link = urlparse(uri), urlparse(url)
    key = unquote(stored.path).lstrip("/")
    if stored.scheme != "s3" or link.scheme not in ("http", "https") or not key:
        return False
    path = unquote(link.path)
    virtual = (link.hostname or "").startswith(f"{stored.netloc}.")
    return path == f"/{stored.netloc}/{key}" or (virtual and path == f"/{key}")


def _short(uri: str) -> str:
    """A LoRA's address in a few words: its scheme and its last folders (no query)."""
    if not uri:
        return "none stored yet"
    scheme, _, rest = uri.split("?", 1)[0].rpartition("://")
    return f"{scheme}://…/{'/'.join(rest.split('/')[-3:])}"
