"""provider cluster's LoRA trainer for a Wan base model (`training.baseModel` wan-*): the staged
model found (ModelNotFound before any GPU time), the memory plan checked before anything is
loaded (GpuMemoryTooSmall with the numbers), the training run (wan_training.py), and what the
version stores from it: `model.safetensors` (the one transformer's LoRA, or Wan 2.2 A14B's
high-noise expert's), `model-low-noise.safetensors` (the low-noise expert's), `config.json` and
`training-loss.json`; the pipeline writes each in ComfyUI's layout beside them
(pipeline/lora_formats.py). Billed as FLUX's training is: the GPU time it held, the watch's clips
left out (each billed as a picture).

The staged directory is the base model's published diffusers repository's (api/base_models.py's
`cluster_dir`: Wan2.1-T2V-1.3B-Diffusers, Wan2.1-T2V-14B-Diffusers, Wan2.1-I2V-14B-480P-Diffusers,
Wan2.2-T2V-A14B-Diffusers, Wan2.2-I2V-A14B-Diffusers); a `training.model` naming another staged
directory (not one of fal's trainers) trains on that one."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from contentgen.api.base_models import FAL_TRAINERS, BaseModelInfo, base_model
from contentgen.providers.base import TrainingOutput, TrainingRequest
from contentgen.providers.progress import Monotonic, SubProgress

from .. import devices
from ..files import FolderFiles
from ..generation.video_models import WAN_I2V_REQUIRED, WAN_REQUIRED
from ..models import model_dir
from . import wan_memory

if TYPE_CHECKING:
    from ..generation import flux
    from ..training import loop as training

DEFAULT_LEARNING_RATE = 1e-4  # as FLUX's (provider.py)


class ClusterProvider(Protocol):
    """What this trainer takes of provider cluster (provider.py's ClusterProvider)."""

    name: str
    root: Path
    models_store: str
    device_name: str
    gpus: int
    inference_steps: int | None


def staged_name(info: BaseModelInfo, model: str) -> str:
    """The staged directory a training of `info` uses: its own, unless training.model names another
    (fal's trainers, the base model's name and FLUX's default trainer name none) (pure)."""
    from contentgen.api.lora import DEFAULT_TRAINING_MODEL

    if model in FAL_TRAINERS or model in (info.name, DEFAULT_TRAINING_MODEL, ""):
        return info.cluster_dir
    return model


def required(info: BaseModelInfo) -> tuple[str, ...]:
    """What the staged directory holds: Wan's components, Wan 2.1 image-to-video's image encoder,
    Wan 2.2 A14B's second transformer."""
    wanted = WAN_I2V_REQUIRED if info.name == "wan-2.1-i2v-14b" else WAN_REQUIRED
    return (*wanted, "transformer_2") if info.experts is not None else wanted


def train_wan(
    provider: ClusterProvider, request: TrainingRequest, work_dir: Path, progress: SubProgress
) -> TrainingOutput:
    from ..generation import flux, pipelines
    from ..training import loop as training
    from ..training import outcome
    from . import wan_data, wan_models, wan_training

    info = base_model(request.base_model)
    name = staged_name(info, request.model)
    base = staged(provider, name, required(info))  # ModelNotFound before any GPU time
    devices.check_torch(provider.device_name)  # DeviceUnavailable, in one line, before any load
    pipelines.release()  # training loads its own copy: a kept generation pipeline goes first
    began = time.monotonic()
    on = flux.device(provider.device_name)
    plan = training.Plan(
        steps=request.steps,
        rank=request.rank,
        learning_rate=request.learning_rate or DEFAULT_LEARNING_RATE,
        resolution=request.resolution,
        checkpoint_every=request.checkpoint_every,
        optimizer="adamw8bit" if request.optimizer == "adamw8bit" else "adamw",
        targets=request.lora_targets,  # type: ignore[arg-type]
        timestep_sampling=request.timestep_sampling,  # type: ignore[arg-type]
        max_grad_norm=request.max_grad_norm,
    )
    folder = work_dir / "examples"
    folder.mkdir(parents=True, exist_ok=True)
    examples = wan_data.read_dataset(request.dataset_zip, folder, request.trigger_word)
    choose = memory_chooser(base, on, plan, request.memory_plan, examples)  # GpuMemoryTooSmall here
    files = request.checkpoints or FolderFiles(work_dir / "checkpoints")
    boundary = info.experts.boundary if info.experts is not None else None
    identity = wan_training.fingerprint(name, plan, examples, wan_models.experts_of(base, boundary))
    request_id = outcome.request_id(identity, files)
    meter = Monotonic(progress)
    # an image-to-video model's clips need a picture the evaluation does not give: none drawn
    drawers = None if wan_models.image_to_video(base) else _drawers(provider, name)
    with outcome.kept(began, request_id, provider.gpus):
        trained = wan_training.train(
            base,
            examples,
            plan,
            on,
            work_dir,
            files,
            lambda step, steps: meter(100.0 * step / steps),
            metadata={
                "contentgen.provider": provider.name,
                "contentgen.base_model": name,
                "contentgen.training_base_model": info.name,
            },
            choose=choose,
            table_boundary=boundary,
            watch=request.watch,
            drawers=drawers,
            continued=request.continue_from,
            gpus=provider.gpus,
        )
    weights, low, config, loss = outputs(work_dir, trained, plan, name, info, len(examples))
    boundaries = {"boundary": trained.experts.boundary} if trained.experts is not None else {}
    return outcome.output(
        trained,
        began=began,
        request_id=request_id,
        gpus=provider.gpus,
        files=(weights, config, loss),
        details=boundaries,
        low_noise_weights=low,
    )


def _drawers(provider: ClusterProvider, model: str) -> Any:
    from functools import partial

    from .wan_live import InLoopClips

    return partial(InLoopClips, provider, model)


def staged(provider: ClusterProvider, name: str, wanted: tuple[str, ...]) -> Path:
    if provider.models_store:
        from ..staging import staged as from_store

        return from_store(name, wanted, root=provider.root, url=provider.models_store)
    return model_dir(name, wanted, root=provider.root)


def memory_chooser(
    base: Path,
    on: flux.Device,
    plan: training.Plan,
    wanted: str,
    examples: list[Any],
) -> Callable[[str | None], wan_memory.WanPlan]:
    """The memory plan's choice for training `plan` on `base`, checked now, before anything is
    loaded; the chooser gives the `wanted` plan, or on a retry the base its stored state had."""
    from ..generation import flux
    from . import wan_data, wan_models

    counted, card = wan_models.count(base), flux.card(on)
    usable = [e for e in examples if e.kind == "clip"] if wan_models.image_to_video(base) else examples
    width, height, frames = wan_data.largest(usable or examples, plan.resolution)
    job = wan_memory.WanJob(
        width, height, frames, counted.lora_parameters(plan.targets, plan.rank), plan.optimizer
    )
    wan_memory.choose_training(card, counted.sizes, job, wanted)

    def choose(stored: str | None) -> wan_memory.WanPlan:
        chosen = wan_memory.choose_training(card, counted.sizes, job, stored or wanted)
        return replace(chosen, chosen_by="resumed") if stored and card.gpu else chosen

    return choose


def outputs(
    work_dir: Path,
    trained: Any,
    plan: training.Plan,
    name: str,
    info: BaseModelInfo,
    examples: int,
) -> tuple[Path, Path | None, Path, Path]:
    """The version's files from the training: its LoRA(s), its config (the same on every attempt)
    and every step's loss."""
    weights = work_dir / "model.safetensors"
    shutil.copyfile(trained.final, weights)
    low = None
    if trained.final_low is not None:
        low = work_dir / "model-low-noise.safetensors"
        shutil.copyfile(trained.final_low, low)
    config = work_dir / "config.json"
    config.write_text(
        json.dumps(
            {
                "provider": "cluster",
                "base_model": name,
                "training_base_model": info.name,
                "steps": plan.steps,
                "rank": plan.rank,
                "learning_rate": plan.learning_rate,
                "resolution": plan.resolution,
                "checkpoint_every": plan.checkpoint_every,
                "optimizer": plan.optimizer,
                "lora_targets": plan.targets,
                "timestep_sampling": plan.timestep_sampling,
                "max_grad_norm": plan.max_grad_norm,
                "memory_plan": trained.memory.base,
                "examples": examples,
                **(
                    {
                        "experts": {
                            "boundary": trained.experts.boundary,
                            "model.safetensors": "high-noise expert (transformer)",
                            "model-low-noise.safetensors": "low-noise expert (transformer_2)",
                        }
                    }
                    if trained.experts is not None
                    else {}
                ),
                **(
                    {"continue_from": {"version": trained.continued.version, "step": trained.continued.step}}
                    if trained.continued is not None
                    else {}
                ),
            },
            indent=1,
        )
    )
    loss = work_dir / "training-loss.json"
    loss.write_text(json.dumps({"steps": [[s, v] for s, v in trained.losses]}, separators=(",", ":")))
    return weights, low, config, loss
