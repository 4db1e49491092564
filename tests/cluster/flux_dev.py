"""FLUX.1-dev's and Whisper large-v3's architectures as their repositories' configs give them (the
fields that shape the parameters), for what is counted or built at their real size without
downloading anything: the memory plans' sizes on the meta device (test_memory_plans.py) and
`make gpu-check FULL=1`'s random-weight models on a GPU (scripts/gpu_full.py).

From black-forest-labs/FLUX.1-dev (transformer/config.json, text_encoder_2/config.json,
text_encoder/config.json, vae/config.json, scheduler/scheduler_config.json) and
openai/whisper-large-v3 (config.json) on the Hugging Face hub; tests/cluster/test_memory_plans.py
checks the counts they give against the issue's (11.90 B, T5-XXL 4.76 B)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# FLUX.1-dev's configs as its repository has them (transformer/config.json, text_encoder_2's
# T5-XXL encoder, text_encoder's CLIP ViT-L/14 text model, vae/config.json), the fields that
# shape the parameters.
FLUX_DEV: dict[str, dict[str, Any]] = {
    "transformer": {
        "_class_name": "FluxTransformer2DModel",
        "attention_head_dim": 128,
        "guidance_embeds": True,
        "in_channels": 64,
        "joint_attention_dim": 4096,
        "num_attention_heads": 24,
        "num_layers": 19,
        "num_single_layers": 38,
        "patch_size": 1,
        "pooled_projection_dim": 768,
        "axes_dims_rope": [16, 56, 56],
    },
    "text_encoder_2": {
        "architectures": ["T5EncoderModel"],
        "model_type": "t5",
        "d_ff": 10240,
        "d_kv": 64,
        "d_model": 4096,
        "feed_forward_proj": "gated-gelu",
        "num_heads": 64,
        "num_layers": 24,
        "relative_attention_num_buckets": 32,
        "tie_word_embeddings": False,
        "vocab_size": 32128,
    },
    "text_encoder": {
        "architectures": ["CLIPTextModel"],
        "model_type": "clip_text_model",
        "hidden_size": 768,
        "intermediate_size": 3072,
        "max_position_embeddings": 77,
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "projection_dim": 768,
        "vocab_size": 49408,
    },
    "vae": {
        "_class_name": "AutoencoderKL",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 16,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
    },
}


# The VAE's latent scaling and FLUX.1-dev's scheduler (what a pipeline needs beside the shapes).
VAE_SCALING = {"scaling_factor": 0.3611, "shift_factor": 0.1159}
SCHEDULER: dict[str, Any] = {
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}
MAX_SEQUENCE = 512  # T5 tokens per prompt, as FLUX.1-dev was trained

# openai/whisper-large-v3's config.json, the fields that shape it (1.55 B parameters, 128 mel bins).
WHISPER_LARGE_V3: dict[str, Any] = {
    "d_model": 1280,
    "encoder_layers": 32,
    "decoder_layers": 32,
    "encoder_attention_heads": 20,
    "decoder_attention_heads": 20,
    "encoder_ffn_dim": 5120,
    "decoder_ffn_dim": 5120,
    "num_mel_bins": 128,
    "vocab_size": 51866,
    "max_source_positions": 1500,
    "max_target_positions": 448,
}


def write_configs(folder: Path) -> Path:
    """FLUX_DEV as a model directory of configs only (what `flux.counted` reads)."""
    for part, config in FLUX_DEV.items():
        (folder / part).mkdir(parents=True, exist_ok=True)
        (folder / part / "config.json").write_text(json.dumps(config))
    return folder
