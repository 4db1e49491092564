"""Wan 2.1 T2V 1.3B's architecture as its repository's configs give it (the fields that shape the
parameters), for what is built at real size without downloading anything: the video step and a
warm video pool measured on a GPU with random weights (bench/video_gpu.py).

From Wan-AI/Wan2.1-T2V-1.3B-Diffusers (transformer/config.json, text_encoder/config.json: google's
UMT5-XXL encoder, vae/config.json) and the Wan team's own config (wan/configs/wan_t2v_1_3B.py:
dim 1536, ffn 8960, 12 heads, 30 layers; shared_config.py: UMT5-XXL, 512 text tokens);
tests/providers/test_wan_t2v.py counts their parameters against the published sizes."""

from __future__ import annotations

from typing import Any

TEXT_TOKENS = 512  # WanPipeline's max_sequence_length, the Wan team's text_len

WAN_T2V_13B: dict[str, dict[str, Any]] = {
    "transformer": {
        "patch_size": (1, 2, 2),
        "num_attention_heads": 12,
        "attention_head_dim": 128,
        "in_channels": 16,
        "out_channels": 16,
        "text_dim": 4096,
        "freq_dim": 256,
        "ffn_dim": 8960,
        "num_layers": 30,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "eps": 1e-6,
        "image_dim": None,
        "rope_max_seq_len": 1024,
    },
    "text_encoder": {  # UMT5EncoderModel, google/umt5-xxl's encoder
        "vocab_size": 256384,
        "d_model": 4096,
        "d_kv": 64,
        "d_ff": 10240,
        "num_layers": 24,
        "num_heads": 64,
        "relative_attention_num_buckets": 32,
        "relative_attention_max_distance": 128,
        "feed_forward_proj": "gated-gelu",
        "layer_norm_epsilon": 1e-6,
        "tie_word_embeddings": False,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
    },
    "vae": {  # AutoencoderKLWan: the Wan 2.1 VAE (its latents' mean and std are diffusers' defaults)
        "base_dim": 96,
        "z_dim": 16,
        "dim_mult": [1, 2, 4, 4],
        "num_res_blocks": 2,
        "attn_scales": [],
        "temperal_downsample": [False, True, True],
        "dropout": 0.0,
    },
}
