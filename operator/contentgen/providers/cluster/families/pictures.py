"""What the newer picture families share on the training framework (training/family.py): a
flow-matching transformer taught from captioned stills, the captions' features and the pictures'
latents computed once (the text encoder and the VAE then leave), a LoRA on the layers the family
names, one transformer, several processes by DDP as FLUX.1's. A family (z_image_training.py,
flux2_klein_training.py) is a `Recipe`: its diffusers classes, how it encodes a caption and a
picture, what its transformer is given and taught, and its noise levels' shift.

The watch's pictures are drawn between steps by the training's own transformer (its adapter on,
or off for the baseline), as FLUX.1's are (flux_live.py): the prompts encoded as the family's
pipeline takes them (`prompted`) before the text encoder leaves, the VAE kept on the CPU and on
the device only to decode, so a checkpoint is scored as soon as it is stored and a plateau stops
the training. What none of them has yet is measured memory plans: the transformer is held in bf16,
resident, estimated from its parameters counted on the meta device and refused before any load
where the card is short of it (`Resident`); docs/cluster-training.md#families says so."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from contentgen.api.base_models import BaseModelInfo
from contentgen.errors import GpuMemoryTooSmall

from ..generation import flux
from ..generation.flux import Device
from ..generation.generation import CallArguments
from ..training import adapters
from ..training.adapters import Expert
from ..training.family import Job, OwnDirectory, Sample
from ..training.loop import fingerprint as digest
from ..training.state import lora_name
from .flux_training import Example, pixels, read_dataset

ONE = "transformer"
REQUIRED = ("model_index.json", "transformer/config.json", "text_encoder/config.json", "vae/config.json")
GIB = 1024**3


def preset(
    linear_names: list[str],
    preset: str,
    blocks: tuple[str, ...],
    attention: tuple[str, ...],
    feedforward: tuple[str, ...],
) -> list[str]:
    """The linear layers inside `blocks` a `training.loraTargets` preset adapts (pure): those ending
    in an attention name, those and the feed-forward names, or every one (all-linear)."""
    inside = [n for n in linear_names if n.startswith(blocks)]
    suffixes = {"attention": attention, "attention+feedforward": (*attention, *feedforward)}.get(preset)
    return inside if suffixes is None else [n for n in inside if n.endswith(suffixes)]


class Recipe(Protocol):
    """A picture family's own part (see the module)."""

    name: str

    def classes(self) -> tuple[Any, Any]:
        """Its diffusers pipeline and transformer classes (imported when asked: diffusers is heavy)."""

    def targets(self, linear_names: list[str], preset: str) -> list[str]: ...
    def caption(self, pipe: Any, text: str, on: Device) -> Any:
        """A caption's features as the transformer takes them (on the device)."""

    def latents(self, pipe: Any, picture: torch.Tensor) -> torch.Tensor:
        """A picture's (1 × 3 × R × R in [-1, 1]) latents as the transformer's x0."""

    def shift(self, pipe: Any, latents: torch.Tensor) -> float:
        """The noise levels' shift s (σ' = s·σ / (1 + (s − 1)·σ)) at these latents' size."""

    def predict(
        self, transformer: Any, noisy: torch.Tensor, sigma: torch.Tensor, caption: Any
    ) -> torch.Tensor:
        """The transformer's prediction of `noisy` (x0 at noise level σ) for `caption`."""

    def taught(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """What the prediction is taught: the velocity e − x0 or its negation, as its sampler reads it."""

    def options(self, guidance: float) -> CallArguments:
        """Its pipeline's call arguments for a picture at `guidance` (what else differs: nothing)."""

    def prompted(self, pipe: Any, text: str, on: Device) -> CallArguments:
        """A prompt's encodings as its pipeline's call arguments (the negative prompt's beside them,
        for guidance), made while the text encoder is there: they stand for the prompt's words."""


@dataclass(frozen=True)
class Resident:
    """The one memory plan (the framework keeps `base` in each state)."""

    estimate: int
    free: int
    base: str = "bf16"
    experts_resident: bool = True  # its one transformer stays on the card (a drawer asks)

    def describe(self) -> str:
        said = f"bf16, resident: {self.estimate / GIB:.1f} GiB estimated (not measured on a GPU)"
        return f"{said}, {self.free / GIB:.1f} GiB free" if self.free else said


def estimate(parameters: int, lora: int, pixels: int) -> int:
    """Bytes a training holds: bf16 weights, the LoRA's fp32 weights, gradients and AdamW's two
    moments, and activations under gradient checkpointing taken as a quarter of the weights per
    megapixel of what a step sees (`pixels`: a picture's, or a clip's over its latent frames;
    FLUX.1's planner's proportion, not measured for these families)."""
    return int(parameters * 2 * (1 + 0.25 * pixels / 1024**2) + lora * 16)


def resident(
    job: Job, name: str, kind: Any, targets: Callable[[list[str], str], list[str]], pixels: int
) -> Callable[[str], Resident]:
    """The one plan for any name asked (`auto`, `bf16`), from the staged transformer's config
    (`kind`: its class) counted on the meta device; GpuMemoryTooSmall with the numbers where the
    card cannot hold it."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        transformer = kind.from_config(kind.load_config(str(job.model_dir / "transformer")))
    wanted = set(targets(adapters.linear_layers(transformer), job.plan.targets))
    layers = [m for n, m in transformer.named_modules() if n in wanted]
    lora = sum(job.plan.rank * (m.in_features + m.out_features) for m in layers)
    needed = estimate(sum(p.numel() for p in transformer.parameters()), lora, pixels)
    free = flux.card(job.on).free if job.on.cuda else 0
    if job.on.cuda and needed > free:
        raise GpuMemoryTooSmall(
            f"a {name} training needs about {needed / GIB:.1f} GiB of the GPU, {free / GIB:.1f} GiB "
            "is free: lower training.resolution or training.rank, or use a bigger GPU"
        )
    return lambda wanted_plan: Resident(needed, free)


class PictureFamily(OwnDirectory):
    spreads = True
    outputs: tuple[str, ...] = ("model.safetensors",)

    def __init__(self, recipe: Recipe) -> None:
        self.recipe, self.name = recipe, recipe.name

    def required(self, base: BaseModelInfo) -> tuple[str, ...]:
        return REQUIRED

    def examples(self, archive: Path, folder: Path, trigger_word: str) -> list[Any]:
        folder.mkdir(parents=True, exist_ok=True)
        return list(read_dataset(archive, folder, trigger_word))

    def fingerprint(self, job: Job) -> str:
        examples = job.examples
        parts = [self.name, job.staged, job.plan.stated()]
        return digest(parts, [e.picture for e in examples], [e.caption for e in examples])

    def memory(self, job: Job) -> Callable[[str], Any]:
        """The plan for any name asked (`auto`, `bf16`: there is one); see `resident`."""
        _, kind = self.recipe.classes()
        return resident(job, self.name, kind, self.recipe.targets, job.plan.resolution**2)

    def load(self, job: Job, chosen: Any) -> PictureModel:
        """The pipeline loaded, its examples' latents and captions' features cached, the encoder and
        the VAE gone, the adapter added to the transformer on the device."""
        on, plan, recipe = job.on, job.plan, self.recipe
        pipe = recipe.classes()[0].from_pretrained(str(job.model_dir), torch_dtype=on.dtype)
        pipe.text_encoder.to(on.where)
        pipe.vae.to(on.where)
        latents, captions = _cache(recipe, pipe, job.examples, plan.resolution, on)
        shift = recipe.shift(pipe, latents[0])
        prompts = job.watch.prompts() if job.watch is not None and job.drawers is not None else ()
        with torch.no_grad():
            encoded = {p: recipe.prompted(pipe, p, on) for p in prompts}
        pipe.text_encoder = None  # gone before the transformer takes the device; the VAE too,
        pipe.vae = pipe.vae.to("cpu") if encoded else None  # or on the CPU between its pictures
        if on.cuda:
            torch.cuda.empty_cache()
        transformer = pipe.transformer.to(on.where)
        expert = adapters.with_adapter(
            ONE, transformer, plan, recipe.targets(adapters.linear_layers(transformer), plan.targets)
        )
        drawer = None
        if encoded:
            from .flux_shared import SharedPictures

            def arguments(prompt: str, guidance: float) -> CallArguments:
                return {**recipe.options(guidance), **encoded[prompt]}

            drawer = SharedPictures(job.drawers, job.team, job.work_dir, pipe, encoded, on, chosen, arguments)
        return PictureModel([expert], drawer, latents, captions, shift, recipe, job)

    def config(self, job: Job) -> dict[str, Any]:
        return {"training_base_model": job.base.name, "family": self.name, "images": len(job.examples)}


def _cache(
    recipe: Recipe, pipe: Any, examples: Sequence[Example], resolution: int, on: Device
) -> tuple[list[torch.Tensor], list[Any]]:
    """Each picture's latents (fp32, on the device) and each caption's features, computed once."""
    captions: dict[str, object] = {}
    latents = []
    with torch.no_grad():
        for example in examples:
            if example.caption not in captions:
                captions[example.caption] = recipe.caption(pipe, example.caption, on)
            latents.append(recipe.latents(pipe, pixels(example.picture, resolution)).float().to(on.where))
    return latents, [captions[e.caption] for e in examples]


@dataclass
class PictureModel:
    experts: list[Expert]
    drawer: Any
    latents: list[torch.Tensor]
    captions: list[Any]
    shift: float
    recipe: Recipe
    job: Job

    def sample(self, generator: torch.Generator) -> Sample:
        """One sample's draws, in this order: the example, the noise, the noise level."""
        index = int(torch.randint(len(self.latents), (1,), generator=generator))
        noise = torch.randn(self.latents[index].shape, generator=generator)
        s = self.shift
        sigma, timestep = adapters.noise_level(
            self.job.plan.timestep_sampling, generator, lambda u: s * u / (1 + (s - 1) * u), 1000.0
        )
        return Sample(ONE, float(timestep), (index, noise, sigma))

    def loss(self, sample: Sample, expert: Expert) -> torch.Tensor:
        """The flow-matching loss of one drawn sample: (1 − σ) x0 + σ e in, the recipe's target out."""
        index, noise, sigma = sample.drawn
        on = self.job.on
        x0 = self.latents[index]
        noise, sigma = noise.to(on.where, torch.float32), sigma.to(on.where)
        noisy = ((1.0 - sigma) * x0 + sigma * noise).to(on.dtype)
        prediction = self.recipe.predict(expert.transformer, noisy, sigma, self.captions[index])
        return torch.nn.functional.mse_loss(prediction.float(), self.recipe.taught(x0, noise))

    def place(self, name: str) -> Expert:
        return self.experts[0]

    def files(self, step: int) -> list[tuple[str, dict[str, str]]]:
        return [(lora_name(step), {})]
