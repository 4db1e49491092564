"""A LoraTraining's training plan: what the spec asks of a trainer, typed once from the base-model
table (api/base_models.py) and handed as it is from the pipeline to the provider and, on the
cluster, to the model family that trains it (providers/cluster/families/).

"Base model" means three things in a training, each named apart here:

- `base`: what the LoRA is made for (`training.baseModel`: FLUX.1, a Wan model), the table's row;
- `app`: what the provider is asked to train with: fal's trainer app, or `training.model` as the
  person wrote it where it names no app of fal's;
- `staged`: on the cluster, the staged directory `training.model` names (a directory under the
  models' root), "" where it names none (the base's own directory, or the cluster's FLUX model).

A base model the table does not know is an error (`base_model`), never FLUX.1."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..base_models import (
    DEFAULT_BASE_MODEL,
    FAL_TRAINERS,
    BaseModelInfo,
    Trainer,
    base_model,
    media_of,
    trainer_of,
)
from ..providers import OWN_GPUS
from .spec import DEFAULT_TRAINING_MODEL, LoraTrainingSpec


@dataclass(frozen=True)
class Route:
    """Who trains a base model and from what: the table's row, fal's trainer (None off fal, or for
    a `training.model` fal's table lacks), the app asked for, the dataset's media."""

    base: BaseModelInfo
    trainer: Trainer | None
    app: str
    stills: bool
    clips: bool

    @property
    def clips_only(self) -> bool:
        return self.clips and not self.stills


def route(base: str, model: str, media: str, provider: str) -> Route:
    """The route of a training of `base` (training.baseModel) with `model` (training.model) and
    `media` (dataset.media) on `provider` (pure); InvalidInput for a base the table lacks."""
    info = base_model(base)
    trainer = trainer_of(info.name, provider, model, DEFAULT_TRAINING_MODEL)
    stills, clips = media_of(info.name, media, trainer)
    app = trainer.app if trainer else model
    if trainer is None and info.name != DEFAULT_BASE_MODEL and model == DEFAULT_TRAINING_MODEL:
        # off fal (the cluster, offline's simulation): the trainer it stands for, not FLUX's default
        app = info.fal_trainers[0].app if info.fal_trainers else info.name
    return Route(info, trainer, app, stills, clips)


def route_of(spec: Mapping[str, Any], provider: str) -> Route:
    """`route` of a LoraTraining's spec as the API server stores it (camelCase; pricing's)."""
    training, dataset = spec.get("training") or {}, spec.get("dataset") or {}
    return route(
        str(training.get("baseModel") or ""),
        str(training.get("model") or DEFAULT_TRAINING_MODEL),
        str(dataset.get("media") or "auto"),
        provider,
    )


@dataclass(frozen=True)
class TrainingPlan:
    """What a run asks its trainer (see the module): the route, and training's settings as the
    spec gives them (`learning_rate` None: the trainer's default; `batch_size` 0: one per process)."""

    route: Route
    steps: int = 1000
    learning_rate: float | None = None
    rank: int = 16
    resolution: int = 512
    checkpoint_every: int = 0
    optimizer: str = "adamw"
    memory_plan: str = "auto"
    lora_targets: str = "attention+feedforward"
    guidance: float = 1.0
    timestep_sampling: str = "shift"
    max_grad_norm: float = 1.0
    batch_size: int = 0

    @property
    def base(self) -> BaseModelInfo:
        return self.route.base

    @property
    def app(self) -> str:
        return self.route.app

    @property
    def staged(self) -> str:
        """The staged directory training.model names ("" where it names fal's app, the base model
        or nothing: the base's own)."""
        model = self.route.app
        if model in FAL_TRAINERS or model in (self.base.name, DEFAULT_TRAINING_MODEL, ""):
            return ""
        return model


def plan_of(spec: LoraTrainingSpec, provider: str) -> TrainingPlan:
    """The plan of a run of `spec` on `provider`: built once, where the run starts."""
    training = spec.training
    return TrainingPlan(
        route=route(training.base_model, training.model, spec.dataset.media, provider),
        steps=training.steps,
        learning_rate=training.learning_rate,
        rank=training.rank,
        resolution=training.resolution,
        checkpoint_every=training.checkpoint_every,
        optimizer=training.optimizer,
        memory_plan=training.memory_plan,
        lora_targets=training.lora_targets,
        guidance=training.guidance,
        timestep_sampling=training.timestep_sampling,
        max_grad_norm=training.max_grad_norm,
        batch_size=training.batch_size or 0,
    )


def plan_for(
    base: str = "flux.1", app: str = DEFAULT_TRAINING_MODEL, provider: str = OWN_GPUS, **settings: Any
) -> TrainingPlan:
    """A plan of `base` trained with `app` on `provider` from the media the base takes, without a
    spec (a benchmark's, the tests')."""
    return TrainingPlan(route=route(base, app, "auto", provider), **settings)
