"""A tiny FLUX.2 [klein] made from its published configs' shapes with random weights, saved as a
diffusers model directory, for the cluster's tests: nothing is downloaded. Its parts are klein's
(black-forest-labs/FLUX.2-klein-base-4B's model_index.json): a Qwen3 causal LM as the text encoder
(the pipeline stacks its hidden states 9, 18 and 27, so it has 28 layers here too, at a width of
16), FLUX.2's VAE (AutoencoderKLFlux2: its latents patchified 2 × 2 and batch-normalised) and
Flux2Transformer2DModel without guidance embeddings (the base model is not distilled). The
tokenizer is tiny_z_image.py's character-level one with its chat template."""

from __future__ import annotations

from pathlib import Path

from .tiny_z_image import tokenizer

WIDTH = 16  # the text encoder's hidden size; the transformer's text features are three layers' (48)
LATENT = 8  # the VAE's latent channels (klein's: 32); the transformer takes them patchified (× 4)


def tiny_flux2_klein(folder: Path) -> Path:
    """The model directory, built into `folder` unless it is there already."""
    if (folder / "model_index.json").exists():
        return folder
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    words = tokenizer(folder / "tokenizer")
    encoder = Qwen3ForCausalLM(
        Qwen3Config(
            vocab_size=len(words),
            hidden_size=WIDTH,
            intermediate_size=2 * WIDTH,
            num_hidden_layers=28,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=8,
            max_position_embeddings=256,
        )
    )
    vae = AutoencoderKLFlux2(
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        latent_channels=LATENT,
        norm_num_groups=8,
        sample_size=64,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    transformer = Flux2Transformer2DModel(
        in_channels=4 * LATENT,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=3 * WIDTH,
        timestep_guidance_channels=32,
        axes_dims_rope=(4, 4, 4, 4),  # sums to the heads' width
        guidance_embeds=False,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, shift=3.0)
    Flux2KleinPipeline(
        scheduler=scheduler, vae=vae, text_encoder=encoder, tokenizer=words, transformer=transformer
    ).save_pretrained(folder)
    return folder
