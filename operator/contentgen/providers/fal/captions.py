"""Dataset captions on fal: a vision-language model describes each training image.

The app is fal's OpenRouter vision router, `openrouter/router/vision`
(https://fal.ai/docs/model-api-reference/vision-api/openrouter-router): input `image_urls`
(a list), `prompt`, `system_prompt`, `model` (required; "charged based on actual token usage"),
`temperature` and `max_tokens`; output `{output: str, usage: {..., cost}}`. Its documented
example is this very use: "Caption this image for a text-to-image model". One request per image,
so every caption belongs to exactly one image and a failure names it.

Each image goes to fal's CDN first (as the training zip does), then through the queue that every
paid request takes (`FalQueue.run`: intent, request id and result checkpointed in that order, a
lost submit looked up in fal's request list, never sent twice). Each image has its own part of
the checkpoint (`billing.Part`, named by the image's index), so a retried pod pays only for the
images it has no result for yet, and a request already submitted is polled again, not sent
again. An image fal could not fetch (an expired upload) is uploaded once more, as the training
zip is. Any image that fails fails the whole call: the pipeline never trains on a partly
captioned dataset.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from contentgen.api.lora import FAL_CAPTION_APP
from contentgen.errors import PermanentError
from contentgen.files import sha256_file
from contentgen.providers.progress import SubProgress

from ..base import Billed, CaptionOutput, CaptionRequest, Checkpoint
from ..billing import Part
from .progress import Meter
from .provider import IMAGE_RESOLVE_WAIT, FalProvider, _fingerprint, _matching
from .queue import Waiting
from .uploads import Upload

log = logging.getLogger(__name__)

APP = FAL_CAPTION_APP
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


def part_name(index: int) -> str:
    """The name of image `index`'s part of the captioning checkpoint."""
    return f"{index:04d}"


class FalCaptioner:
    """`Captioner` on fal. `fal` carries the key, the retry policy, the CDN upload and the queue."""

    name = "fal"

    def __init__(self, fal: FalProvider, *, app: str = APP, model: str = MODEL) -> None:
        self.fal, self.app, self.model = fal, app, model

    def caption_images(
        self,
        request: CaptionRequest,
        work_dir: Path,
        progress: SubProgress,
        checkpoint: Checkpoint,
        billed: Billed | None = None,
    ) -> CaptionOutput:
        meter = Meter(progress)
        share = 100.0 / max(1, len(request.images))
        descriptions: list[str] = []
        cost = 0.0
        for index, path in enumerate(request.images):
            start = index * share
            request_id, result, new = self._caption(
                path, Part(checkpoint, part_name(index)), meter, start, start + share
            )
            if billed is not None:  # fal bills every request that succeeds, whatever it says
                billed(self.app, request_id)
            caption = clean(str(result.get("output") or ""))
            if not caption:
                raise PermanentError(
                    f"fal's {self.app} ({self.model}) returned no caption for dataset image {path.name} "
                    f"(request {request_id})",
                    reason="ProviderJobFailed",
                )
            descriptions.append(caption)
            if new:
                cost += _reported_cost(result)
            meter.at(start + share)
        log.info("captioned %d images on fal's %s (%s)", len(descriptions), self.app, self.model)
        return CaptionOutput(
            descriptions=descriptions,
            model=f"{self.app} {self.model}",
            cost_usd=round(cost, 6),
        )

    def _caption(
        self, path: Path, part: Part, meter: Meter, start: float, end: float
    ) -> tuple[str, dict[str, Any], bool]:
        """(request id, fal's result, whether this attempt made the request) for one image."""
        fingerprint = _fingerprint(self.app, self.model, PROMPT, SYSTEM_PROMPT, MAX_TOKENS, sha256_file(path))
        saved = _matching(part.load(), self.app, fingerprint)
        saved.update(provider=self.name, app=self.app, fingerprint=fingerprint)
        new = not isinstance(saved.get("result"), dict)

        image = Upload(
            self.fal.upload,
            path,
            f"dataset image {path.name}",
            "image_urls",
            saved,
            part.save,
            url_key="image_url",
            count_key="uploads",
        )

        def arguments() -> dict[str, Any]:
            return {
                "image_urls": [image.url()],
                "prompt": PROMPT,
                "system_prompt": SYSTEM_PROMPT,
                "model": self.model,
                "temperature": 0.2,
                "max_tokens": MAX_TOKENS,
            }

        middle = start + (end - start) / 2
        waiting = Waiting(meter.queue(start, middle), meter.running(middle, end), IMAGE_RESOLVE_WAIT)

        request_id, result = self.fal.queue.run(self.app, arguments, saved, part, waiting, heal=image.heal)
        return request_id, result, new


def _reported_cost(result: dict[str, Any]) -> float:
    usage = result.get("usage")
    cost = usage.get("cost") if isinstance(usage, dict) else None
    return float(cost) if isinstance(cost, int | float) else 0.0
