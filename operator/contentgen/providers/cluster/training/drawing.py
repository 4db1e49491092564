"""What a training's drawer of the watch's pictures (a family's: flux_live.py, wan_live.py) draws:
only the LoRA of the checkpoint it has just stored (or none, the baseline), and only the prompts
it encoded before its text encoders left."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contentgen.errors import InvalidInput
from contentgen.providers.base import ImageRequest


def asked(request: ImageRequest, lora_uri: str, encoded: Mapping[str, Any]) -> list[str]:
    """The LoRA `request` asks for (its URL without a presigned query; [] for none), refused in
    one line where a training cannot draw it."""
    wanted = [lora.url.split("?", 1)[0] for lora in request.loras]
    if wanted not in ([], [lora_uri.split("?", 1)[0]]) or any(lora.scale != 1 for lora in request.loras):
        raise InvalidInput(
            "a training draws only with the LoRA of the checkpoint it has just stored (at scale 1), or none"
        )
    if request.prompt not in encoded:
        raise InvalidInput(
            f"a training draws only the prompts it encoded before training: {request.prompt!r}"
        )
    return wanted
