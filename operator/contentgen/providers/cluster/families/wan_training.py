"""Wan as a family of the training framework (training/family.py): Wan 2.1's one transformer, or
Wan 2.2 A14B's two experts trained as two LoRAs on their own timestep ranges; the framework's loop,
checkpoints, resume, continue, several processes and watch as FLUX's.

- **Cached.** Every clip's latents (the VAE over its 4k+1 frames; a still as one frame) and every
  caption's UMT5 encoding are computed once (video_data.py); the text encoder is loaded only for
  that and then dropped, the VAE too unless the watch's clips are drawn (kept on the CPU, on the
  card only to decode). Only the transformers take the card.
- **Flow matching as Wan is trained** (its sampler, diffusers' FlowMatchEulerDiscreteScheduler and
  UniPC on flow sigmas, and the trainers built for it, DiffSynth-Studio's and musubi-tuner's): a
  clip's latents x0, noise e, a noise level σ; the transformer sees (1 − σ) x0 + σ e at timestep
  1000σ and is taught the velocity e − x0 (mean squared error, unweighted). σ is drawn as
  `training.timestepSampling` says: `shift` (the default) draws σ uniformly and shifts it as the
  staged scheduler shifts its sampling (σ' = sσ / (1 + (s − 1)σ), s its flow_shift: 3.0 for Wan 2.1
  at 480p, 12.0 for Wan 2.2 T2V A14B), as DiffSynth-Studio draws from its shifted training schedule
  and musubi-tuner's `--timestep_sampling shift`; `logit-normal` and `uniform` as for FLUX.
- **Wan 2.2 A14B's experts**: each sample's draw routes it to the expert that owns its timestep
  (the high-noise `transformer` at and above the boundary × 1000, the low-noise `transformer_2`
  below: diffusers' WanPipeline's split, wan_models.Experts), whose LoRA alone learns from it, with
  its own optimizer; the other waits (in CPU memory where the plan makes the experts take turns).
  Two LoRA files come out, one per expert.
- **Image-to-video** models learn from clips: the first frame is given as WanImageToVideoPipeline
  gives it (its mask and latents concatenated to the noisy latents; Wan 2.1's CLIP image encoding
  beside the text), and its stills are left out of the steps."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from contentgen.api.base_models import BaseModelInfo
from contentgen.errors import InvalidInput

from ..generation.flux import Device, card
from ..generation.video_models import WAN_I2V_REQUIRED, WAN_REQUIRED
from ..training import adapters
from ..training.adapters import Expert
from ..training.family import Job, OwnDirectory, Sample
from ..training.loop import fingerprint as digest
from ..training.state import lora_name
from . import video_data, wan_memory, wan_models

log = logging.getLogger(__name__)

HIGH, LOW, ONE = "high", "low", "transformer"


def low_noise_name(step: int) -> str:
    return f"step-{step:06d}-low-noise.safetensors"


def draw_noise_level(
    sampling: str, generator: torch.Generator, shift: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One sample's σ and its timestep 1000σ, from `generator` (see the module)."""
    return adapters.noise_level(
        sampling, generator, lambda u: shift * u / (1 + (shift - 1) * u), wan_models.TRAIN_TIMESTEPS
    )


def flow_loss(
    transformer: Any,
    example: video_data.Cached,
    sigma: torch.Tensor,
    timestep: torch.Tensor,
    noise: torch.Tensor,
    on: Device,
    *,
    offload: bool = False,
) -> torch.Tensor:
    """One sample's flow-matching loss (see the module): the transformer's velocity at (1 − σ) x0 +
    σ e, timestep 1000σ, against e − x0; an image-to-video model's condition beside the latents. With
    `offload`, the blocks' checkpointed inputs are kept in CPU memory (the recomputed block stays on
    the card: backward runs outside this)."""
    x0, where = example.latents, on.where
    noisy = (1.0 - sigma.to(where)) * x0 + sigma.to(where) * noise
    inputs = noisy if example.condition is None else torch.cat([noisy, example.condition], dim=1)
    saving = (
        torch.autograd.graph.save_on_cpu(pin_memory=True) if offload and on.cuda else contextlib.nullcontext()
    )
    with saving:
        prediction = transformer(
            hidden_states=inputs.to(on.dtype),
            timestep=timestep.expand(1).to(where),
            encoder_hidden_states=example.text,
            encoder_hidden_states_image=example.image,
            return_dict=False,
        )[0]
    return torch.nn.functional.mse_loss(prediction.float(), noise - x0)


def share_above(boundary: float, shift: float) -> float:
    """The share of `shift` draws whose timestep is at or above `boundary` × 1000: the high-noise
    expert's share of a pair's steps (pure; σ' ≥ b where u ≥ b / (s − (s − 1) b))."""
    return 1.0 - boundary / (shift - (shift - 1.0) * boundary)


class WanFamily(OwnDirectory):
    name = "Wan"
    spreads = True
    outputs: tuple[str, ...] = ("model.safetensors", "model-low-noise.safetensors")

    def required(self, base: BaseModelInfo) -> tuple[str, ...]:
        """Wan's components, Wan 2.1 image-to-video's image encoder, Wan 2.2 A14B's second
        transformer."""
        wanted = WAN_I2V_REQUIRED if base.name == "wan-2.1-i2v-14b" else WAN_REQUIRED
        return (*wanted, "transformer_2") if base.experts is not None else wanted

    def examples(self, archive: Path, folder: Path, trigger_word: str) -> list[Any]:
        folder.mkdir(parents=True, exist_ok=True)
        return list(video_data.read_dataset(archive, folder, trigger_word))

    def fingerprint(self, job: Job) -> str:
        """The model, its experts' boundary, the plan and the examples it learns from."""
        split = experts(job)
        examples = usable(job)
        parts = ["wan", job.staged, split.boundary if split else None, job.plan.stated("first")]
        return digest(parts, [e.path for e in examples], [f"{e.kind}:{e.caption}" for e in examples])

    def memory(self, job: Job) -> Callable[[str], Any]:
        counted = wan_models.count(job.model_dir)
        width, height, frames = video_data.largest(usable(job), job.plan.resolution)
        lora = counted.lora_parameters(job.plan.targets, job.plan.rank)
        step = wan_memory.WanJob(width, height, frames, lora, job.plan.optimizer)
        on_card = card(job.on)
        return lambda wanted: wan_memory.choose_training(on_card, counted.sizes, step, wanted)

    def load(self, job: Job, chosen: Any) -> WanModel:
        """The pipeline with its transformers stored as `chosen` says, the examples cached, the
        watch's prompts encoded, an adapter on each expert."""
        pipe = wan_models.load_for_training(job.model_dir, job.on, chosen.base)
        i2v = wan_models.image_to_video(job.model_dir)
        prompts = list(job.watch.prompts()) if job.watch is not None and job.drawers is not None else []
        cached, encoded = _cache(pipe, usable(job), job.plan.resolution, job.on, chosen, prompts, i2v)
        split = experts(job)
        transformers = (
            {ONE: pipe.transformer} if split is None else {HIGH: pipe.transformer, LOW: pipe.transformer_2}
        )
        trained = [
            adapters.with_adapter(
                name, t, job.plan, wan_models.target_modules(adapters.linear_layers(t), job.plan.targets)
            )
            for name, t in transformers.items()
        ]
        drawer = _drawer(job, pipe, encoded, chosen) if encoded else None
        return WanModel(trained, drawer, cached, split, wan_models.flow_shift(pipe.scheduler), job, chosen)

    def config(self, job: Job) -> dict[str, Any]:
        split = experts(job)
        pair = (
            {
                "experts": {
                    "boundary": split.boundary,
                    "model.safetensors": "high-noise expert (transformer)",
                    "model-low-noise.safetensors": "low-noise expert (transformer_2)",
                }
            }
            if split is not None
            else {}
        )
        return {"training_base_model": job.base.name, "examples": len(usable(job)), **pair}


WAN = FAMILY = WanFamily()


def experts(job: Job) -> wan_models.Experts | None:
    boundary = job.base.experts.boundary if job.base.experts is not None else None
    return wan_models.experts_of(job.model_dir, boundary)


def usable(job: Job) -> list[video_data.Example]:
    """The examples a model learns from: an image-to-video model's clips (a still is its own first
    frame: nothing to learn), every example elsewhere."""
    examples: Sequence[video_data.Example] = job.examples
    if not wan_models.image_to_video(job.model_dir):
        return list(examples)
    clips = [e for e in examples if e.kind == "clip"]
    if not clips:
        raise InvalidInput(
            "dataset.media: an image-to-video Wan learns from clips (its first frame given, the rest "
            "learnt), and this dataset has stills only: use dataset.media auto or clips, or a text-to-video "
            "training.baseModel"
        )
    if len(clips) < len(examples):
        log.info(
            "image-to-video: %d stills left out, %d clips trained", len(examples) - len(clips), len(clips)
        )
    return clips


@dataclass
class WanModel:
    experts: list[Expert]
    drawer: Any
    cached: list[video_data.Cached]
    split: wan_models.Experts | None
    shift: float
    job: Job
    chosen: wan_memory.WanPlan
    on_card: str = ""  # the expert on the card where they take turns ("*": all of them)
    by_name: dict[str, Expert] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_name = {e.name: e for e in self.experts}

    def sample(self, generator: torch.Generator) -> Sample:
        """One sample's draws, in this order: the example, the noise level (its expert), the noise."""
        index = int(torch.randint(len(self.cached), (1,), generator=generator))
        sigma, timestep = draw_noise_level(self.job.plan.timestep_sampling, generator, self.shift)
        name = ONE if self.split is None else self.split.owner(float(timestep))
        noise = torch.randn(self.cached[index].latents.shape, generator=generator)
        return Sample(name, float(timestep), (index, sigma, timestep, noise))

    def loss(self, sample: Sample, expert: Expert) -> torch.Tensor:
        index, sigma, timestep, noise = sample.drawn
        on = self.job.on
        example = self.cached[index]
        return flow_loss(
            expert.transformer, example, sigma, timestep, noise.to(on.where), on, offload=self.chosen.offload
        )

    def place(self, name: str) -> Expert:
        """The expert `name` on the card (every expert, where the plan keeps them all there); where
        they take turns, the other waits in CPU memory with its optimizer's moments."""
        expert, on = self.by_name[name], self.job.on
        if self.on_card in (name, "*"):
            return expert
        first = not self.on_card
        if self.chosen.base != "nf4":  # bitsandbytes placed its 4-bit weights as it loaded them
            if self.chosen.experts_resident:
                for each in self.experts:
                    each.transformer.to(on.where)
            else:
                if self.on_card:
                    adapters.moved(self.by_name[self.on_card], torch.device("cpu"))
                adapters.moved(expert, on.where)
        self.on_card = "*" if self.chosen.experts_resident else name
        if on.cuda and first:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(on.where)
        return expert

    def files(self, step: int) -> list[tuple[str, dict[str, str]]]:
        """The one transformer's file, or the high-noise expert's and the low-noise one's, each
        saying which expert it loads into."""
        if self.split is None:
            return [(lora_name(step), {})]
        boundary = str(self.split.boundary)
        return [
            (
                name,
                {
                    "contentgen.expert": f"{expert}-noise",
                    "contentgen.boundary": boundary,
                    "contentgen.loads_into": into,
                },
            )
            for name, expert, into in (
                (lora_name(step), HIGH, "transformer"),
                (low_noise_name(step), LOW, "transformer_2"),
            )
        ]


def _drawer(job: Job, pipe: Any, encoded: dict[str, Any], chosen: Any) -> Any:
    """The watch's clips, drawn by the Wan this process holds (video_live.py); an image-to-video
    model's from a still of the dataset as their first frame (`first_frame`)."""
    from .video_live import InLoopClips

    first = first_frame(job) if wan_models.image_to_video(job.model_dir) else None
    return InLoopClips(job.drawers, job.staged, pipe, encoded, job.on, chosen, first_frame=first)


def first_frame(job: Job) -> Path:
    """The still an image-to-video model's watch clips start from: the dataset's first still, else
    its first clip's first frame."""
    examples: Sequence[video_data.Example] = job.examples
    still = next((e for e in examples if e.kind == "still"), None)
    if still is not None:
        return still.path
    path = job.work_dir / "first-frame.png"
    video_data.first_frame_of(examples[0].path).save(path, format="PNG")
    return path


def _cache(
    pipe: Any,
    examples: Sequence[video_data.Example],
    resolution: int,
    on: Device,
    chosen: wan_memory.WanPlan,
    prompts: Sequence[str],
    i2v: bool,
) -> tuple[list[video_data.Cached], dict[str, Any]]:
    """Each example's latents and caption's encoding (and an image-to-video model's condition), and
    the watch's prompts' encodings with the empty negative prompt's; the text encoder is dropped
    after, and the VAE too unless the watch's clips are drawn (kept on the CPU)."""
    import gc

    text_on = on.where if chosen.text_encoder_on_gpu or not on.cuda else torch.device("cpu")
    pipe.text_encoder.to(text_on)
    texts = {
        c: video_data.encode_text(pipe, c, text_on).to(on.where, on.dtype)
        for c in {e.caption for e in examples}
    }
    encoded = {p: video_data.encode_text(pipe, p, text_on).to(on.where, on.dtype) for p in [*prompts, ""]}
    pipe.text_encoder = None
    gc.collect()
    vae_on = on.where if chosen.vae_on_gpu or not on.cuda else torch.device("cpu")
    pipe.vae.to(vae_on)
    if chosen.vae_tiling:
        pipe.vae.enable_tiling()
    if i2v and getattr(pipe, "image_encoder", None) is not None:
        pipe.image_encoder.to(vae_on)
    cached = [_cached(pipe, e, texts[e.caption], resolution, on, vae_on, i2v) for e in examples]
    pipe.vae.disable_tiling()
    if prompts:
        pipe.vae.to("cpu")
    else:
        pipe.vae = None
    if getattr(pipe, "image_encoder", None) is not None and not prompts:
        pipe.image_encoder = None
    gc.collect()
    if on.cuda:
        torch.cuda.empty_cache()
    return cached, (encoded if prompts else {})


def _cached(
    pipe: Any,
    example: video_data.Example,
    text: torch.Tensor,
    resolution: int,
    on: Device,
    vae_on: torch.device,
    i2v: bool,
) -> video_data.Cached:
    video = video_data.pixels(example, resolution)
    image = video_data.image_embeds(pipe, video, vae_on) if i2v else None
    return video_data.Cached(
        latents=video_data.encode_video(pipe.vae, video).to(on.where),
        text=text,
        condition=video_data.first_frame_condition(pipe, video).to(on.where) if i2v else None,
        image=image.to(on.where, on.dtype) if image is not None else None,
    )
