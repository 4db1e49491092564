"""Z-Image (Turbo and Base: Tongyi-MAI's 6B single-stream transformer) as a picture family of the
training framework (pictures.py), as diffusers' ZImagePipeline draws it:

- a caption's features are its Qwen3 encoder's second-to-last hidden states over the chat-templated
  prompt (the pipeline's `encode_prompt`), a picture's latents FLUX's 16-channel VAE's, shifted and
  scaled (flux.encode_picture);
- the transformer takes a list of latents, each C × 1 × H × W, at the model timestep 1 − σ, and
  predicts x0 − e (the pipeline negates it into the scheduler's velocity), so it is taught x0 − e;
  σ is shifted by the scheduler's own `shift` (3.0 for Turbo);
- a LoRA on the main blocks' (`layers.N`) attention and feed-forward layers, saved under diffusers'
  names (`transformer.layers.0.attention.to_q.lora_A.weight`), which ZImagePipeline.load_lora_weights
  reads."""

from __future__ import annotations

from typing import Any

import torch

from ..generation import flux
from ..generation.flux import Device
from ..generation.generation import CallArguments
from . import pictures
from .pictures import PictureFamily

ATTENTION = ("attention.to_q", "attention.to_k", "attention.to_v", "attention.to_out.0")
FEEDFORWARD = ("feed_forward.w1", "feed_forward.w2", "feed_forward.w3")


class ZImage:
    name = "Z-Image"

    def classes(self) -> tuple[Any, Any]:
        from diffusers import ZImagePipeline, ZImageTransformer2DModel

        return ZImagePipeline, ZImageTransformer2DModel

    def targets(self, linear_names: list[str], preset: str) -> list[str]:
        return pictures.preset(linear_names, preset, ("layers.",), ATTENTION, FEEDFORWARD)

    def caption(self, pipe: Any, text: str, on: Device) -> Any:
        features, _ = pipe.encode_prompt(text, device=on.where, do_classifier_free_guidance=False)
        return features[0].to(on.where, on.dtype)

    def latents(self, pipe: Any, picture: torch.Tensor) -> torch.Tensor:
        return flux.encode_picture(pipe, picture)

    def shift(self, pipe: Any, latents: torch.Tensor) -> float:
        return float(getattr(pipe.scheduler.config, "shift", 1.0))

    def predict(
        self, transformer: Any, noisy: torch.Tensor, sigma: torch.Tensor, caption: Any
    ) -> torch.Tensor:
        frames = [noisy[0].unsqueeze(1)]  # C × 1 × H × W
        out = transformer(frames, (1.0 - sigma).expand(1).to(noisy.dtype), [caption], return_dict=False)[0][0]
        predicted: torch.Tensor = out.squeeze(1).unsqueeze(0)
        return predicted

    def taught(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x0 - noise

    def prompted(self, pipe: Any, text: str, on: Device) -> CallArguments:
        positive, negative = pipe.encode_prompt(text, device=on.where, do_classifier_free_guidance=True)
        return {"prompt_embeds": positive, "negative_prompt_embeds": negative}  # the pipeline's "" negative

    def options(self, guidance: float) -> CallArguments:
        return {"guidance_scale": guidance}  # classifier-free above 1, against an empty prompt


FAMILY = PictureFamily(ZImage())
