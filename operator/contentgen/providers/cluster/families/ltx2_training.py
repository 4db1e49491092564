"""LTX-2 (Lightricks' audio-video transformer) as a video family of the training framework
(training/family.py), as diffusers' LTX2Pipeline draws it; the framework's loop, checkpoints,
resume, continue and watch as every family's.

- **Its dataset** is a video LoRA's (video_data.py): clips and stills with their captions, a still as
  a one-frame clip. A clip trains at its own shape within `resolution`² pixels, sides on multiples
  of the VAE's cell times the transformer's patch (32 for LTX-2), on the VAE's 8k+1 frames.
- **Cached.** Every example's latents (the video VAE's mode, normalised by its `latents_mean`,
  `latents_std` and scaling factor, then packed into tokens: LTX2Pipeline's own `_normalize_latents`
  and `_pack_latents`) and every caption's encoding (Gemma 3's hidden states through the text
  connectors, one for each stream) are computed once; the text encoder then leaves, and the VAE
  and the audio parts stay on the CPU for the watch's clips.
- **A video-only LoRA**, as the official trainer's and musubi-tuner's default: the video stream's
  attention and feed-forward layers learn, and the audio stream takes no part. diffusers'
  transformer always runs both streams, so the audio stream is given one silent token and the two
  streams are cut apart for the step (`isolate_modalities`: no audio-to-video cross-attention),
  which leaves the video's prediction exactly what it is without any audio.
- **Flow matching as LTX-2 is trained**: latents x0, noise e, a noise level σ; the transformer sees
  (1 − σ) x0 + σ e at timestep 1000σ and is taught the velocity e − x0. `shift` (the default) draws
  σ uniformly and shifts it as the staged scheduler shifts its sampling at the clip's token count
  (LTX2Pipeline's `calculate_shift`, the official trainer's shifted sampler's range: 0.95 at 1,024
  tokens to 2.05 at 4,096); `logit-normal` and `uniform` as for FLUX.
- **The watch's clips** are drawn between steps by the training's own transformer through
  LTX2Pipeline (video_live.InLoopClips with LTX-2's pipeline and call): 17 frames at 24 fps, drawn as
  a VideoGeneration of model ltx-2 draws (video_models.STAGED: 30 steps at guidance 3.0, LTX-2.0's
  guidance block and timestep), the prompts encoded before the text encoder left.
- **Its memory plan** is the picture families' (pictures.resident): bf16, resident, estimated from
  the transformer's parameters counted on the meta device and the largest example's latent frames,
  not measured on a GPU; a training spreads over several processes as every family's (the
  framework sums the LoRA's gradients)."""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from contentgen.api.base_models import BaseModelInfo

from ..generation import generation
from ..generation.flux import Device
from ..generation.video_models import STAGED
from ..training import adapters
from ..training.adapters import Expert
from ..training.family import Job, OwnDirectory, Sample
from ..training.loop import fingerprint as digest
from ..training.state import lora_name
from . import pictures, video_data
from .video_live import InLoopClips

ONE = "transformer"
REQUIRED = (
    "model_index.json",
    *(f"{part}/config.json" for part in ("transformer", "vae", "audio_vae", "connectors", "vocoder")),
    "text_encoder/config.json",
)
# The video stream's layers: its self- and cross-attention and feed-forward, not the audio stream's
# (audio_attn1, audio_ff) nor the cross-attention between the streams.
ATTENTION = tuple(f".{a}.{p}" for a in ("attn1", "attn2") for p in ("to_q", "to_k", "to_v", "to_out.0"))
FEEDFORWARD = (".ff.net.0.proj", ".ff.net.2")
TEXT_TOKENS = 1024  # LTX2Pipeline's max_sequence_length
DRAWN = STAGED["ltx-2"]  # the watch draws as a VideoGeneration of model ltx-2 does
SILENT = 1  # the audio stream's tokens during a video-only step


def targets(linear_names: list[str], preset: str) -> list[str]:
    """The video stream's layers a `training.loraTargets` preset adapts (all-linear: every linear
    layer of the blocks but the audio stream's and the streams' cross-attention) (pure)."""
    video = [n for n in linear_names if "audio" not in n]
    return pictures.preset(video, preset, ("transformer_blocks.",), ATTENTION, FEEDFORWARD)


def shift(tokens: int, config: Any) -> float:
    """The noise levels' shift s at a clip of `tokens` tokens, as the staged scheduler shifts its
    sampling (pure): exp(μ), μ from 0.95 at 1,024 tokens to 2.05 at 4,096, where the scheduler
    shifts by the sequence's length; its fixed `shift` elsewhere."""
    if not config.get("use_dynamic_shifting"):
        return float(config.get("shift", 1.0))
    low, high = config.get("base_image_seq_len", 1024), config.get("max_image_seq_len", 4096)
    lo, hi = config.get("base_shift", 0.95), config.get("max_shift", 2.05)
    return math.exp(lo + (hi - lo) * (tokens - low) / (high - low))


@dataclass
class Encoded:
    """A caption as the transformer takes it: the connectors' video and audio contexts and mask."""

    video: torch.Tensor
    audio: torch.Tensor
    mask: torch.Tensor


@dataclass
class Cached:
    """One example as a step reads it: its packed latents (1 × tokens × channels, float32), their
    latent frames, height and width, its caption's encoding and its noise levels' shift."""

    latents: torch.Tensor
    shape: tuple[int, int, int]
    text: Encoded
    shift: float


class Ltx2Family(OwnDirectory):
    name = "LTX-2"
    spreads = True
    outputs: tuple[str, ...] = ("model.safetensors",)

    def required(self, base: BaseModelInfo) -> tuple[str, ...]:
        return REQUIRED

    def examples(self, archive: Path, folder: Path, trigger_word: str) -> list[Any]:
        folder.mkdir(parents=True, exist_ok=True)
        return list(video_data.read_dataset(archive, folder, trigger_word))

    def fingerprint(self, job: Job) -> str:
        examples: Sequence[video_data.Example] = job.examples
        parts = [self.name, job.staged, job.plan.stated()]
        return digest(parts, [e.path for e in examples], [f"{e.kind}:{e.caption}" for e in examples])

    def memory(self, job: Job) -> Callable[[str], Any]:
        from diffusers import AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel

        cell, frames = _cells(job.model_dir, AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel)
        width, height, count = video_data.largest(job.examples, job.plan.resolution, cell, frames)
        pixels = width * height * ((count - 1) // frames + 1)
        return pictures.resident(job, self.name, LTX2VideoTransformer3DModel, targets, pixels)

    def load(self, job: Job, chosen: Any) -> Ltx2Model:
        """The pipeline loaded, the examples' latents and captions' encodings cached, the watch's
        prompts encoded, the text encoder gone, the adapter on the transformer's video stream."""
        from diffusers import LTX2Pipeline

        on, plan = job.on, job.plan
        pipe = LTX2Pipeline.from_pretrained(str(job.model_dir), torch_dtype=on.dtype)
        prompts = list(job.watch.prompts()) if job.watch is not None and job.drawers is not None else []
        cached, encoded = _cache(pipe, job.examples, plan.resolution, on, prompts)
        transformer = pipe.transformer.to(on.where)
        expert = adapters.with_adapter(
            ONE, transformer, plan, targets(adapters.linear_layers(transformer), plan.targets)
        )
        drawer = Ltx2Clips(job.drawers, job.staged, pipe, encoded, on, chosen) if encoded else None
        return Ltx2Model([expert], drawer, cached, job)

    def config(self, job: Job) -> dict[str, str | int]:
        return {
            "training_base_model": job.base.name,
            "family": self.name,
            "examples": len(job.examples),
            "streams": "video only: the audio stream's layers untrained and cut from the video's",
        }


LTX2 = FAMILY = Ltx2Family()


def _cells(model_dir: Path, vae_class: Any, transformer_class: Any) -> tuple[int, int]:
    """The pixels a latent token spans across and the frames it spans in time (8k+1 frames in
    all), from the staged VAE's and transformer's configs: nothing is loaded."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        vae = vae_class.from_config(vae_class.load_config(str(model_dir / "vae")))
    patch = transformer_class.load_config(str(model_dir / "transformer"))
    return (
        vae.spatial_compression_ratio * patch.get("patch_size", 1),
        vae.temporal_compression_ratio * patch.get("patch_size_t", 1),
    )


@torch.no_grad()
def _cache(
    pipe: Any, examples: Sequence[video_data.Example], resolution: int, on: Device, prompts: Sequence[str]
) -> tuple[list[Cached], dict[str, generation.CallArguments]]:
    """Each example's packed latents and caption's encoding; the watch's prompts' encodings (and
    the empty negative prompt's) as LTX2Pipeline takes them. The text encoder leaves after; the
    VAE and the audio parts wait on the CPU for the watch's clips."""
    pipe.text_encoder.to(on.where)
    pipe.connectors.to(on.where)
    texts = {c: _encoded(pipe, c, on) for c in {e.caption for e in examples}}
    encoded: dict[str, generation.CallArguments] = {}
    for prompt in prompts:
        positive, mask, negative, negative_mask = pipe.encode_prompt(
            prompt, "", True, max_sequence_length=TEXT_TOKENS, device=on.where
        )
        encoded[prompt] = {
            "prompt_embeds": positive,
            "prompt_attention_mask": mask,
            "negative_prompt_embeds": negative,
            "negative_prompt_attention_mask": negative_mask,
        }
    pipe.text_encoder = None
    gc.collect()
    pipe.vae.to(on.where)
    patch = (pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size)
    cell, frames = (
        pipe.vae_spatial_compression_ratio * patch[0],
        pipe.vae_temporal_compression_ratio * patch[1],
    )
    cached = []
    for example in examples:
        video = video_data.pixels(example, resolution, cell, frames).to(on.where, on.dtype)
        latents = pipe._normalize_latents(
            pipe.vae.encode(video).latent_dist.mode().float(),
            pipe.vae.latents_mean,
            pipe.vae.latents_std,
            pipe.vae.config.scaling_factor,
        )
        _, _, f, h, w = latents.shape
        packed = pipe._pack_latents(latents, *patch)
        cached.append(
            Cached(packed, (f, h, w), texts[example.caption], shift(packed.shape[1], pipe.scheduler.config))
        )
    for part in ("vae", "connectors"):
        getattr(pipe, part).to("cpu")
    if not prompts:  # no clips to draw: only the transformer is kept
        pipe.vae = pipe.audio_vae = pipe.vocoder = pipe.connectors = None
        gc.collect()
    if on.cuda:
        torch.cuda.empty_cache()
    return cached, encoded


def _encoded(pipe: Any, caption: str, on: Device) -> Encoded:
    """A caption as LTX2Pipeline encodes a prompt (Gemma 3's hidden states, `TEXT_TOKENS` tokens),
    through its connectors into each stream's context."""
    embeds, mask, _, _ = pipe.encode_prompt(
        caption, do_classifier_free_guidance=False, max_sequence_length=TEXT_TOKENS, device=on.where
    )
    side = getattr(pipe.tokenizer, "padding_side", "left")
    video, audio, joined = pipe.connectors(embeds, mask, padding_side=side)
    return Encoded(video.to(on.where, on.dtype), audio.to(on.where, on.dtype), joined.to(on.where))


def video_prediction(
    transformer: Any,
    noisy: torch.Tensor,
    text: Encoded,
    shape: tuple[int, int, int],
    timestep: torch.Tensor,
    fps: float,
    audio: torch.Tensor | None = None,
) -> torch.Tensor:
    """The transformer's prediction for the video stream alone (`noisy`: packed latents of
    `shape`'s latent frames, height and width, at `timestep`): the audio stream given `audio`, one
    silent token unless a caller says otherwise, and cut from the video's (see the module)."""
    frames, height, width = shape
    if audio is None:
        audio = torch.zeros(
            1, SILENT, transformer.config.audio_in_channels, device=noisy.device, dtype=noisy.dtype
        )
    prediction: torch.Tensor = transformer(
        hidden_states=noisy,
        audio_hidden_states=audio,
        encoder_hidden_states=text.video,
        audio_encoder_hidden_states=text.audio,
        timestep=timestep,
        sigma=timestep,
        audio_timestep=torch.full_like(timestep, 1000.0),
        encoder_attention_mask=text.mask,
        audio_encoder_attention_mask=text.mask,
        num_frames=frames,
        height=height,
        width=width,
        fps=fps,
        audio_num_frames=audio.shape[1],
        isolate_modalities=True,
        return_dict=False,
    )[0]
    return prediction


@dataclass
class Ltx2Model:
    experts: list[Expert]
    drawer: Any
    cached: list[Cached]
    job: Job

    def sample(self, generator: torch.Generator) -> Sample:
        """One sample's draws, in this order: the example, the noise, the noise level."""
        index = int(torch.randint(len(self.cached), (1,), generator=generator))
        noise = torch.randn(self.cached[index].latents.shape, generator=generator)
        s = self.cached[index].shift
        sigma, timestep = adapters.noise_level(
            self.job.plan.timestep_sampling, generator, lambda u: s * u / (1 + (s - 1) * u), 1000.0
        )
        return Sample(ONE, float(timestep), (index, noise, sigma, timestep))

    def loss(self, sample: Sample, expert: Expert) -> torch.Tensor:
        """The flow-matching loss of one drawn sample on the video stream (see the module)."""
        index, noise, sigma, timestep = sample.drawn
        on, example = self.job.on, self.cached[index]
        x0 = example.latents.to(on.where)
        noise, sigma = noise.to(on.where, torch.float32), sigma.to(on.where)
        noisy = ((1.0 - sigma) * x0 + sigma * noise).to(on.dtype)
        fps = float(self.job.base.frames.fps if self.job.base.frames else 24)
        at = timestep.expand(1).to(on.where)
        prediction = video_prediction(expert.transformer, noisy, example.text, example.shape, at, fps)
        return torch.nn.functional.mse_loss(prediction.float(), noise - x0)

    def place(self, name: str) -> Expert:
        return self.experts[0]

    def files(self, step: int) -> list[tuple[str, dict[str, str]]]:
        return [(lora_name(step), {})]


class Ltx2Clips(InLoopClips):
    """The watch's clips, drawn by LTX2Pipeline around the training's transformer (its adapter on,
    or off for the baseline), the video VAE and the audio parts on the card only to decode."""

    fps = 24  # its multiple is its VAE cell times its patch, read from the pipeline

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.steps = self.provider.inference_steps or DRAWN.steps
        self.guidance, self.guidance_2 = DRAWN.guidance, 0.0
        pipe = self.pipe
        self.multiple = pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size

    def arguments(self, prompt: str) -> generation.CallArguments:
        return {**self.encoded[prompt], "frame_rate": float(self.fps), **dict(DRAWN.arguments)}

    def _pipeline(self) -> Any:
        from diffusers import LTX2Pipeline

        pipe = self.pipe
        parts = ("vae", "audio_vae", "tokenizer", "connectors", "transformer", "vocoder")
        drawing: Any = LTX2Pipeline(
            scheduler=type(pipe.scheduler).from_config(pipe.scheduler.config),
            text_encoder=None,
            **{part: getattr(pipe, part) for part in parts},
        )
        drawing.set_progress_bar_config(disable=True)
        return drawing

    @contextlib.contextmanager
    def _drawing(self, experts: list[Any], with_lora: bool) -> Iterator[None]:
        moved = [getattr(self.pipe, part) for part in ("audio_vae", "connectors", "vocoder")]
        with super()._drawing(experts, with_lora):
            if self.on.cuda:
                for part in moved:
                    part.to(self.on.where)
            try:
                yield
            finally:
                if self.on.cuda:
                    for part in moved:
                        part.to("cpu")
