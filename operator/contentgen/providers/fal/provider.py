"""The fal provider: LoRA training and image generation through fal's queue (see the package)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fal_client
import fal_client.client
import httpx

from contentgen.errors import ContentgenError, InvalidInput, PermanentError, TransientError
from contentgen.files import sha256_file
from contentgen.pipeline.progress import SubProgress

from ..base import (
    Checkpoint,
    ImageOutput,
    ImageRequest,
    TrainingOutput,
    TrainingRequest,
)
from ..retry import Retry, error_for_status, error_for_transport, redact, retry_after
from .errors import error_detail, job_error, job_failed, response_detail, unknown_request
from .outputs import EXTENSIONS, MiB, check_safetensors, image_header, result_file, too_large
from .progress import Meter

log = logging.getLogger(__name__)

KEY_ENV = "FAL_KEY"
DEFAULT_TRAINING_APP = "fal-ai/flux-lora-fast-training"

# The apps' API references (https://fal.ai/docs/model-api-reference/image-generation-api/flux-dev.md,
# .../flux-pro-v1.1.md, .../flux-lora.md) document prompt, image_size, num_images and seed for all
# of them, loras ([{path, scale}]) on flux-lora, and a negative prompt on none.
IMAGE_APPS = {
    "flux-dev": "fal-ai/flux/dev",
    "flux-schnell": "fal-ai/flux/schnell",
    "flux-pro": "fal-ai/flux-pro/v1.1",
    "flux-lora": "fal-ai/flux-lora",
}

_CHUNK = MiB


@dataclass(frozen=True)
class Limits:
    """The most a download from fal may weigh; bigger ones fail permanently."""

    weights_bytes: int = 2048 * MiB
    config_bytes: int = 16 * MiB
    image_bytes: int = 64 * MiB


def _sdk_makes_one_attempt() -> None:
    # fal-client retries 408/409/429, some 502-504 and transport errors up to 10 times with
    # time.sleep and without reading Retry-After. Our Retry owns that policy (and its clock),
    # so the SDK gets one attempt per call; otherwise the two loops would multiply.
    if hasattr(fal_client.client, "MAX_ATTEMPTS"):
        fal_client.client.MAX_ATTEMPTS = 1


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
    ) -> None:
        _sdk_makes_one_attempt()
        self._key = key
        self._fal = fal_client.SyncClient(key=key)
        self._retry = retry or Retry()
        self._poll_interval = poll_interval
        self._max_wait = max_wait
        self._limits = limits or Limits()
        self._http = http or httpx.Client(timeout=httpx.Timeout(60.0, connect=15.0), follow_redirects=True)

    # --- LoRA training ------------------------------------------------------------------------

    def train_lora(
        self, request: TrainingRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> TrainingOutput:
        """Uploads the dataset zip, trains on `request.model` and downloads the weights and config.

        Sent: images_data_url, trigger_word, steps, and learning_rate when set. The default app
        (fal-ai/flux-lora-fast-training) does not document learning_rate, so it may ignore it; other
        trainers (fal-ai/flux-lora-portrait-trainer) take it.
        """
        app = request.model or DEFAULT_TRAINING_APP
        meter = Meter(progress)
        fingerprint = _fingerprint(
            app, sha256_file(request.dataset_zip), request.trigger_word, request.steps, request.learning_rate
        )
        saved = _matching(checkpoint.load(), app, fingerprint)

        def arguments() -> dict[str, Any]:
            dataset_url = saved.get("dataset_url")
            if not dataset_url:
                # Without fal-client's fallback upload: it PUTs to a signed storage URL with the
                # fal key in the Authorization header. Our retries retry the CDN upload instead.
                dataset_url = self._call(
                    lambda: self._fal.upload_file(request.dataset_zip, fallback_repository=[]),
                    "uploading the dataset to fal",
                )
                saved.update(provider=self.name, app=app, fingerprint=fingerprint, dataset_url=dataset_url)
                checkpoint.save(saved)
            meter.at(5)
            args: dict[str, Any] = {
                "images_data_url": dataset_url,
                "trigger_word": request.trigger_word,
                "steps": request.steps,
            }
            if request.learning_rate is not None:
                args["learning_rate"] = request.learning_rate
            return args

        request_id, result = self._run(
            app, arguments, saved, checkpoint, meter.queue(5, 10), meter.running(10, 90, keyword="step")
        )
        weights_file = result_file(result, "diffusers_lora_file", app)
        weights = work_dir / "model.safetensors"
        self._download(
            weights_file,
            weights,
            limit=self._limits.weights_bytes,
            what="the LoRA weights",
            meter=meter.span(90, 98),
        )
        check_safetensors(weights)
        config: Path | None = None
        config_file = result.get("config_file")
        if isinstance(config_file, dict) and config_file.get("url"):
            config = work_dir / "config.json"
            self._download(
                config_file,
                config,
                limit=self._limits.config_bytes,
                what="the training config",
                meter=meter.span(98, 99),
            )
        meter.at(100)
        return TrainingOutput(
            weights=weights,
            config=config,
            request_id=request_id,
            details={
                "app": app,
                "dataset_url": redact(str(saved.get("dataset_url", ""))),
                "weights_url": redact(str(weights_file["url"])),
            },
        )

    # --- image generation ---------------------------------------------------------------------

    def generate_images(
        self, request: ImageRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> list[ImageOutput]:
        """Generates on the app for `request.model` (see IMAGE_APPS) and downloads every image.

        Sent: prompt, image_size, num_images, seed when set, and loras as [{path, scale}] for
        flux-lora. `negative_prompt` is not sent: none of these FLUX apps documents one.
        """
        app = IMAGE_APPS.get(request.model)
        if app is None:
            raise InvalidInput(
                f"fal has no app for image model {request.model!r}; use one of {sorted(IMAGE_APPS)}"
            )
        if request.loras and request.model != "flux-lora":
            raise InvalidInput(f"loras need the flux-lora model, not {request.model}")
        if any(not lora.url.startswith(("https://", "http://")) for lora in request.loras):
            raise InvalidInput(
                "fal can only fetch LoRA weights from http(s) URLs; a local store's file:// links "
                "work with the offline provider only"
            )
        if request.negative_prompt:
            log.info("negative prompt not sent: %s documents none", app)
        args: dict[str, Any] = {
            "prompt": request.prompt,
            "image_size": request.image_size,
            "num_images": request.num_images,
        }
        if request.seed is not None:
            args["seed"] = request.seed
        if request.model == "flux-lora":
            args["loras"] = [{"path": lora.url, "scale": lora.scale} for lora in request.loras]

        meter = Meter(progress)
        # without query strings: presigned LoRA URLs are signed anew by every attempt
        fingerprint = _fingerprint(app, redact(json.dumps(args, sort_keys=True)))
        saved = _matching(checkpoint.load(), app, fingerprint)
        saved.update(provider=self.name, app=app, fingerprint=fingerprint)
        _, result = self._run(app, lambda: args, saved, checkpoint, meter.queue(0, 10), meter.running(10, 70))

        images = result.get("images")
        if not isinstance(images, list) or not images:
            raise PermanentError(f"fal's {app} returned no images", reason="ProviderJobFailed")
        seed = result.get("seed") if isinstance(result.get("seed"), int) else request.seed
        if any(result.get("has_nsfw_concepts") or []):
            log.warning("fal's safety checker flagged some images of this request; they may be blank")
        outputs = []
        share = 30.0 / len(images)
        for index, image in enumerate(images):
            if not isinstance(image, dict) or not image.get("url"):
                raise PermanentError(
                    f"fal's {app} returned an image without a URL", reason="ProviderJobFailed"
                )
            part = work_dir / f"image-{index + 1:02d}.part"
            start = 70 + index * share
            self._download(
                image,
                part,
                limit=self._limits.image_bytes,
                what="an image",
                meter=meter.span(start, start + share),
            )
            content_type, width, height = image_header(part)
            if (width, height) != (image.get("width"), image.get("height")):
                log.warning(
                    "fal said image %d is %sx%s, the file is %dx%d; keeping the file's",
                    index + 1,
                    image.get("width"),
                    image.get("height"),
                    width,
                    height,
                )
            path = part.with_suffix(EXTENSIONS[content_type])
            part.replace(path)
            outputs.append(
                ImageOutput(path=path, width=width, height=height, content_type=content_type, seed=seed)
            )
        meter.at(100)
        return outputs

    # --- the queue ----------------------------------------------------------------------------

    def _run(
        self,
        app: str,
        arguments: Callable[[], dict[str, Any]],
        saved: dict[str, Any],
        checkpoint: Checkpoint,
        queued: Callable[[int], None],
        running: Callable[[list[dict[str, Any]] | None], None],
    ) -> tuple[str, dict[str, Any]]:
        """Resumes the checkpoint's request, or submits `arguments()`; waits; returns (id, result)."""
        resumed = self._resume(app, saved)
        status: fal_client.Status | None
        if resumed is None:
            args = arguments()
            handle: fal_client.SyncRequestHandle = self._call(
                lambda: self._fal.submit(app, args), f"submitting to fal's {app}"
            )
            saved.update(request_id=handle.request_id)
            checkpoint.save(saved)
            log.info("submitted fal request %s on %s", handle.request_id, app)
            status = None
        else:
            handle, status = resumed
        request_id = handle.request_id

        waited = 0.0
        while True:
            if status is None:
                status = self._call(
                    lambda: handle.status(with_logs=True), f"polling fal request {request_id}"
                )
            if isinstance(status, fal_client.Completed):
                break
            if isinstance(status, fal_client.Queued):
                queued(status.position)
            elif isinstance(status, fal_client.InProgress):
                running(status.logs)
            if waited >= self._max_wait:
                raise TransientError(
                    f"fal request {request_id} on {app} has not finished after {waited:.0f} s; "
                    "the checkpoint keeps it, a new attempt resumes waiting",
                    reason="ProviderTimeout",
                )
            self._retry.sleep(self._poll_interval)
            waited += self._poll_interval
            status = None

        if status.error:
            self._forget(saved, checkpoint)
            raise job_error(app, request_id, status.error, status.error_type)
        try:
            result = self._call(
                handle.get, f"fetching the result of fal request {request_id}", let_through=job_failed
            )
        except fal_client.FalClientHTTPError as exc:  # the request ran and failed
            self._forget(saved, checkpoint)
            raise job_error(app, request_id, error_detail(exc), exc.error_type, exc.status_code) from None
        if not isinstance(result, dict):
            raise PermanentError(f"fal's {app} returned no result object", reason="ProviderJobFailed")
        return request_id, result

    def _resume(
        self, app: str, saved: dict[str, Any]
    ) -> tuple[fal_client.SyncRequestHandle, fal_client.Status] | None:
        """The checkpoint's request and its status, None when there is none or fal forgot it."""
        request_id = saved.get("request_id")
        if not request_id:
            return None
        handle = self._fal.get_handle(app, request_id)
        try:
            status = self._call(
                lambda: handle.status(with_logs=True),
                f"polling fal request {request_id}",
                let_through=unknown_request,
            )
        except fal_client.FalClientHTTPError:  # the 404 let through
            log.warning("fal does not know request %s any more; submitting anew", request_id)
            return None
        log.info("resuming fal request %s on %s", request_id, app)
        return handle, status

    def _forget(self, saved: dict[str, Any], checkpoint: Checkpoint) -> None:
        """Drops a failed request from the checkpoint: a new attempt submits anew."""
        saved.pop("request_id", None)
        checkpoint.save(saved)

    def _call(
        self, fn: Callable[[], Any], what: str, *, let_through: Callable[[Exception], bool] | None = None
    ) -> Any:
        """`fn` under the retry policy; exceptions `let_through` accepts come out raw, unretried."""

        def classify(exc: Exception) -> ContentgenError | None:
            if let_through is not None and let_through(exc):
                return None
            return self._classify(exc)

        return self._retry.call(fn, classify=classify, what=what)

    def _classify(self, exc: Exception) -> ContentgenError | None:
        if isinstance(exc, fal_client.FalClientHTTPError):
            return error_for_status(
                exc.status_code,
                error_detail(exc),
                provider="fal",
                key_env=KEY_ENV,
                retry_after=retry_after(exc.response_headers),
                secrets=(self._key,),
            )
        if isinstance(exc, httpx.HTTPStatusError):  # fal-client's CDN token request raises these
            return error_for_status(
                exc.response.status_code,
                response_detail(exc.response),
                provider="fal",
                key_env=KEY_ENV,
                retry_after=retry_after(exc.response.headers),
                secrets=(self._key,),
            )
        return error_for_transport(exc, provider="fal")

    # --- downloads ----------------------------------------------------------------------------

    def _download(
        self, file: dict[str, Any], dest: Path, *, limit: int, what: str, meter: Callable[[float], None]
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


def _matching(saved: dict[str, Any], app: str, fingerprint: str) -> dict[str, Any]:
    """The checkpoint if it was written for this app and these inputs, else a fresh one."""
    if saved.get("app") == app and saved.get("fingerprint") == fingerprint:
        return saved
    return {}


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
