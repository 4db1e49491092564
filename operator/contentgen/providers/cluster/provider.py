"""provider: cluster's LoRA trainer and image generator: FLUX from the staged models' root, on
this machine's GPU (or CPU), timed so that the run's cost is the GPU time it held.

`training.model` names the base model's directory under the models' root (FLUX.1-dev, say);
left at fal's default it is the CONTENTGEN_CLUSTER_FLUX_MODEL setting. An ImageGeneration's
flux-dev and flux-lora use that model too, flux-schnell CONTENTGEN_CLUSTER_FLUX_SCHNELL_MODEL."""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from contentgen.api.base_models import base_model
from contentgen.api.image import IMAGE_SIZES
from contentgen.api.lora import DEFAULT_TRAINING_MODEL
from contentgen.errors import InvalidInput, TransientError
from contentgen.providers.base import (
    Checkpoint,
    Continued,
    ImageOutput,
    ImageRequest,
    TrainingOutput,
    TrainingRequest,
)
from contentgen.providers.progress import Monotonic, SubProgress

from . import devices, distributed, generation, memory, pictures
from .files import FolderFiles
from .models import model_dir
from .pool import Drawn, DrawRequest, PoolRouter, Stopping, file_sha256, tell, waiting

# flux, pipelines and training (torch, diffusers, transformers: seconds of CPU) are imported by the
# methods that load a model: a Job's worker whose pictures a warm pool draws never loads one, and
# the pool waits for it no longer than its start without them (issue 47).
if TYPE_CHECKING:
    from . import flux, training

log = logging.getLogger(__name__)

LORA_LIMIT = 2 * 1024**3  # a FLUX LoRA of rank 128 is about 1.2 GB
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

    def base_model(self, name: str) -> Path:
        """The staged base model `name` (copied from the models' store first, where there is one)."""
        from . import flux

        if self.models_store:
            from .staging import staged

            return staged(name, flux.REQUIRED, root=self.root, url=self.models_store)
        return model_dir(name, flux.REQUIRED, root=self.root)

    def _gpu_seconds(self, seconds: float, on: flux.Device) -> float:
        # × the pod's GPUs on every device, as transcription counts them: the pod holds the GPUs
        # it requested for as long as it runs, whatever it computes on (docs/cluster-gpus.md)
        return seconds * self.gpus

    def _team_device(self, team: distributed.Team) -> flux.Device:
        """The device this process trains on: in a team of several GPUs on a node, its own."""
        from . import flux

        on = flux.device(self.device_name)
        if team.world.several and on.cuda and on.where.index is None:
            import torch

            return flux.Device(torch.device("cuda", team.world.local_rank), on.dtype)
        return on

    def _hand_out(
        self, request: TrainingRequest, name: str, plan: training.Plan, team: distributed.Team
    ) -> None:
        """Rank 0: the training the other processes are to do beside it (`follow_training`)."""
        watch, continued = request.watch, request.continue_from
        team.publish(
            f"{__name__}:follow_training",
            Followed(
                model=name,
                plan=plan,
                memory_plan=request.memory_plan,
                dataset=request.dataset_zip.read_bytes(),
                trigger_word=request.trigger_word,
                metadata={"contentgen.provider": self.name, "contentgen.base_model": name},
                prompts=tuple(watch.prompts()) if watch is not None else None,
                continued=(continued.version, continued.step) if continued is not None else None,
            ),
        )

    def follow(self, work: Followed, team: distributed.Team, work_dir: Path) -> None:
        """A process other than rank 0: the training rank 0 handed out, its share of each step,
        nothing written (rank 0 stores; distributed.SharedFiles tells this one what it read)."""
        from . import pipelines, training
        from .shared_pictures import SharedPictures

        base = self.base_model(work.model)  # staged on this node too, where the models are copied
        pipelines.release()
        on = self._team_device(team)
        team.begin(on.cuda, on.where)
        choose = memory_chooser(base, on, work.plan, work.memory_plan)
        pictures = work_dir / "pictures"
        pictures.mkdir(parents=True, exist_ok=True)
        archive = work_dir / "dataset.zip"
        archive.write_bytes(work.dataset)
        examples = training.read_dataset(archive, pictures, work.trigger_word)
        watch = (
            distributed.Following(team, work.prompts, draw=lambda drawer, order: drawer.share(order))
            if work.prompts is not None
            else None
        )
        continued = (
            Continued(work.continued[0], distributed.SharedFiles(None, team), work.continued[1])
            if work.continued is not None
            else None
        )
        with suppress(training.Unkept):  # stopped before a checkpoint: rank 0 says so
            training.train(
                base,
                examples,
                work.plan,
                on,
                work_dir,
                distributed.SharedFiles(None, team),
                metadata=work.metadata,
                choose=choose,
                watch=watch,
                drawers=partial(SharedPictures, self, team, work_dir),
                continued=continued,
                gpus=self.gpus,
                team=team,
            )

    # --- LoRA training ------------------------------------------------------------------------

    def train_lora(
        self, request: TrainingRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> TrainingOutput:
        if base_model(request.base_model).video:  # a Wan LoRA: Wan's trainer (wan_trainer.py)
            from .wan_trainer import train_wan

            return train_wan(self, request, work_dir, progress)
        from . import outcome, pipelines, training
        from .shared_pictures import SharedPictures

        name = self.flux_model if request.model == DEFAULT_TRAINING_MODEL else request.model
        base = self.base_model(name)  # ModelNotFound before any GPU time
        devices.check_torch(self.device_name)  # DeviceUnavailable, in one line, before any load
        pipelines.release()  # training loads its own copy: the kept generation pipeline goes first
        began = time.monotonic()
        team = distributed.current()
        on = self._team_device(team)
        plan = training_plan(request, team.world)
        if team.world.several:  # the other processes train beside this one (distributed.py)
            self._hand_out(request, name, plan, team)
            team.begin(on.cuda, on.where)
        choose = memory_chooser(base, on, plan, request.memory_plan)  # GpuMemoryTooSmall here
        pictures = work_dir / "pictures"
        pictures.mkdir(parents=True, exist_ok=True)
        examples = training.read_dataset(request.dataset_zip, pictures, request.trigger_word)
        files = request.checkpoints or FolderFiles(work_dir / "checkpoints")
        meter = Monotonic(progress)
        request_id = outcome.request_id(training.fingerprint(name, plan, examples), files)
        watch, continued = request.watch, request.continue_from
        if team.world.several:
            files = distributed.SharedFiles(files, team)
            watch = distributed.Leading(watch, team) if watch is not None else None
            continued = _shared(continued, team)
        with outcome.kept(began, request_id, self.gpus):
            trained = training.train(
                base,
                examples,
                plan,
                on,
                work_dir,
                files,
                lambda step, steps: meter(100.0 * step / steps),
                metadata={"contentgen.provider": self.name, "contentgen.base_model": name},
                choose=choose,
                watch=watch,
                drawers=partial(SharedPictures, self, team, work_dir),
                continued=continued,
                gpus=self.gpus,
                team=team,
            )
        return outcome.output(
            trained,
            began=began,
            request_id=request_id,
            gpus=self.gpus,
            files=self._trained_files(work_dir, trained, plan, name, len(examples)),
            details={"processes": team.world.size, "batchSize": plan.batch},
        )

    def _trained_files(
        self, work_dir: Path, trained: training.Trained, plan: training.Plan, name: str, images: int
    ) -> tuple[Path, Path, Path]:
        """The training's outputs in `work_dir`: its newest checkpoint's LoRA, its config (the same
        on every attempt: stored once) and every step's loss (the killed attempts' kept in the state,
        a continued version's before them)."""
        weights = work_dir / "model.safetensors"
        shutil.copyfile(trained.final, weights)
        config = work_dir / "config.json"
        config.write_text(
            json.dumps(
                {
                    "provider": self.name,
                    "base_model": name,
                    "steps": plan.steps,
                    "rank": plan.rank,
                    "learning_rate": plan.learning_rate,
                    "resolution": plan.resolution,
                    "checkpoint_every": plan.checkpoint_every,
                    "optimizer": plan.optimizer,
                    "lora_targets": plan.targets,
                    "guidance": plan.guidance,
                    "timestep_sampling": plan.timestep_sampling,
                    "max_grad_norm": plan.max_grad_norm,
                    "memory_plan": trained.memory.base,
                    "images": images,
                    **(
                        {
                            "continue_from": {
                                "version": trained.continued.version,
                                "step": trained.continued.step,
                            }
                        }
                        if trained.continued is not None
                        else {}
                    ),
                },
                indent=1,
            )
        )
        loss = work_dir / "training-loss.json"
        loss.write_text(json.dumps({"steps": [[s, v] for s, v in trained.losses]}, separators=(",", ":")))
        return weights, config, loss

    # --- image generation ---------------------------------------------------------------------

    def weights_of(self, model: str) -> str:
        """What a picture of `model` depends on besides its prompt, seed and LoRAs: the staged base
        model and the steps (another of either makes another likeness baseline)."""
        schnell = model == "flux-schnell"
        name = self.schnell_model if schnell else self.flux_model
        steps = self.inference_steps or (generation.SCHNELL_STEPS if schnell else generation.DEV_STEPS)
        return f"{model}.{name}.{steps}-steps"

    def generate_images(
        self, request: ImageRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> list[ImageOutput]:
        """Picture by picture, each kept in `request.outputs` as it is made (a folder of the work
        directory without one): a retried pod takes those and makes only the rest (`pictures`)."""
        if request.model == "flux-pro":
            raise InvalidInput(
                "model flux-pro has no open weights: use flux-dev or flux-lora with provider cluster"
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
        inputs = _inputs(request, wanted, self._model_name(request))
        seed = folder.begin(inputs, request.seed, secrets.randbelow(generation.SEEDS))
        seeds = {n: generation.picture_seed(seed, n) for n in range(1, request.num_images + 1)}
        made = folder.taken(request.num_images, seeds)
        todo = tuple((n, s) for n, s in seeds.items() if n not in made)
        if todo:
            draw_rest(request, replace(wanted, pictures=todo), folder, made, work_dir, progress)
        progress(100)
        return [
            ImageOutput(
                path=made[n].path,
                width=wanted.width,
                height=wanted.height,
                content_type="image/png",
                seed=made[n].seed,
                request_id=made[n].request_id,
                gpu_seconds=made[n].gpu_seconds,
                memory_plan=made[n].memory_plan,
            )
            for n in sorted(made)
        ]

    def _drawing(self, request: ImageRequest) -> DrawRequest:
        """What to draw for `request` (its pictures not yet chosen): the model's steps and
        guidance, the size in pixels."""
        schnell = request.model == "flux-schnell"
        width, height = self.sizes[request.image_size]
        return DrawRequest(
            owner=request.owner,
            prompt=request.prompt,
            width=width,
            height=height,
            steps=self.inference_steps or (generation.SCHNELL_STEPS if schnell else generation.DEV_STEPS),
            guidance=0.0 if schnell else generation.DEV_GUIDANCE,
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
        base = self.base_model(self._model_name(request)) if not pooled else Path()
        loras = [
            (self._fetch_lora(lora.url, work_dir, n), lora.scale) for n, lora in enumerate(request.loras)
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

    def _model_name(self, request: ImageRequest) -> str:
        return self.schnell_model if request.model == "flux-schnell" else self.flux_model

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
        from . import flux, pipelines

        devices.check_torch(self.device_name)  # DeviceUnavailable, in one line, before any load
        began = time.monotonic()
        on = flux.device(self.device_name)
        # the memory plan (GpuMemoryTooSmall with the numbers before any load), then the pipeline
        # loaded once per process for it and kept; LoRAs and VAE tiling per request
        plan = memory.choose_generation(
            flux.card(on),
            flux.count(base).sizes,
            memory.GenerationJob(wanted.width, wanted.height),
            wanted.memory_plan,
        )
        described = plan.describe()
        log.info("memory plan: %s", described)
        plain = plan.base == "bf16" and not plan.offload
        pipe = pipelines.pipeline(
            base,
            on,
            variant=() if plain else (plan.base, plan.offload),
            load=None if plain else partial(flux.load_pipeline, plan=plan),
        )
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
                path = generation.draw(pipe, picture, folder / f"drawn-{number}.png", cancelled)
                if cancelled():  # stopped within the picture: not the picture asked for
                    path.unlink(missing_ok=True)
                    return
                now = time.monotonic()
                held, began = now - began, now
                yield Drawn(number, seed, path, self._gpu_seconds(held, on), described)

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

    def _fetch_lora(self, url: str, work_dir: Path, number: int) -> Path:
        """A LoRA file from a file:// path (a local store) or an http(s) URL (presigned)."""
        target = work_dir / f"lora-{number}.safetensors"
        parsed = urlparse(url)
        if parsed.scheme == "file":
            source = Path(unquote(parsed.path))
            if not source.is_file():
                raise InvalidInput(f"loras[{number}]: {url} does not exist")
            shutil.copyfile(source, target)
            return target
        if parsed.scheme not in ("http", "https"):
            raise InvalidInput(f"loras[{number}]: cannot fetch {url}: use https://, s3:// or a LoraTraining")
        try:
            with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:  # noqa: S310
                copied = 0
                while chunk := response.read(1024 * 1024):
                    copied += len(chunk)
                    if copied > LORA_LIMIT:
                        raise InvalidInput(f"loras[{number}]: {url} is larger than 2 GiB")
                    out.write(chunk)
        except OSError as exc:
            raise TransientError(
                f"loras[{number}]: could not fetch {url} ({exc})", reason="SourceUnavailable"
            ) from None
        return target


def training_plan(request: TrainingRequest, team: distributed.World | None = None) -> training.Plan:
    """The trainer's plan of a training request (`training.Plan`): its batch the request's, else
    one sample per process of `team`."""
    from . import training

    return training.Plan(
        batch=request.batch_size or (team.size if team is not None else 1),
        steps=request.steps,
        rank=request.rank,
        learning_rate=request.learning_rate or DEFAULT_LEARNING_RATE,
        resolution=request.resolution,
        checkpoint_every=request.checkpoint_every,
        optimizer="adamw8bit" if request.optimizer == "adamw8bit" else "adamw",
        targets=request.lora_targets,  # type: ignore[arg-type]
        guidance=request.guidance,
        timestep_sampling=request.timestep_sampling,  # type: ignore[arg-type]
        max_grad_norm=request.max_grad_norm,
    )


def memory_chooser(
    base: Path, on: flux.Device, plan: training.Plan, wanted: str
) -> Callable[[str | None], memory.MemoryPlan]:
    """The memory plan's choice for training `plan` on `base`, checked now, before anything is
    loaded (GpuMemoryTooSmall with the numbers); the chooser gives the `wanted` plan, or on a retry
    the one its stored state was trained with."""
    from . import flux

    counted, card = flux.count(base), flux.card(on)
    job = memory.TrainingJob(
        resolution=plan.resolution,
        lora_parameters=counted.lora_parameters(plan.targets, plan.rank),
        optimizer=plan.optimizer,
    )
    memory.choose_training(card, counted.sizes, job, wanted)

    def choose(stored: str | None) -> memory.MemoryPlan:
        chosen = memory.choose_training(card, counted.sizes, job, stored or wanted)
        return replace(chosen, chosen_by="resumed") if stored and card.gpu else chosen

    return choose


@dataclass(frozen=True)
class Followed:
    """What rank 0 hands the other processes of a training (distributed.Team.publish)."""

    model: str
    plan: training.Plan
    memory_plan: str
    dataset: bytes  # the dataset's archive
    trigger_word: str
    metadata: dict[str, str]
    prompts: tuple[str, ...] | None  # the watch's prompts; None: no watch
    continued: tuple[int, int | None] | None  # training.continueFrom's version and step


def _shared(continued: Continued | None, team: distributed.Team) -> Continued | None:
    if continued is None:
        return None
    return replace(continued, files=distributed.SharedFiles(continued.files, team))


def follow_training(work: Followed, team: distributed.Team) -> None:
    """A follower's entry (distributed.follow): this pod's cluster provider, from its environment."""
    import os
    import tempfile

    from contentgen.providers.settings import ClusterWorkerSettings, ProviderSettings, from_environment

    settings, worker = from_environment(ProviderSettings), from_environment(ClusterWorkerSettings)
    provider = ClusterProvider(  # as providers.cluster_provider makes rank 0's
        worker.cluster_models_dir,
        flux_model=settings.cluster_flux_model,
        schnell_model=settings.cluster_flux_schnell_model,
        device=worker.cluster_device,
        gpus=worker.gpu_count,
        inference_steps=settings.cluster_inference_steps or None,
        models_store=worker.cluster_models_store,
    )
    root = Path(os.environ.get("CONTENTGEN_WORK_DIR") or tempfile.gettempdir())
    work_dir = root / f"rank-{team.world.rank}"
    work_dir.mkdir(parents=True, exist_ok=True)
    provider.follow(work, team, work_dir)
