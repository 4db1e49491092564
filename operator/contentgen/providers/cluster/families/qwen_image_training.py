"""Qwen-Image (2512: Qwen's 20B MMDiT, Apache-2.0) as a picture family of the training framework
(pictures.py), as diffusers' QwenImagePipeline draws it:

- a caption's features are its Qwen2.5-VL encoder's last hidden states over the pipeline's prompt
  template, the template's first tokens dropped, with their mask (its `encode_prompt`); a picture's
  latents its causal video VAE's mode for one frame, normalised by the VAE's latents_mean and
  latents_std (as its image-to-image pipeline encodes a picture);
- the transformer takes them packed 2 × 2 into tokens, with their shape (`img_shapes`), at the
  timestep σ, and predicts the velocity e − x0, which the scheduler steps with, so it is taught
  e − x0; σ is shifted as the pipeline's schedule is at this picture's size (its `calculate_shift`
  from the scheduler's config, exponential: s = e^μ);
- a LoRA on the blocks' attention (image and text streams) and, with feedforward, their MLPs,
  saved under diffusers' names (`transformer.transformer_blocks.0.attn.to_q.lora_A.weight`), which
  QwenImagePipeline.load_lora_weights reads."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..generation.flux import Device
from ..generation.generation import CallArguments
from ..generation.lora_files import TARGETS  # the MMDiT's attention names are FLUX.1's
from . import pictures
from .pictures import PictureFamily

NEGATIVE = " "  # its model card's negative prompt, which turns its classifier-free guidance on
FEEDFORWARD = ("img_mlp.net.0.proj", "img_mlp.net.2", "txt_mlp.net.0.proj", "txt_mlp.net.2")


class QwenImage:
    name = "Qwen-Image"

    def classes(self) -> tuple[Any, Any]:
        from diffusers import QwenImagePipeline, QwenImageTransformer2DModel

        return QwenImagePipeline, QwenImageTransformer2DModel

    def targets(self, linear_names: list[str], preset: str) -> list[str]:
        return pictures.preset(linear_names, preset, ("transformer_blocks.",), TARGETS, FEEDFORWARD)

    def caption(self, pipe: Any, text: str, on: Device) -> Any:
        embeds, mask = pipe.encode_prompt(text, device=on.where)
        return embeds.to(on.where, on.dtype), None if mask is None else mask.to(on.where)  # None: all kept

    def latents(self, pipe: Any, picture: torch.Tensor) -> torch.Tensor:
        vae = pipe.vae
        frame = picture.to(vae.device, vae.dtype).unsqueeze(2)  # one frame of its video VAE
        latents = vae.encode(frame).latent_dist.mode()
        mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1).to(latents)
        std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1).to(latents)
        normalised: torch.Tensor = ((latents - mean) / std)[:, :, 0]
        return normalised

    def shift(self, pipe: Any, latents: torch.Tensor) -> float:
        from diffusers.pipelines.qwenimage.pipeline_qwenimage import calculate_shift

        config = pipe.scheduler.config
        tokens = (latents.shape[-2] // 2) * (latents.shape[-1] // 2)
        mu = calculate_shift(
            tokens,
            config.get("base_image_seq_len", 256),
            config.get("max_image_seq_len", 4096),
            config.get("base_shift", 0.5),
            config.get("max_shift", 1.15),
        )
        return math.exp(mu)

    def predict(
        self, transformer: Any, noisy: torch.Tensor, sigma: torch.Tensor, caption: Any
    ) -> torch.Tensor:
        embeds, mask = caption
        batch, channels, height, width = noisy.shape
        patches = noisy.view(batch, channels, height // 2, 2, width // 2, 2).permute(0, 2, 4, 1, 3, 5)
        out = transformer(
            hidden_states=patches.reshape(batch, (height // 2) * (width // 2), channels * 4),
            timestep=sigma.expand(batch).to(noisy.dtype),
            encoder_hidden_states=embeds,
            encoder_hidden_states_mask=mask,
            img_shapes=[[(1, height // 2, width // 2)]] * batch,
            return_dict=False,
        )[0]
        unpacked = out.view(batch, height // 2, width // 2, channels, 2, 2).permute(0, 3, 1, 4, 2, 5)
        predicted: torch.Tensor = unpacked.reshape(batch, channels, height, width)
        return predicted

    def taught(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return noise - x0

    def prompted(self, pipe: Any, text: str, on: Device) -> CallArguments:
        (embeds, mask), (negative, negative_mask) = (
            pipe.encode_prompt(t, device=on.where) for t in (text, NEGATIVE)
        )
        return {
            "prompt_embeds": embeds,
            "prompt_embeds_mask": mask,
            "negative_prompt": None,  # its encodings stand for options' words
            "negative_prompt_embeds": negative,
            "negative_prompt_embeds_mask": negative_mask,
        }

    def options(self, guidance: float) -> CallArguments:
        # its pipeline's guidance is true_cfg_scale, on only with a negative prompt (its model card's " ")
        return {"true_cfg_scale": guidance, "negative_prompt": NEGATIVE if guidance > 1 else None}


FAMILY = PictureFamily(QwenImage())
