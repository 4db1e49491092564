"""fal's video apps (api/video/table.py's MODELS, provider fal): one paid request per video, made once
through the queue (queue.py), the video downloaded from fal's CDN.

What each app is sent is what its page documents (the `source` of its MODELS entry):

    Wan 2.2 A14B     prompt, num_frames, frames_per_second, resolution, aspect_ratio, seed,
                     negative_prompt when set, loras [{path, scale}] on the text-to-video/lora app
                     (a Wan 2.2 pair as two, transformer "high" and "low": lora_entries),
                     image_url on image-to-video; num_interpolated_frames 0: fal's default puts
                     interpolated frames between the generated ones and multiplies the frame rate
                     (adjust_fps_for_interpolation), so the video would not be the frames asked
    LTX-Video 13B    prompt, num_frames, resolution, aspect_ratio, seed, negative_prompt when set,
                     loras [{path, scale}], image_url on image-to-video; its frame rate is its own
                     (24, the only one the table admits), so none is sent
    Kling 2.5 Turbo  prompt, duration ("5" or "10", a string), negative_prompt when set;
                     aspect_ratio on text-to-video, image_url on image-to-video

The picture to animate is uploaded to fal's CDN (not billed) rather than sent as the store's
presigned link: a store inside the cluster is not reachable from fal, and fal keeps what it is sent.
The upload is checkpointed with the request, so a retried pod neither uploads nor submits again;
when fal reports that it could not fetch the picture, it is uploaded once more.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contentgen.api.video import MODELS, VideoModelInfo
from contentgen.errors import InvalidInput, PermanentError
from contentgen.files import sha256_file
from contentgen.providers.progress import SubProgress

from ..base import Checkpoint, LoraWeights, VideoOutput, VideoRequest
from ..retry import bad_response, redact
from .outputs import MiB
from .progress import Meter
from .provider import FalProvider, _fingerprint, _matching
from .queue import JobFailure, Waiting
from .uploads import Upload

log = logging.getLogger(__name__)

# How long a lost submit is looked for in fal's request list: a video ends within the half hour.
VIDEO_RESOLVE_WAIT = 1800.0
VIDEO_BYTES = 1024 * MiB  # ten seconds of 1080p is tens of MiB; more is not a video of ours
# The container formats fal's apps deliver, by their first bytes.
_FTYP = b"ftyp"
_WEBM = b"\x1a\x45\xdf\xa3"


class FalVideoGenerator:
    """`VideoGenerator` on fal's apps; the queue, uploads and downloads are `FalProvider`'s."""

    name = "fal"

    def __init__(self, fal: FalProvider, *, video_bytes: int = VIDEO_BYTES) -> None:
        self._fal = fal
        self._video_bytes = video_bytes

    def generate_video(
        self, request: VideoRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> VideoOutput:
        model, app = _model(request), request.app
        image_mode = _animates(model, request)
        base = arguments(model, request, image=image_mode)
        meter = Meter(progress)
        # without query strings (presigned LoRA links are signed anew by every attempt); the
        # picture by its bytes, as it is uploaded rather than linked
        picture = sha256_file(request.image_path) if image_mode and request.image_path else ""
        fingerprint = _fingerprint(app, redact(json.dumps(base, sort_keys=True)), picture)
        saved = _matching(checkpoint.load(), app, fingerprint)
        saved.update(provider=self.name, app=app, fingerprint=fingerprint)
        sent = _Sent(base, meter, _picture(self._fal, request, saved, checkpoint) if image_mode else None)
        waiting = Waiting(meter.queue(2, 10), meter.running(10, 85), VIDEO_RESOLVE_WAIT)
        request_id, result = self._fal.queue.run(
            app, sent.submitted, saved, checkpoint, waiting, heal=sent.heal
        )
        path, content_type = self._download(result, work_dir, app, request_id, checkpoint, meter)
        seed = result.get("seed")
        meter.at(100)
        return VideoOutput(
            path=path,
            content_type=content_type,
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else request.seed,
            request_id=request_id,
        )

    def _download(
        self,
        result: dict[str, Any],
        work_dir: Path,
        app: str,
        request_id: str,
        checkpoint: Checkpoint,
        meter: Meter,
    ) -> tuple[Path, str]:
        """The paid video, downloaded and named by its container; (its path, its content type)."""
        where = getattr(checkpoint, "location", "") or "the run's checkpoint"
        video = result.get("video")
        if not isinstance(video, dict) or not video.get("url"):
            raise bad_response("fal", f"request {request_id} on {app}", "a result without a video")
        part = work_dir / "video.part"
        self._fal.download(
            video,
            part,
            limit=self._video_bytes,
            what="the video",
            meter=meter.span(85, 100),
            paid=(app, request_id, where),
        )
        content_type, suffix = _container(part, app, request_id, where)
        path = part.with_suffix(suffix)
        part.replace(path)
        return path, content_type


@dataclass
class _Sent:
    """What a request sends: its arguments, and for an image-to-video request the picture's URL
    (the picture uploaded to fal's CDN before it is submitted, and once more where fal could not
    fetch it: `Upload`)."""

    base: dict[str, Any]
    meter: Meter
    picture: Upload | None = None

    def submitted(self) -> dict[str, Any]:
        sent = dict(self.base)
        if self.picture is not None:
            sent["image_url"] = self.picture.url()
        self.meter.at(2)
        return sent

    def heal(self, failure: JobFailure) -> bool:
        return self.picture is not None and self.picture.heal(failure)


def _picture(
    fal: FalProvider, request: VideoRequest, saved: dict[str, Any], checkpoint: Checkpoint
) -> Upload:
    """The picture an image-to-video request animates, as fal is sent it."""
    assert request.image_path is not None  # _animates refused the request without one
    return Upload(
        fal.upload,
        request.image_path,
        "the picture to animate",
        "image_url",
        saved,
        checkpoint.save,
        url_key="image_url",
        count_key="image_uploads",
    )


def arguments(model: VideoModelInfo, request: VideoRequest, *, image: bool) -> dict[str, Any]:
    """What `request` is sent to `model`'s app as, without the picture's URL (see the module)."""
    if request.loras and not model.loras:
        raise InvalidInput(f"loras: fal's {model.name} takes none; remove them or choose a model that does")
    urls = [url for lora in request.loras for url in (lora.url, lora.low_noise_url) if url]
    if any(not url.startswith(("https://", "http://")) for url in urls):
        raise InvalidInput(
            "loras: fal can only fetch LoRA weights from http(s) URLs; a local store's file:// links "
            "work with the offline and cluster providers only"
        )
    args: dict[str, Any] = {"prompt": request.prompt}
    if request.negative_prompt:
        args["negative_prompt"] = request.negative_prompt
    if model.name.startswith("kling"):
        seconds = request.duration_seconds or request.frames / max(1, request.fps)
        duration = min(model.durations, key=lambda d: abs(d - seconds))
        if abs(duration - seconds) > 0.5:
            raise InvalidInput(
                f"durationSeconds: {model.name} makes videos of {' or '.join(map(str, model.durations))} "
                f"seconds, not {seconds:g}"
            )
        args["duration"] = str(duration)  # documented as a string enum
        if not image:
            args["aspect_ratio"] = request.aspect_ratio
        return args
    args["num_frames"] = request.frames
    args["resolution"] = request.resolution
    args["aspect_ratio"] = request.aspect_ratio
    if request.seed is not None:
        args["seed"] = request.seed
    if model.name.startswith("wan"):
        args["frames_per_second"] = request.fps
        args["num_interpolated_frames"] = 0
    if model.loras:
        args["loras"] = [entry for lora in request.loras for entry in lora_entries(lora)]
    return args


def lora_entries(lora: LoraWeights) -> list[dict[str, Any]]:
    """A LoRA as fal's apps take it ({path, scale}); a Wan 2.2 pair as two, each into its expert
    (LoRAWeight.transformer: "high" loads into the high-noise transformer, "low" into the low-noise
    one; unset, fal's default, "high": https://fal.ai/models/fal-ai/wan/v2.7/pro/edit/api#type-LoRAWeight,
    the type WanLoRAT2VRequest.loras lists)."""
    if not lora.low_noise_url:
        return [{"path": lora.url, "scale": lora.scale}]
    return [
        {"path": lora.url, "scale": lora.scale, "transformer": "high"},
        {"path": lora.low_noise_url, "scale": lora.scale, "transformer": "low"},
    ]


def _model(request: VideoRequest) -> VideoModelInfo:
    model = MODELS.get(request.model)
    fal_models = sorted(name for name, m in MODELS.items() if m.provider == "fal")
    if model is None or model.provider != "fal":
        raise InvalidInput(
            f"model: fal runs {', '.join(fal_models)}, not {request.model}; choose one of them"
        )
    return model


def _animates(model: VideoModelInfo, request: VideoRequest) -> bool:
    """Whether the request's app animates a picture (the model's image-to-video app); refused where
    the app is not one of the model's, or animates a picture the request does not give."""
    app = request.app
    if app not in model.apps.values():
        raise InvalidInput(f"model {model.name} runs on fal's {' or '.join(model.apps.values())}, not {app}")
    image_mode = app == model.apps.get("image")
    if image_mode and request.image_path is None:
        raise InvalidInput(f"fal's {app} animates a picture: set image or imageRef")
    return image_mode


def _container(path: Path, app: str, request_id: str, where: str) -> tuple[str, str]:
    """(content type, suffix) from the file's first bytes: an MP4 (ISO base media) or WebM."""
    with path.open("rb") as fh:
        head = fh.read(12)
    if head[4:8] == _FTYP:
        return "video/mp4", ".mp4"
    if head[:4] == _WEBM:
        return "video/webm", ".webm"
    raise PermanentError(
        f"fal request {request_id} on {app} was paid for, but what it delivered is not an MP4 or WebM "
        f"video; its result is kept in {where}, nothing was submitted again",
        reason="ProviderJobFailed",
    )
