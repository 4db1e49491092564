"""The fal provider: LoRA training and image generation through fal's queue (see the package)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import fal_client
import httpx

from contentgen.api.base_models import DEFAULT_FAL_TRAINER, FAL_TRAINERS, FLUX_FAST_INPUTS, TrainerInputs
from contentgen.api.image import LORA_MODELS, MODEL_DEFAULTS
from contentgen.api.providers import FAL
from contentgen.errors import InvalidInput
from contentgen.files import sha256_file
from contentgen.providers.progress import SubProgress

from ..base import (
    Checkpoint,
    ImageOutput,
    ImageRequest,
    TrainingOutput,
    TrainingRequest,
)
from ..retry import Retry, bad_response, error_for_status, error_for_transport, redact, retry_after
from .errors import classify, output_lost, response_detail
from .history import History
from .outputs import EXTENSIONS, File, MiB, check_safetensors, image_header, result_file, too_large
from .progress import Meter
from .queue import FalQueue, Waiting
from .uploads import Upload
from .wan_training import WAN_TRAINERS
from .wan_training import train as train_wan

log = logging.getLogger(__name__)

# Each trainer's own input names are the base-model table's (api/base_models.py's TrainerInputs: the
# trigger is trigger_word on one FLUX trainer, trigger_phrase on the other; fal's v2 trainers take
# image_data_url and default_caption); a training.model fal's table lacks is sent FLUX's way.
TRAINER_INPUTS: dict[str, TrainerInputs] = {app: t.inputs for app, (_, t) in FAL_TRAINERS.items()}

# The apps' API references (https://fal.ai/docs/model-api-reference/image-generation-api/flux-dev.md,
# .../flux-pro-v1.1.md, .../flux-lora.md) document prompt, image_size, num_images (1 to 4) and
# seed for all of them, loras ([{path, scale}]) on flux-lora, and a negative prompt on none.
IMAGE_APPS = FAL.draws
MAX_IMAGES_PER_REQUEST = FAL.max_images

_CHUNK = MiB
# How long a lost submit is looked for in fal's request list (it shows a request once it has
# ended): an image request ends within minutes, a training within the hour.
IMAGE_RESOLVE_WAIT = 600.0
TRAINING_RESOLVE_WAIT = 3600.0


@dataclass(frozen=True)
class Limits:
    """The most a download from fal may weigh; bigger ones fail permanently."""

    weights_bytes: int = 2048 * MiB
    config_bytes: int = 16 * MiB
    image_bytes: int = 64 * MiB


class FalProvider:
    """`LoraTrainer` and `ImageGenerator` on fal.ai. The key is sent only to fal's API, never to
    the CDN the outputs are downloaded from."""

    name = "fal"

    def __init__(
        self,
        key: str,
        *,
        retry: Retry | None = None,
        poll_interval: float = 5.0,
        max_wait: float = 6 * 3600.0,
        limits: Limits | None = None,
        http: httpx.Client | None = None,
        clock: Callable[[], datetime] | None = None,
        store_io: bool = True,
    ) -> None:
        self._key = key
        self._fal = fal_client.SyncClient(key=key)
        self._retry = retry or Retry()
        self._limits = limits or Limits()
        self._http = http or httpx.Client(timeout=httpx.Timeout(60.0, connect=15.0), follow_redirects=True)
        self._queue = FalQueue(
            self._fal,
            key,
            self._retry,
            History(key, self._retry),
            poll_interval=poll_interval,
            max_wait=max_wait,
            clock=clock,
            store_io=store_io,
        )

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def queue(self) -> FalQueue:
        """The queue every paid request goes through (made once, see queue.py)."""
        return self._queue

    def upload(self, path: Path, what: str) -> str:
        """`path` on fal's CDN; its URL. Without fal-client's fallback upload: it PUTs to a signed
        storage URL with the fal key in the Authorization header. An upload is not billed (fal
        bills model outputs), so a lost answer is simply uploaded again."""
        url: str = self._retry.call(
            lambda: self._fal.upload_file(path, fallback_repository=[]),
            classify=lambda exc: classify(exc, key=self._key, what=f"the upload of {what}"),
            what=f"uploading {what} to fal",
        )
        return url

    # --- LoRA training ------------------------------------------------------------------------

    def train_lora(
        self, request: TrainingRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> TrainingOutput:
        """Uploads the dataset zip, trains on the plan's app and downloads the weights and config.

        Sent, under each trainer's own names (the base-model table's TrainerInputs): the dataset's
        URL, the steps, the trigger word (or, to fal's v2 trainers, as the caption of a picture
        without one), and learning_rate to the trainers that document it; the LoRA is read from the
        first of the trainer's result keys the result holds.
        """
        app = request.plan.app or DEFAULT_FAL_TRAINER
        if app in WAN_TRAINERS:  # a Wan LoRA from stills and clips (wan_training.py)
            zipped = sha256_file(request.dataset_zip)
            fingerprint = _fingerprint(
                app, zipped, request.trigger_word, request.plan.steps, request.plan.learning_rate
            )
            saved = _matching(checkpoint.load(), app, fingerprint)
            saved.update(provider=self.name, app=app, fingerprint=fingerprint)
            return train_wan(self, request, app, saved, work_dir, progress, checkpoint)
        meter = Meter(progress)
        training = _Training(self, request, app, checkpoint, meter)
        waiting = Waiting(meter.queue(5, 10), meter.running(10, 90, keyword="step"), TRAINING_RESOLVE_WAIT)
        request_id, result = self._queue.run(
            app, training.arguments, training.saved, checkpoint, waiting, heal=training.dataset.heal
        )
        paid = (app, request_id, getattr(checkpoint, "location", "") or "the run's checkpoint")
        names = TRAINER_INPUTS.get(app, FLUX_FAST_INPUTS).weights
        weights_file = result_file(result, next((n for n in names if n in result), names[0]), app)
        weights = self.download_lora(
            weights_file, work_dir / "model.safetensors", "the LoRA weights", meter.span(90, 98), paid
        )
        config = self.training_config(result, work_dir, meter, paid)
        meter.at(100)
        return TrainingOutput(
            weights=weights,
            config=config,
            request_id=request_id,
            details={
                "app": app,
                "dataset_url": redact(str(training.saved.get("dataset_url", ""))),
                "weights_url": redact(str(weights_file["url"])),
            },
        )

    def training_config(
        self, result: dict[str, Any], work_dir: Path, meter: Meter, paid: tuple[str, str, str]
    ) -> Path | None:
        """The trainer's config file, where its result has one."""
        config_file = result.get("config_file")
        if not (isinstance(config_file, dict) and config_file.get("url")):
            return None
        config = work_dir / "config.json"
        self.download(
            config_file,
            config,
            limit=self._limits.config_bytes,
            what="the training config",
            meter=meter.span(98, 99),
            paid=paid,
        )
        return config

    # --- image generation ---------------------------------------------------------------------

    def generate_images(
        self, request: ImageRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> list[ImageOutput]:
        """Generates on the app for `request.model` (see IMAGE_APPS) and downloads every image.

        Sent: prompt, image_size, num_images, seed when set, and loras as [{path, scale}] for
        flux-lora. `negative_prompt` is not sent: none of these FLUX apps documents one.
        """
        app = _image_app(request)
        args = _image_args(request)
        meter = Meter(progress)
        # without query strings: presigned LoRA URLs are signed anew by every attempt
        fingerprint = _fingerprint(app, redact(json.dumps(args, sort_keys=True)))
        saved = _matching(checkpoint.load(), app, fingerprint)
        saved.update(provider=self.name, app=app, fingerprint=fingerprint)
        waiting = Waiting(meter.queue(0, 10), meter.running(10, 70), IMAGE_RESOLVE_WAIT)
        request_id, result = self._queue.run(app, lambda: args, saved, checkpoint, waiting)
        where = getattr(checkpoint, "location", "") or "the run's checkpoint"
        images = _result_images(result, f"request {request_id} on {app}")
        seed = result.get("seed") if isinstance(result.get("seed"), int) else request.seed
        share = 30.0 / len(images)
        outputs = [
            self._image_downloaded(
                image,
                work_dir,
                index + 1,
                meter.span(70 + index * share, 70 + (index + 1) * share),
                (app, request_id, where),
                seed,
            )
            for index, image in enumerate(images)
        ]
        meter.at(100)
        return outputs

    def _image_downloaded(
        self,
        image: dict[str, Any],
        work_dir: Path,
        number: int,
        meter: Callable[[float], None],
        paid: tuple[str, str, str],
        seed: int | None,
    ) -> ImageOutput:
        """One image of a paid result, downloaded and read: its file's own size and type."""
        request_id, part = paid[1], work_dir / f"image-{number:02d}.part"
        self.download(image, part, limit=self._limits.image_bytes, what="an image", meter=meter, paid=paid)
        content_type, width, height = image_header(part)
        if (width, height) != (image.get("width"), image.get("height")):
            log.warning(
                "fal said image %d is %sx%s, the file is %dx%d; keeping the file's",
                number,
                image.get("width"),
                image.get("height"),
                width,
                height,
            )
        path = part.with_suffix(EXTENSIONS[content_type])
        part.replace(path)
        return ImageOutput(
            path=path, width=width, height=height, content_type=content_type, seed=seed, request_id=request_id
        )

    # --- downloads ----------------------------------------------------------------------------

    def download_lora(
        self,
        file: File,
        dest: Path,
        what: str,
        meter: Callable[[float], None],
        paid: tuple[str, str, str],
    ) -> Path:
        """A trained LoRA file streamed into `dest` within the weights' limit, checked as safetensors."""
        self.download(file, dest, limit=self._limits.weights_bytes, what=what, meter=meter, paid=paid)
        check_safetensors(dest)
        return dest

    def download(
        self,
        file: File,
        dest: Path,
        *,
        limit: int,
        what: str,
        meter: Callable[[float], None],
        paid: tuple[str, str, str],
    ) -> int:
        """Streams `file["url"]` into `dest` (no partial file is left behind), at most `limit` bytes."""
        url = str(file["url"])
        declared = file.get("file_size")
        if isinstance(declared, int) and declared > limit:
            raise too_large(what, declared, limit)

        def attempt() -> int:
            part = dest.with_name(dest.name + ".download")
            try:
                with self._http.stream("GET", url) as response:
                    if response.status_code in (403, 404, 410):
                        app, request_id, where = paid
                        raise output_lost(
                            app,
                            request_id,
                            f"fal's CDN no longer serves {what} ({redact(url)}: HTTP {response.status_code})",
                            where,
                        )
                    if response.status_code >= 400:
                        response.read()
                        raise error_for_status(
                            response.status_code,
                            response_detail(response),
                            provider="fal's CDN",
                            key_env=None,
                            retry_after=retry_after(response.headers),
                        )
                    length = int(response.headers.get("content-length") or 0) or None
                    if length is not None and length > limit:
                        raise too_large(what, length, limit)
                    size = 0
                    with part.open("wb") as fh:
                        for chunk in response.iter_bytes(_CHUNK):
                            size += len(chunk)
                            if size > limit:
                                raise too_large(what, size, limit)
                            fh.write(chunk)
                            if length:
                                meter(100.0 * size / length)
                part.replace(dest)
                meter(100)
                return size
            finally:
                part.unlink(missing_ok=True)

        return self._retry.call(
            attempt,
            classify=lambda exc: error_for_transport(exc, provider="fal's CDN"),
            what=f"downloading {what} from {redact(url)}",
        )


class _Training:
    """A training request's checkpointed state and what its queue run asks of it: the arguments,
    and whether a failure heals by uploading the dataset again (`Upload`)."""

    def __init__(
        self, fal: FalProvider, request: TrainingRequest, app: str, checkpoint: Checkpoint, meter: Meter
    ) -> None:
        self.request, self.app, self.meter = request, app, meter
        fingerprint = _fingerprint(
            app,
            sha256_file(request.dataset_zip),
            request.trigger_word,
            request.plan.steps,
            request.plan.learning_rate,
        )
        self.saved = _matching(checkpoint.load(), app, fingerprint)
        self.saved.update(provider=fal.name, app=app, fingerprint=fingerprint)
        self.names = TRAINER_INPUTS.get(app, FLUX_FAST_INPUTS)
        self.dataset = Upload(
            fal.upload,
            request.dataset_zip,
            "the dataset",
            self.names.data,
            self.saved,
            checkpoint.save,
            url_key="dataset_url",
            count_key="dataset_uploads",
        )

    def arguments(self) -> dict[str, Any]:
        url = self.dataset.url()
        self.meter.at(5)
        names, request = self.names, self.request
        args: dict[str, Any] = {names.data: url, names.steps: request.plan.steps}
        if names.trigger:
            args[names.trigger] = request.trigger_word
        if names.caption:  # a picture without a caption file is captioned with the trigger word
            args[names.caption] = request.trigger_word
        if request.plan.learning_rate is not None and names.learning_rate:
            args[names.learning_rate] = request.plan.learning_rate
        elif request.plan.learning_rate is not None:
            log.info("learning rate not sent: %s documents none", self.app)
        return args


def _matching(saved: dict[str, Any], app: str, fingerprint: str) -> dict[str, Any]:
    """The checkpoint if it was written for this app and these inputs, else a fresh one."""
    if saved.get("app") == app and saved.get("fingerprint") == fingerprint:
        return saved
    return {}


def _image_app(request: ImageRequest) -> str:
    """The fal app that draws `request`, or InvalidInput naming the field (before anything is paid)."""
    app = IMAGE_APPS.get(request.model)
    if app is None:
        raise InvalidInput(
            f"fal has no app for image model {request.model!r}; use one of {sorted(IMAGE_APPS)}"
        )
    if not 1 <= request.num_images <= MAX_IMAGES_PER_REQUEST:
        raise InvalidInput(
            f"numImages: fal's FLUX apps make 1 to {MAX_IMAGES_PER_REQUEST} images per request, "
            f"not {request.num_images}; ask for at most {MAX_IMAGES_PER_REQUEST}"
        )
    if request.loras and request.model not in LORA_MODELS:
        raise InvalidInput(
            f"loras need a model that loads them ({', '.join(LORA_MODELS)}), not {request.model}"
        )
    denoising = MODEL_DEFAULTS.get(request.model)
    if denoising and len(request.loras) > denoising.max_loras:
        raise InvalidInput(
            f"loras: fal's {app} takes at most {denoising.max_loras} LoRAs, not {len(request.loras)}: "
            "give fewer"
        )
    if any(not lora.url.startswith(("https://", "http://")) for lora in request.loras):
        raise InvalidInput(
            "fal can only fetch LoRA weights from http(s) URLs; a local store's file:// links "
            "work with the offline provider only"
        )
    if request.negative_prompt:
        log.info("negative prompt not sent: %s documents none", app)
    return app


def _image_args(request: ImageRequest) -> dict[str, Any]:
    """The arguments fal's FLUX apps take for `request` (pure)."""
    args: dict[str, Any] = {
        "prompt": request.prompt,
        "image_size": request.image_size,
        "num_images": request.num_images,
    }
    if request.seed is not None:
        args["seed"] = request.seed
    if request.model in LORA_MODELS:
        args["loras"] = [{"path": lora.url, "scale": lora.scale} for lora in request.loras]
    denoising = MODEL_DEFAULTS.get(request.model)
    if denoising:  # the newer families' apps: their model card's steps (FLUX's apps keep their own)
        args["num_inference_steps"] = denoising.steps
    return args


def _result_images(result: dict[str, Any], what: str) -> list[dict[str, Any]]:
    """A result's images, each with a URL, or ProviderError naming the request."""
    images = result.get("images")
    if not isinstance(images, list) or not images:
        raise bad_response("fal", what, "a result without images")
    if any(not isinstance(image, dict) or not image.get("url") for image in images):
        raise bad_response("fal", what, "an image without a URL")
    if any(result.get("has_nsfw_concepts") or []):
        log.warning("fal's safety checker flagged some images of this request; they may be blank")
    return images


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
