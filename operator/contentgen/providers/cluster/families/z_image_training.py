"""Z-Image (Turbo and Base: Tongyi-MAI's 6B single-stream transformer) as a family of the training
framework (training/family.py), as diffusers' ZImagePipeline draws it:

- a caption's features are its Qwen3 encoder's second-to-last hidden states over the chat-templated
  prompt (the pipeline's `encode_prompt`), a picture's latents FLUX's 16-channel VAE's, shifted and
  scaled; both computed once, then the encoder and the VAE leave;
- the transformer takes a list of latents, each C × 1 × H × W, at the model timestep 1 − σ, and
  predicts x0 − e (the pipeline negates it into the scheduler's velocity e − x0), so it is taught
  x0 − e on (1 − σ) x0 + σ e (mean squared error), σ drawn as `timestep_sampling` says with the
  scheduler's own shift (3.0 for Turbo);
- a LoRA on the main blocks' attention (and feed-forward) layers, saved under diffusers' names
  (`transformer.layers.0.attention.to_q.lora_A.weight`), which ZImagePipeline.load_lora_weights reads;
- no in-loop pictures: provider cluster draws FLUX's models only, so a checkpoint's likeness is
  scored by the LoraTraining's evaluation after training, not between steps;
- its memory plan: the transformer in bf16, resident, estimated from its parameters counted on the
  meta device (not measured on a GPU: docs/cluster-training.md#families)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from contentgen.api.base_models import BaseModelInfo
from contentgen.api.lora.plan import TrainingPlan
from contentgen.errors import GpuMemoryTooSmall

from ..generation import flux
from ..generation.flux import Device
from ..training import adapters
from ..training.adapters import Expert
from ..training.family import Job, Sample
from ..training.loop import fingerprint as digest
from ..training.state import lora_name
from .flux_training import pixels, read_dataset

ONE = "transformer"
REQUIRED = ("model_index.json", "transformer/config.json", "text_encoder/config.json", "vae/config.json")
ATTENTION = ("attention.to_q", "attention.to_k", "attention.to_v", "attention.to_out.0")
FEEDFORWARD = ("feed_forward.w1", "feed_forward.w2", "feed_forward.w3")
GIB = 1024**3


def targets(linear_names: list[str], preset: str) -> list[str]:
    """The main blocks' (`layers.N`) linear layers a preset adapts (pure)."""
    inside = [n for n in linear_names if n.startswith("layers.")]
    suffixes = {"attention": ATTENTION, "attention+feedforward": (*ATTENTION, *FEEDFORWARD)}.get(preset)
    return inside if suffixes is None else [n for n in inside if n.endswith(suffixes)]


@dataclass(frozen=True)
class Resident:
    """The one plan: every trained weight resident in bf16 (the framework keeps `base` in each state)."""

    estimate: int
    free: int
    base: str = "bf16"

    def describe(self) -> str:
        said = f"bf16, resident: {self.estimate / GIB:.1f} GiB estimated (not measured on a GPU)"
        return f"{said}, {self.free / GIB:.1f} GiB free" if self.free else said


def estimate(parameters: int, lora: int, resolution: int) -> int:
    """Bytes a training holds: bf16 weights, the LoRA's fp32 weights, gradients and AdamW's two
    moments, and activations under gradient checkpointing taken as a quarter of the weights per
    megapixel (FLUX's planner's proportion; not measured for Z-Image)."""
    return int(parameters * 2 * (1 + 0.25 * (resolution / 1024) ** 2) + lora * 16)


class ZImageFamily:
    name = "Z-Image"
    spreads = True
    outputs: tuple[str, ...] = ("model.safetensors",)

    def staged(self, plan: TrainingPlan, flux_model: str) -> str:
        return plan.staged or plan.base.cluster_dir

    def required(self, base: BaseModelInfo) -> tuple[str, ...]:
        return REQUIRED

    def examples(self, archive: Path, folder: Path, trigger_word: str) -> list[Any]:
        folder.mkdir(parents=True, exist_ok=True)
        return list(read_dataset(archive, folder, trigger_word))

    def fingerprint(self, job: Job) -> str:
        examples = job.examples
        return digest(
            [self.name, job.staged, job.plan.stated()],
            [e.picture for e in examples],
            [e.caption for e in examples],
        )

    def memory(self, job: Job) -> Callable[[str], Any]:
        from accelerate import init_empty_weights  # type: ignore[import-untyped]
        from diffusers import ZImageTransformer2DModel

        with init_empty_weights():
            config = ZImageTransformer2DModel.load_config(str(job.model_dir / "transformer"))
            transformer = ZImageTransformer2DModel.from_config(config)  # type: ignore[no-untyped-call]
        names = adapters.linear_layers(transformer)
        wanted = set(targets(names, job.plan.targets))
        layers = [m for n, m in transformer.named_modules() if n in wanted]
        lora = sum(job.plan.rank * (m.in_features + m.out_features) for m in layers)
        needed = estimate(sum(p.numel() for p in transformer.parameters()), lora, job.plan.resolution)
        card = flux.card(job.on)
        return lambda wanted_plan: _resident(needed, card.free, job.on)

    def load(self, job: Job, chosen: Any) -> ZImageModel:
        from diffusers import ZImagePipeline

        on, plan = job.on, job.plan
        pipe = ZImagePipeline.from_pretrained(  # type: ignore[no-untyped-call]
            str(job.model_dir), torch_dtype=on.dtype
        )
        pipe.text_encoder.to(on.where)
        pipe.vae.to(on.where)
        latents, texts = _cache(pipe, job.examples, plan.resolution, on)
        transformer = pipe.transformer.to(on.where)
        pipe.text_encoder = pipe.vae = None
        if on.cuda:
            torch.cuda.empty_cache()
        expert = adapters.with_adapter(
            ONE, transformer, plan, targets(adapters.linear_layers(transformer), plan.targets)
        )
        shift = float(getattr(pipe.scheduler.config, "shift", 1.0))
        return ZImageModel([expert], None, latents, texts, shift, job)

    def config(self, job: Job) -> dict[str, Any]:
        return {"images": len(job.examples), "family": self.name}


FAMILY = ZImageFamily()


def _resident(needed: int, free: int, on: Device) -> Resident:
    if on.cuda and needed > free:
        raise GpuMemoryTooSmall(
            f"a Z-Image training needs about {needed / GIB:.1f} GiB of the GPU, "
            f"{free / GIB:.1f} GiB is free: "
            "lower training.resolution or rank, or use a bigger GPU"
        )
    return Resident(needed, free if on.cuda else 0)


def _cache(
    pipe: Any, examples: Sequence[Any], resolution: int, on: Device
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each picture's latents (fp32) and each caption's features, computed once."""
    texts: dict[str, torch.Tensor] = {}
    latents = []
    with torch.no_grad():
        for example in examples:
            if example.caption not in texts:
                features, _ = pipe.encode_prompt(
                    example.caption, device=on.where, do_classifier_free_guidance=False
                )
                texts[example.caption] = features[0].to(on.where, on.dtype)
            latents.append(
                flux.encode_picture(pipe, pixels(example.picture, resolution)).float().to(on.where)
            )
    return latents, [texts[e.caption] for e in examples]


@dataclass
class ZImageModel:
    experts: list[Expert]
    drawer: Any
    latents: list[torch.Tensor]
    texts: list[torch.Tensor]
    shift: float
    job: Job

    def sample(self, generator: torch.Generator) -> Sample:
        """One sample's draws, in this order: the example, the noise, the noise level."""
        index = int(torch.randint(len(self.latents), (1,), generator=generator))
        noise = torch.randn(self.latents[index].shape, generator=generator)
        shift = self.shift  # FlowMatchEulerDiscreteScheduler's σ' = s·σ / (1 + (s − 1)·σ)
        sigma, timestep = adapters.noise_level(
            self.job.plan.timestep_sampling, generator, lambda u: shift * u / (1 + (shift - 1) * u), 1000.0
        )
        return Sample(ONE, float(timestep), (index, noise, sigma))

    def loss(self, sample: Sample, expert: Expert) -> torch.Tensor:
        """The flow-matching loss of one drawn sample (see the module)."""
        index, noise, sigma = sample.drawn
        on = self.job.on
        x0 = self.latents[index]
        noise, sigma = noise.to(on.where, torch.float32), sigma.to(on.where)
        noisy = ((1.0 - sigma) * x0 + sigma * noise).to(on.dtype)
        prediction = expert.transformer(
            [noisy[0].unsqueeze(1)],
            (1.0 - sigma).expand(1).to(on.dtype),
            [self.texts[index]],
            return_dict=False,
        )[0][0]
        return torch.nn.functional.mse_loss(prediction.squeeze(1).float(), (x0 - noise)[0])

    def place(self, name: str) -> Expert:
        return self.experts[0]

    def files(self, step: int) -> list[tuple[str, dict[str, str]]]:
        return [(lora_name(step), {})]
