"""Dataset captions on fal: a vision-language model describes each training image.

The app is fal's OpenRouter vision router, `openrouter/router/vision`
(https://fal.ai/docs/model-api-reference/vision-api/openrouter-router): input `image_urls`
(a list), `prompt`, `system_prompt`, `model` (required; billed by the tokens used), `temperature`
and `max_tokens`; output `{output: str, usage: {..., cost}}`. Its documented example is this
very use: "Caption this image for a text-to-image model". One request per image, so every
caption belongs to exactly one image and a failure names it.

Each image goes to fal's CDN first (as the training zip does), then through the same queue,
retry and checkpoint code as training (`FalProvider._run`): the checkpoint keeps, per image
(by its sha256), the CDN URL, the request id once submitted and the caption once received.
A retried pod therefore pays only for the images it has no caption for yet, and a request
already submitted is polled again, not sent again. Any image that fails fails the whole
call: the pipeline never trains on a partly captioned dataset.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from contentgen.errors import PermanentError
from contentgen.files import sha256_file
from contentgen.pipeline.progress import SubProgress

from ..base import CaptionOutput, CaptionRequest, Checkpoint
from .progress import Meter
from .provider import FalProvider, _fingerprint, _matching

log = logging.getLogger(__name__)

APP = "openrouter/router/vision"
MODEL = "google/gemini-2.5-flash"  # the app's documented example model
PROMPT = (
    "Caption this image for training a text-to-image model, in one sentence of at most 40 words. "
    "Describe what is visible: the person's pose, expression, clothing, the framing and angle, "
    "the lighting and the background. Do not name or identify the person; call them 'the person'."
)
# From the app's documented input example.
SYSTEM_PROMPT = (
    "Only answer the question, do not provide any additional information or add any prefix/suffix "
    "other than the answer of the original question. Don't use markdown."
)
MAX_TOKENS = 200
MAX_CHARS = 400


def clean(text: str) -> str:
    """One plain line: no markdown marks, quotes around it, line breaks or runs of spaces; at
    most MAX_CHARS characters, cut at a word."""
    text = re.sub(r"[*_`#]+", "", text)
    text = " ".join(text.split()).strip().strip("\"'“”").strip()
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS].rsplit(" ", 1)[0].rstrip(",;:")
    return text


class _ImageCheckpoint:
    """One image's part of the captioning checkpoint: saving it saves the whole document."""

    def __init__(self, checkpoint: Checkpoint, document: dict[str, Any], key: str) -> None:
        self.checkpoint, self.document, self.key = checkpoint, document, key

    def load(self) -> dict[str, Any]:
        saved: dict[str, Any] = dict(self.document["images"].get(self.key, {}))
        return saved

    def save(self, data: dict[str, Any]) -> None:
        self.document["images"][self.key] = dict(data)
        self.checkpoint.save(self.document)


class FalCaptioner:
    """`Captioner` on fal. `fal` carries the key, the retry policy and the queue handling."""

    name = "fal"

    def __init__(self, fal: FalProvider, *, app: str = APP, model: str = MODEL) -> None:
        self.fal, self.app, self.model = fal, app, model

    def caption_images(
        self, request: CaptionRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> CaptionOutput:
        document = checkpoint.load()
        if document.get("app") != self.app or document.get("model") != self.model:
            document = {"provider": self.name, "app": self.app, "model": self.model, "images": {}}
        meter = Meter(progress)
        share = 100.0 / max(1, len(request.images))
        descriptions, cost = [], 0.0
        for index, path in enumerate(request.images):
            digest = sha256_file(path)
            part = _ImageCheckpoint(checkpoint, document, digest)
            saved = part.load()
            if not saved.get("caption"):
                saved = self._caption(path, digest, saved, part, meter, index * share, share)
                cost += saved.get("cost", 0.0)
            descriptions.append(str(saved["caption"]))
            meter.at((index + 1) * share)
        log.info("captioned %d images on fal's %s (%s)", len(descriptions), self.app, self.model)
        return CaptionOutput(descriptions=descriptions, model=f"{self.app} {self.model}", cost_usd=cost)

    def _caption(
        self,
        path: Path,
        digest: str,
        saved: dict[str, Any],
        part: _ImageCheckpoint,
        meter: Meter,
        start: float,
        share: float,
    ) -> dict[str, Any]:
        fal = self.fal
        fingerprint = _fingerprint(self.app, self.model, PROMPT, SYSTEM_PROMPT, MAX_TOKENS, digest)
        saved = _matching(saved, self.app, fingerprint)
        saved.update(app=self.app, fingerprint=fingerprint)

        def arguments() -> dict[str, Any]:
            image_url = saved.get("image_url")
            if not image_url:
                image_url = fal._call(
                    lambda: fal._fal.upload_file(path, fallback_repository=[]),
                    f"uploading dataset image {path.name} to fal",
                )
                saved.update(image_url=image_url)
                part.save(saved)
            return {
                "image_urls": [image_url],
                "prompt": PROMPT,
                "system_prompt": SYSTEM_PROMPT,
                "model": self.model,
                "temperature": 0.2,
                "max_tokens": MAX_TOKENS,
            }

        slice_ = meter.span(start, start + share)
        request_id, result = fal._run(
            self.app,
            arguments,
            saved,
            part,
            lambda position: slice_(50.0 / (1 + max(position, 0))),
            lambda logs: slice_(75.0),
        )
        caption = clean(str(result.get("output") or ""))
        if not caption:
            raise PermanentError(
                f"fal's {self.app} ({self.model}) returned no caption for dataset image {path.name} "
                f"(request {request_id})",
                reason="ProviderJobFailed",
            )
        usage = result.get("usage")
        cost = usage.get("cost") if isinstance(usage, dict) else None
        saved.update(caption=caption, cost=float(cost) if isinstance(cost, int | float) else 0.0)
        part.save(saved)
        return saved
