"""FLUX.2 [klein] (4B, Apache-2.0; 9B, non-commercial: the base-model table says which) as a picture
family of the training framework (pictures.py), as diffusers' Flux2KleinPipeline draws it:

- a caption's features are its Qwen3 encoder's hidden states 9, 18 and 27 side by side over the
  chat-templated prompt, with their position ids (the pipeline's `encode_prompt`); a picture's
  latents FLUX.2's VAE's mode, patchified 2 × 2 and batch-normalised (its `_encode_vae_image`);
- the transformer takes them packed into tokens (with their 4-D position ids) at the timestep σ,
  without guidance (the base model is not distilled), and predicts the velocity e − x0, which the
  scheduler steps with, so it is taught e − x0; σ is shifted as the pipeline's schedule is at this
  picture's size (its empirical μ at 50 steps, s = e^μ);
- a LoRA on the double blocks' attention (image and text streams) and the single blocks' fused
  projections, and with feedforward their feed-forward layers, saved under diffusers' names
  (`transformer.transformer_blocks.0.attn.to_q.lora_A.weight`), which Flux2KleinPipeline's
  load_lora_weights reads."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..generation.flux import Device
from ..generation.generation import CallArguments
from ..generation.lora_files import BLOCKS, TARGETS
from . import pictures
from .pictures import PictureFamily

ATTENTION = (*TARGETS, "attn.to_qkv_mlp_proj", "attn.to_out")  # FLUX.1's, and the single blocks' fused ones
FEEDFORWARD = ("ff.linear_in", "ff.linear_out", "ff_context.linear_in", "ff_context.linear_out")
SAMPLING_STEPS = 50  # the base model's (its model card), whose schedule's shift training follows


class Flux2Klein:
    name = "FLUX.2 [klein]"

    def classes(self) -> tuple[Any, Any]:
        from diffusers import Flux2KleinPipeline, Flux2Transformer2DModel

        return Flux2KleinPipeline, Flux2Transformer2DModel

    def targets(self, linear_names: list[str], preset: str) -> list[str]:
        return pictures.preset(linear_names, preset, BLOCKS, ATTENTION, FEEDFORWARD)

    def caption(self, pipe: Any, text: str, on: Device) -> Any:
        embeds, ids = pipe.encode_prompt(text, device=on.where)
        return embeds.to(on.where, on.dtype), ids.to(on.where)

    def latents(self, pipe: Any, picture: torch.Tensor) -> torch.Tensor:
        vae = pipe.vae
        patchified: torch.Tensor = pipe._encode_vae_image(picture.to(vae.device, vae.dtype), generator=None)
        return patchified

    def shift(self, pipe: Any, latents: torch.Tensor) -> float:
        from diffusers.pipelines.flux2.pipeline_flux2_klein import compute_empirical_mu

        tokens = latents.shape[-2] * latents.shape[-1]
        return math.exp(compute_empirical_mu(image_seq_len=tokens, num_steps=SAMPLING_STEPS))

    def predict(
        self, transformer: Any, noisy: torch.Tensor, sigma: torch.Tensor, caption: Any
    ) -> torch.Tensor:
        from diffusers import Flux2KleinPipeline

        embeds, text_ids = caption
        batch, channels, height, width = noisy.shape
        tokens = noisy.reshape(batch, channels, height * width).permute(0, 2, 1)
        out = transformer(
            hidden_states=tokens,
            encoder_hidden_states=embeds,
            timestep=sigma.expand(batch).to(noisy.dtype),
            img_ids=Flux2KleinPipeline._prepare_latent_ids(noisy).to(noisy.device),
            txt_ids=text_ids,
            guidance=None,
            return_dict=False,
        )[0]
        predicted: torch.Tensor = out.permute(0, 2, 1).reshape(batch, channels, height, width)
        return predicted

    def taught(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return noise - x0

    def prompted(self, pipe: Any, text: str, on: Device) -> CallArguments:
        (embeds, _), (negative, _) = (pipe.encode_prompt(t, device=on.where) for t in (text, ""))
        return {"prompt_embeds": embeds, "negative_prompt_embeds": negative}  # the pipeline's "" negative

    def options(self, guidance: float) -> CallArguments:
        return {"guidance_scale": guidance}  # the base model's classifier-free guidance, above 1


FAMILY = PictureFamily(Flux2Klein())
