"""provider: cluster's LoRA trainer and image generator: FLUX from the staged models' root, on
this machine's GPU (or CPU), timed so that the run's cost is the GPU time it held.

`training.model` names the base model's directory under the models' root (FLUX.1-dev, say);
left at fal's default it is the CONTENTGEN_CLUSTER_FLUX_MODEL setting. An ImageGeneration's
flux-dev and flux-lora use that model too, flux-schnell CONTENTGEN_CLUSTER_FLUX_SCHNELL_MODEL; a
newer family's model (z-image-turbo, qwen-image-2512, ...) its base's directory in the base-model
table (api/base_models.py's drawn_from), drawn as picture_models.py says."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contentgen.api.base_models import drawn_from, picture_directory
from contentgen.api.image import FLUX_MODELS, IMAGE_SIZES, MODEL_DEFAULTS
from contentgen.errors import InvalidInput
from contentgen.providers.base import (
    Checkpoint,
    ImageOutput,
    ImageRequest,
    TrainingOutput,
    TrainingRequest,
)
from contentgen.providers.progress import SubProgress
from contentgen.providers.settings import ClusterWorkerSettings, ProviderSettings, from_environment

from . import devices, memory, picture_models
from .files import FolderFiles
from .generation import generation, lora_files, pictures
from .generation.pool import Drawn, DrawRequest, PoolRouter, Stopping, file_sha256, tell, waiting
from .training import distributed

# flux, pipelines and training (torch, diffusers, transformers: seconds of CPU) are imported by the
# methods that load a model: a Job's worker whose pictures a warm pool draws never loads one, and
# the pool waits for it no longer than its start without them (issue 47).
if TYPE_CHECKING:
    from .generation import flux
    from .training.trainer import Followed

log = logging.getLogger(__name__)

# How the pictures of a request not yet kept are drawn and kept (ClusterProvider.make_pictures).
DrawRest = Callable[
    [ImageRequest, DrawRequest, "pictures.Folder", dict[int, "pictures.Made"], Path, SubProgress], None
]
DEFAULT_LEARNING_RATE = 1e-4


def _inputs(request: ImageRequest, wanted: DrawRequest, model: str) -> dict[str, object]:
    """What the pictures are drawn from, as the folder records it (pictures.Folder.begin: an
    earlier attempt with the same inputs is taken up, a folder begun for others refused)."""
    return {
        "prompt": request.prompt,
        "model": model,
        "size": [wanted.width, wanted.height],
        "steps": wanted.steps,
        "guidance": wanted.guidance,
        "seed": request.seed,
        # a presigned link's query changes with every attempt; the object it names does not
        "loras": [[lora.url.split("?", 1)[0], lora.scale] for lora in request.loras],
    }


class ClusterProvider:
    name = "cluster"

    def __init__(
        self,
        root: Path,
        *,
        flux_model: str = "FLUX.1-dev",
        schnell_model: str = "FLUX.1-schnell",
        device: str = "",
        gpus: int = 1,
        inference_steps: int | None = None,
        sizes: Mapping[str, tuple[int, int]] = IMAGE_SIZES,
        models_store: str = "",
        pool_url: str = "",
    ) -> None:
        self.pool_url = pool_url  # a warm pool of this model's pipelines draws the pictures (pool.py)
        self.models_store = models_store  # a store prefix the models are copied from first (staging)
        self.root, self.flux_model, self.schnell_model = root, flux_model, schnell_model
        self.device_name, self.gpus, self.inference_steps, self.sizes = device, gpus, inference_steps, sizes
        # a warm pool's LoRAs kept between requests
        self.kept: generation.KeptLoras | generation.HotSwapLoras | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> ClusterProvider:
        """As the worker's environment (`env`, or the process's) configures it: the staged models
        and inference steps (`ProviderSettings.cluster_*`), the models' root and store, the device,
        the GPUs held and the warm pool (`ClusterWorkerSettings`)."""
        settings, worker = (
            from_environment(ProviderSettings, env),
            from_environment(ClusterWorkerSettings, env),
        )
        return cls(
            worker.cluster_models_dir,
            flux_model=settings.cluster_flux_model,
            schnell_model=settings.cluster_flux_schnell_model,
            device=worker.cluster_device,
            gpus=worker.gpu_count,
            inference_steps=settings.cluster_inference_steps or None,
            models_store=worker.cluster_models_store,
            pool_url=worker.cluster_pool_url,
        )

    def keep_loras(self, capacity: int, *, compiler: str = "", rank: int = 64) -> None:
        """Up to `capacity` LoRAs kept on the GPU from one `draw` to the next (a warm pool's), where
        the memory plan keeps the base on the GPU: loaded as adapters of their own
        (`generation.KeptLoras`); with `compiler` (a torch.compile backend), swapped into one adapter
        of `rank` on a transformer compiled once (`generation.HotSwapLoras`). 0 and no compiler:
        each request's loaded and unloaded (a Job's worker draws one request)."""
        if compiler:
            self.kept = generation.HotSwapLoras(capacity, rank, compiler)
        else:
            self.kept = generation.KeptLoras(capacity) if capacity > 0 else None

    def staged_model(self, name: str) -> Path:
        """The staged picture model `name` (copied from the models' store first, where there is
        one), with the files its pipeline needs (FLUX.1's, or a newer family's): ModelNotFound
        before any GPU time."""
        from .models import model_dir
        from .staging import staged

        found = staged(name, (picture_models.MODEL_INDEX,), root=self.root, url=self.models_store)
        return model_dir(name, picture_models.for_directory(found).required, root=self.root)

    def _gpu_seconds(self, seconds: float, on: flux.Device) -> float:
        # × the pod's GPUs on every device, as transcription counts them: the pod holds the GPUs
        # it requested for as long as it runs, whatever it computes on (docs/cluster-gpus.md)
        return seconds * self.gpus

    # --- LoRA training ------------------------------------------------------------------------

    def train_lora(
        self, request: TrainingRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> TrainingOutput:
        """The training framework's (training/trainer.py) with the family of the plan's base model
        (families/): FLUX.1's, or Wan's."""
        from .families import family_of
        from .training import trainer

        return trainer.train(self, family_of(request.plan.base), request, work_dir, progress)

    # --- image generation ---------------------------------------------------------------------

    def weights_of(self, model: str) -> str:
        """What a picture of `model` depends on besides its prompt, seed and LoRAs: the staged base
        model and the steps (another of either makes another likeness baseline)."""
        steps, _ = self._denoising(model)
        return f"{model}.{self._staged_name(model)}.{steps}-steps"

    def generate_images(
        self, request: ImageRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> list[ImageOutput]:
        """Picture by picture, each kept in `request.outputs` as it is made (a folder of the work
        directory without one): a retried pod takes those and makes only the rest (`pictures`)."""
        if request.model == "flux-pro":
            raise InvalidInput(
                "model flux-pro has no open weights: use flux-dev or flux-lora with provider cluster"
            )
        if request.model not in FLUX_MODELS and drawn_from(request.model) is None:
            raise InvalidInput(  # admission refuses it for an ImageGeneration
                f"provider cluster does not draw {request.model}: draw it on provider fal or offline "
                "(docs/cluster-training.md#families)"
            )
        return self.make_pictures(request, work_dir, progress, self._draw_the_rest)

    def make_pictures(
        self, request: ImageRequest, work_dir: Path, progress: SubProgress, draw_rest: DrawRest
    ) -> list[ImageOutput]:
        """The request's pictures: those kept in its folder taken, the rest drawn by `draw_rest` (this
        process's pipeline or the warm pool; a training's own between its steps: live.py), each kept
        as it comes."""
        wanted = self._drawing(request)
        folder = pictures.Folder(request.outputs or FolderFiles(work_dir / "pictures"), work_dir)
        inputs = _inputs(request, wanted, self._staged_name(request.model))
        seed = folder.begin(inputs, request.seed, secrets.randbelow(generation.SEEDS))
        seeds = {n: generation.picture_seed(seed, n) for n in range(1, request.num_images + 1)}
        made = folder.taken(request.num_images, seeds)
        todo = tuple((n, s) for n, s in seeds.items() if n not in made)
        if todo:
            draw_rest(request, replace(wanted, pictures=todo), folder, made, work_dir, progress)
        progress(100)
        return [made[n].output(wanted.width, wanted.height) for n in sorted(made)]

    def _drawing(self, request: ImageRequest) -> DrawRequest:
        """What to draw for `request` (its pictures not yet chosen): the model's steps and
        guidance, the size in pixels."""
        width, height = self.sizes[request.image_size]
        steps, guidance = self._denoising(request.model)
        return DrawRequest(
            owner=request.owner,
            prompt=request.prompt,
            width=width,
            height=height,
            steps=steps,
            guidance=guidance,
            memory_plan=request.memory_plan,
            loras=(),
            pictures=(),
        )

    def _draw_the_rest(
        self,
        request: ImageRequest,
        wanted: DrawRequest,
        folder: pictures.Folder,
        made: dict[int, pictures.Made],
        work_dir: Path,
        progress: SubProgress,
    ) -> None:
        """Draw `wanted`'s pictures (here, or in the warm pool), each kept as it comes."""
        pooled = bool(self.pool_url) and not request.drawn_here
        # ModelNotFound before any GPU time; a pool's worker needs no weights of its own
        base = self.staged_model(self._staged_name(request.model)) if not pooled else Path()
        loras = [
            (lora_files.fetch(lora.url, work_dir, n), lora.scale) for n, lora in enumerate(request.loras)
        ]
        if pooled:
            drawing = self._pooled(wanted, loras, work_dir, progress)
        else:
            drawing = self.draw(base, wanted, loras, work_dir, lambda: False, loaded=lambda: progress(20))
        for done, drawn in enumerate(drawing, start=1):
            path = drawn.path.replace(work_dir / pictures.picture_name(drawn.number))
            kept = folder.keep(drawn.number, drawn.seed, path, drawn.gpu_seconds, drawn.memory_plan)
            made[drawn.number] = kept
            progress(20 + 80 * done / len(wanted.pictures))

    def _staged_name(self, model: str) -> str:
        """The staged directory `model` draws from: the settings' FLUX models, else its base's."""
        return picture_directory(model, self.flux_model, self.schnell_model)

    def _denoising(self, model: str) -> tuple[int, float]:
        """`model`'s inference steps (the settings' where they name some) and guidance, as its
        model card gives them."""
        found = MODEL_DEFAULTS.get(model)
        if found is not None:
            steps, guidance = found.steps, found.guidance
        elif model == "flux-schnell":
            steps, guidance = generation.SCHNELL_STEPS, 0.0
        else:
            steps, guidance = generation.DEV_STEPS, generation.DEV_GUIDANCE
        return self.inference_steps or steps, guidance

    def draw(
        self,
        base: Path,
        wanted: DrawRequest,
        loras: Sequence[tuple[Path, float]],
        folder: Path,
        cancelled: Callable[[], bool],
        *,
        loaded: Callable[[], None] = lambda: None,
    ) -> Iterator[Drawn]:
        """The pictures of `wanted`, one at a time, on this process's kept pipeline of `base`
        (loaded the first time, and for another memory plan), with `loras` loaded for them and
        unloaded after; each picture's GPU time is the seconds since the last one (the first's
        includes the pipeline's and the LoRAs' loading); once `cancelled()`, nothing more, not even
        the rest of the picture under way. What a Job's worker draws with, and what a warm pool
        draws with for its clients (pool.py)."""
        from .generation import flux

        devices.prepare_torch(self.device_name)  # DeviceUnavailable, in one line, before any load
        began = time.monotonic()
        on = flux.device(self.device_name)
        drawn = picture_models.for_directory(base)  # FLUX.1, or a newer family
        pipe, plan = self._pipeline(drawn, base, wanted, on)
        described = plan.describe()
        flux.tiling(pipe, plan.vae_tiling)
        loaded()
        # kept only where the base stays on the GPU: offloaded, kept LoRAs would travel with it
        loading = (
            self.kept.using(pipe, loras, partial(flux.room, on) if on.cuda else None)
            if self.kept is not None and not plan.offload
            else generation.loras_loaded(pipe, loras)
        )
        with loading:
            for number, seed in wanted.pictures:
                if cancelled():
                    return
                picture = generation.Picture(
                    wanted.prompt, wanted.width, wanted.height, seed, wanted.steps, wanted.guidance
                )
                options = drawn.options(pipe, picture.guidance)
                path = generation.draw(pipe, picture, folder / f"drawn-{number}.png", cancelled, options)
                if cancelled():  # stopped within the picture: not the picture asked for
                    path.unlink(missing_ok=True)
                    return
                now = time.monotonic()
                held, began = now - began, now
                yield Drawn(number, seed, path, self._gpu_seconds(held, on), described)

    def _pipeline(
        self, drawn: picture_models.PictureModel, base: Path, wanted: DrawRequest, on: flux.Device
    ) -> tuple[Any, memory.MemoryPlan]:
        """The memory plan (GpuMemoryTooSmall with the numbers before any load), then the pipeline
        loaded once per process for it and kept (LoRAs and VAE tiling are set per request)."""
        from .generation import flux, pipelines

        plan = memory.choose_generation(
            flux.card(on),
            drawn.count(base),
            memory.GenerationJob(wanted.width, wanted.height),
            wanted.memory_plan,
            quantised=drawn.quantised,
        )
        log.info("memory plan: %s", plan.describe())
        plain = plan.base == "bf16" and not plan.offload
        pipe = pipelines.pipeline(
            base,
            on,
            variant=() if plain else (plan.base, plan.offload),
            load=partial(drawn.load, plan=None if plain else plan),
        )
        return pipe, plan

    def _pooled(
        self, wanted: DrawRequest, loras: Sequence[tuple[Path, float]], work_dir: Path, progress: SubProgress
    ) -> Iterator[Drawn]:
        """The pictures of `wanted` drawn by the warm pool (CONTENTGEN_CLUSTER_POOL_URL), by the pod
        `pool.route` chooses (the one that holds its LoRAs, else the least loaded): the LoRA files
        uploaded once by their SHA-256, the place in its queue said while waiting; where the pod
        that took it stops (Stopping), the pictures not yet drawn asked for again, of another pod."""
        router = PoolRouter(self.pool_url)
        files = [file_sha256(path) for path, _ in loras]
        left = wanted
        try:
            while left.pictures:
                told = False
                # a pool scaled to zero comes back for the waiting Jobs; the pod that holds the
                # request's LoRAs draws it, else the least loaded (pool.route)
                client = router.reached(files, waiting)
                # each pod keeps its own LoRA files: a new one may lack them
                shas = tuple((client.upload_lora(path), scale) for path, scale in loras)
                progress(20)
                try:
                    for drawn in client.draw(replace(left, loras=shas), work_dir, waiting):
                        if not told:
                            tell("drawing", 0)
                            told = True
                        left = replace(left, pictures=tuple(p for p in left.pictures if p[0] != drawn.number))
                        yield drawn
                    return
                except Stopping:
                    log.info("generation pool: its pod stopped; %d pictures asked again", len(left.pictures))
        finally:
            tell("", 0)


def follow_training(work: Followed, team: distributed.Team) -> None:
    """A follower's entry (distributed.follow): this pod's cluster provider, from its environment."""
    import os
    import tempfile

    provider = ClusterProvider.from_environment()  # as rank 0's is made
    provider.pool_url = ""  # a follower trains; rank 0 draws the pictures
    root = Path(os.environ.get("CONTENTGEN_WORK_DIR") or tempfile.gettempdir())
    work_dir = root / f"rank-{team.world.rank}"
    work_dir.mkdir(parents=True, exist_ok=True)
    from .families import family_of
    from .training import trainer

    trainer.follow(provider, family_of(work.plan.base), work, team, work_dir)
