"""FLUX.1 as a family of the training framework (training/family.py), as diffusers' DreamBooth LoRA
example for FLUX trains it:

- the captions' text encodings and the pictures' latents are computed once, then the text
  encoders and the VAE leave the device (only the transformer trains; the VAE stays on the CPU
  where the watch's pictures are drawn);
- the base transformer stored as the memory plan says (memory.py: bf16, an 8-bit or a 4-bit base);
- flow matching: a picture's latents x0, noise e, a noise level σ drawn as `timestep_sampling`
  says (FLUX's resolution-dependent shift, logit-normal or the scheduler's uniform schedule); the
  transformer sees (1 − σ) x0 + σ e at guidance `guidance` (1.0) and is taught the velocity e − x0
  (mean squared error);
- a LoRA on the layers of `targets` (lora_files.target_modules);
- the watch's pictures drawn by the FLUX this process holds (flux_live.py), in shares where several
  processes train (flux_shared.py)."""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from contentgen.api.base_models import BaseModelInfo
from contentgen.api.lora.plan import TrainingPlan
from contentgen.errors import InvalidInput

from .. import memory
from ..generation import flux, lora_files
from ..generation.flux import Device
from ..training import adapters
from ..training.adapters import Expert
from ..training.family import Job, Sample
from ..training.loop import fingerprint as digest
from ..training.state import lora_name

ONE = "transformer"


@dataclass(frozen=True)
class Example:
    picture: Path
    caption: str


def read_dataset(archive: Path, folder: Path, trigger_word: str) -> list[Example]:
    """The pictures of a dataset archive with their captions (captions/0001.txt or 0001.txt next
    to the picture; the trigger word alone where neither is there)."""
    suffixes = (".jpg", ".jpeg", ".png", ".webp")
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        pictures = sorted(n for n in names if n.lower().endswith(suffixes) and not n.endswith("/"))
        examples: list[Example] = []
        for name in pictures:
            stem = Path(name).stem
            target = folder / f"{len(examples):04d}{Path(name).suffix.lower()}"
            target.write_bytes(zf.read(name))
            caption_names = (f"captions/{stem}.txt", str(Path(name).with_suffix(".txt")))
            caption = next((zf.read(c).decode("utf-8").strip() for c in caption_names if c in names), "")
            examples.append(Example(target, caption or trigger_word))
    if not examples:
        raise InvalidInput(f"the dataset {archive.name} holds no pictures")
    return examples


class FluxFamily:
    name = "FLUX.1"
    spreads = True
    outputs: tuple[str, ...] = ("model.safetensors",)

    def staged(self, plan: TrainingPlan, flux_model: str) -> str:
        return plan.staged or flux_model

    def required(self, base: BaseModelInfo) -> tuple[str, ...]:
        return flux.REQUIRED

    def examples(self, archive: Path, folder: Path, trigger_word: str) -> list[Any]:
        folder.mkdir(parents=True, exist_ok=True)
        return list(read_dataset(archive, folder, trigger_word))

    def fingerprint(self, job: Job) -> str:
        """The staged model's name, the plan (its first step and batch as states before them had
        them) and the pictures with their captions."""
        examples = job.examples
        parts = [job.staged, job.plan.stated("first", "batch")]
        return digest(parts, [e.picture for e in examples], [e.caption for e in examples])

    def memory(self, job: Job) -> Callable[[str], Any]:
        counted, card = flux.count(job.model_dir), flux.card(job.on)
        plan = job.plan
        lora = counted.lora_parameters(plan.targets, plan.rank)
        training = memory.TrainingJob(
            resolution=plan.resolution, lora_parameters=lora, optimizer=plan.optimizer
        )
        return lambda wanted: memory.choose_training(card, counted.sizes, training, wanted)

    def load(self, job: Job, chosen: Any) -> FluxModel:
        """The pipeline with its transformer stored as `chosen` says, the examples' latents and
        captions' encodings cached, the watch's prompts encoded, the adapter added."""
        on, plan = job.on, job.plan
        pipe = flux.load_for_training(job.model_dir, on, chosen)
        latents, texts = _cache(pipe, job.examples, plan.resolution, on)
        prompts = list(job.watch.prompts()) if job.watch is not None and job.drawers is not None else []
        encoded = {p: _on(flux.encode_prompt(pipe, p), on) for p in prompts}
        _keep_only_the_transformer(pipe, chosen, on, keep_vae=bool(encoded))
        transformer = pipe.transformer
        targets = lora_files.target_modules(adapters.linear_layers(transformer), plan.targets)
        expert = adapters.with_adapter(ONE, transformer, plan, targets)
        drawer = None
        if encoded:
            from .flux_shared import SharedPictures

            drawer = SharedPictures(job.drawers, job.team, job.work_dir, pipe, encoded, on, chosen)
        return FluxModel([expert], drawer, latents, texts, _NoiseLevels(pipe.scheduler, plan), job)

    def config(self, job: Job) -> dict[str, Any]:
        return {"guidance": job.plan.guidance, "images": len(job.examples)}


FLUX = FAMILY = FluxFamily()


class _NoiseLevels:
    """The scheduler's noise levels as one step draws from them."""

    def __init__(self, scheduler: Any, plan: Any) -> None:
        self.sigmas = scheduler.sigmas.to(torch.float32)
        self.timesteps = scheduler.timesteps.to(torch.float32)
        self.image_tokens = (plan.resolution // 16) ** 2
        self.config = scheduler.config


@dataclass
class FluxModel:
    experts: list[Expert]
    drawer: Any
    latents: list[torch.Tensor]
    texts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    levels: _NoiseLevels
    job: Job

    def sample(self, generator: torch.Generator) -> Sample:
        """One sample's draws, in this order: the example, the noise, the noise level."""
        index = int(torch.randint(len(self.latents), (1,), generator=generator))
        noise = torch.randn(self.latents[index].shape, generator=generator)
        levels = self.levels
        sigma, timestep = draw_sigma(
            self.job.plan.timestep_sampling,
            generator,
            levels.sigmas,
            levels.timesteps,
            levels.image_tokens,
            levels.config,
        )
        return Sample(ONE, float(timestep), (index, noise, sigma, timestep))

    def loss(self, sample: Sample, expert: Expert) -> torch.Tensor:
        """The flow-matching loss of one drawn sample."""
        index, noise, sigma, timestep = sample.drawn
        on, transformer = self.job.on, expert.transformer
        x0 = self.latents[index]
        noise, sigma, timestep = noise.to(on.where, torch.float32), sigma.to(on.where), timestep.to(on.where)
        noisy = ((1.0 - sigma) * x0 + sigma * noise).to(on.dtype)
        embeds, pooled, text_ids = self.texts[index]
        height, width = x0.shape[-2:]
        guidance = torch.full((1,), self.job.plan.guidance, device=on.where, dtype=on.dtype)
        prediction = transformer(
            hidden_states=flux.pack(noisy),
            timestep=(timestep / 1000).expand(1).to(on.dtype),
            guidance=guidance if transformer.config.guidance_embeds else None,
            pooled_projections=pooled,
            encoder_hidden_states=embeds,
            txt_ids=text_ids,
            img_ids=flux.image_ids(height, width, on),
            return_dict=False,
        )[0]
        return torch.nn.functional.mse_loss(flux.unpack(prediction, height, width).float(), noise - x0)

    def place(self, name: str) -> Expert:
        return self.experts[0]

    def files(self, step: int) -> list[tuple[str, dict[str, str]]]:
        return [(lora_name(step), {})]


def draw_sigma(
    sampling: str,
    generator: torch.Generator,
    sigmas: torch.Tensor,
    timesteps: torch.Tensor,
    image_tokens: int,
    config: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step's noise level and its timestep (σ × the training timesteps), from `generator`
    (training/adapters.noise_level): uniform a timestep of the scheduler's training schedule, each
    as likely (FLUX's schedule is unshifted at training: half the draws above σ 0.5); shift a
    uniform draw shifted as FLUX's sampler shifts its schedule for `image_tokens` (μ from the
    scheduler's base_shift/max_shift over base/max image tokens, σ' = e^μ / (e^μ + 1/σ − 1)): at
    1024 px 76 % of draws above 0.5, at 512 px 65 %."""

    def uniform(drawn: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        at = int(torch.rand(1, generator=drawn) * len(timesteps))
        return sigmas[at], timesteps[at]

    mu = flux_shift(image_tokens, config)
    scale = float(getattr(config, "num_train_timesteps", 1000))
    return adapters.noise_level(
        sampling, generator, lambda u: math.exp(mu) / (math.exp(mu) + (1.0 / u - 1.0)), scale, uniform
    )


def flux_shift(image_tokens: int, config: Any) -> float:
    """FLUX's mu for a picture of `image_tokens` tokens: linear from base_shift at
    base_image_seq_len to max_shift at max_image_seq_len (diffusers' `calculate_shift`; 0.5 at 256
    tokens, 1.15 at 4096)."""
    base_tokens = float(getattr(config, "base_image_seq_len", 256))
    max_tokens = float(getattr(config, "max_image_seq_len", 4096))
    base_shift = float(getattr(config, "base_shift", 0.5))
    max_shift = float(getattr(config, "max_shift", 1.15))
    slope = (max_shift - base_shift) / (max_tokens - base_tokens)
    return image_tokens * slope + (base_shift - slope * base_tokens)


def _on(encoded: Sequence[torch.Tensor], on: Device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    embeds, pooled, ids = encoded
    return embeds.to(on.where, on.dtype), pooled.to(on.where, on.dtype), ids.to(on.where, on.dtype)


def _keep_only_the_transformer(pipe: Any, chosen: memory.MemoryPlan, on: Device, *, keep_vae: bool) -> None:
    """Only the transformer trains: the encoders go (their outputs are cached), and the VAE unless
    a watch's pictures are drawn (kept on the CPU, on the device only to decode)."""
    import gc

    pipe.text_encoder = pipe.text_encoder_2 = None
    if keep_vae:
        pipe.vae.to("cpu")
    else:
        pipe.vae = None
    gc.collect()
    if chosen.base != "nf4":  # bitsandbytes placed its 4-bit weights as it loaded them
        pipe.transformer.to(on.where)
    if on.cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(on.where)


def _cache(
    pipe: Any, examples: Sequence[Example], resolution: int, on: Device
) -> tuple[list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    """Each picture's latents (fp32) and each caption's encodings, computed once (where the
    encoders are), kept on the device the transformer trains on."""
    texts: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    latents = []
    for example in examples:
        if example.caption not in texts:
            texts[example.caption] = _on(flux.encode_prompt(pipe, example.caption), on)
        picture = flux.encode_picture(pipe, pixels(example.picture, resolution))
        latents.append(picture.float().to(on.where))
    return latents, [texts[e.caption] for e in examples]


def pixels(path: Path, resolution: int) -> torch.Tensor:
    """The picture's centre square at `resolution` (a multiple of 16), 1 × 3 × R × R in [-1, 1]."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as opened:
        picture = opened.convert("RGB")
    side = min(picture.size)
    left, top = (picture.width - side) // 2, (picture.height - side) // 2
    square = picture.crop((left, top, left + side, top + side)).resize(
        (resolution, resolution), Image.Resampling.BICUBIC
    )
    array = np.asarray(square, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0)
