"""A tiny Qwen-Image (2512) made from its published configs' shapes with random weights, saved as a
diffusers model directory, for the cluster's tests: nothing is downloaded. Its parts are
Qwen-Image's (Qwen/Qwen-Image-2512's model_index.json): a Qwen2.5-VL text encoder (its last hidden
states over the pipeline's prompt template are the captions' features; its vision tower is built
too, one block, never used for text), Qwen-Image's causal video VAE (AutoencoderKLQwenImage, 16
latent channels, normalised by its latents_mean and latents_std) and the MMDiT
QwenImageTransformer2DModel, at a width of 32. The tokenizer is tiny_z_image.py's character-level
one (the pipeline's template is the same text whatever its tokens)."""

from __future__ import annotations

from pathlib import Path

from .tiny_z_image import tokenizer

WIDTH = 32


def tiny_qwen_image(folder: Path) -> Path:
    """The model directory, built into `folder` unless it is there already."""
    if (folder / "model_index.json").exists():
        return folder
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    words = tokenizer(folder / "tokenizer")
    encoder = Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(
            text_config={
                "vocab_size": len(words),
                "hidden_size": WIDTH,
                "intermediate_size": 2 * WIDTH,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "max_position_embeddings": 512,
                "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},  # sums to half a head
            },
            vision_config={
                "depth": 1,
                "hidden_size": WIDTH,
                "intermediate_size": 2 * WIDTH,
                "num_heads": 2,
                "out_hidden_size": WIDTH,
                "fullatt_block_indexes": [0],
            },
            vocab_size=len(words),
        )
    )
    vae = AutoencoderKLQwenImage(base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1)
    transformer = QwenImageTransformer2DModel(
        in_channels=64,  # 16 latent channels, packed 2 × 2
        out_channels=16,
        num_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=WIDTH,
        axes_dims_rope=(4, 6, 6),  # sums to the heads' width
    )
    # Qwen-Image's scheduler_config.json: dynamic, exponential shifting
    scheduler = FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True,
        time_shift_type="exponential",
        base_shift=0.5,
        max_shift=0.9,
        base_image_seq_len=256,
        max_image_seq_len=8192,
        shift=1.0,
    )
    QwenImagePipeline(
        scheduler=scheduler, vae=vae, text_encoder=encoder, tokenizer=words, transformer=transformer
    ).save_pretrained(folder)
    return folder
