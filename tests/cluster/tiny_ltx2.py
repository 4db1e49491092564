"""A tiny LTX-2 made from its classes' configs at tiny width with random weights, saved as a
diffusers model directory: nothing is downloaded. Its eight parts are LTX2Pipeline's: a Gemma 3
encoder (its vision tower built too, one block, never used for text) whose every layer's hidden
states the text connectors project for the video and the audio streams, the video VAE
(AutoencoderKLLTX2Video, 8 latent channels, 16× smaller in space and 4× in time here), the audio VAE and
vocoder (mel spectrograms to a stereo waveform) and LTX2VideoTransformer3DModel, which denoises the
video's and the audio's latents together. The tokenizer is tiny_z_image.py's character-level one
(the pipeline pads on the left with its pad token, and asks nothing else of it)."""

from __future__ import annotations

from pathlib import Path

from .tiny_z_image import tokenizer

WIDTH = 16  # the encoder's and the connectors' width
MEL_BINS, AUDIO_CHANNELS = 8, 2  # the audio VAE's spectrogram bins and latent channels


def tiny_ltx2(folder: Path) -> Path:
    """The model directory, built into `folder` unless it is there already."""
    if (folder / "model_index.json").exists():
        return folder
    import torch
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2Pipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    torch.manual_seed(0)
    words = tokenizer(folder / "tokenizer")
    layers = 1
    encoder = Gemma3ForConditionalGeneration(
        Gemma3Config(
            text_config={
                "vocab_size": len(words),
                "hidden_size": WIDTH,
                "intermediate_size": 2 * WIDTH,
                "num_hidden_layers": layers,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "head_dim": 8,
                "max_position_embeddings": 256,
                "sliding_window": 64,
            },
            vision_config={
                "hidden_size": WIDTH,
                "intermediate_size": 2 * WIDTH,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "image_size": 16,
                "patch_size": 4,
            },
            mm_tokens_per_image=4,  # 2 × 2 of the 4 × 4 patches
        )
    )
    connectors = LTX2TextConnectors(
        caption_channels=WIDTH,
        text_proj_in_factor=layers + 1,  # every layer's hidden states and the embeddings'
        video_connector_num_attention_heads=2,
        video_connector_attention_head_dim=WIDTH // 2,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=2,
        audio_connector_attention_head_dim=WIDTH // 2,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_double_precision=False,
        rope_type="split",
    )
    packed_audio = AUDIO_CHANNELS * MEL_BINS // 4  # the audio VAE halves the bins twice
    transformer = LTX2VideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=packed_audio,
        audio_out_channels=packed_audio,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        qk_norm="rms_norm_across_heads",
        caption_channels=WIDTH,
        rope_double_precision=False,
        rope_type="split",
    )
    vae = AutoencoderKLLTX2Video(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8),
        decoder_block_out_channels=(8, 8),
        layers_per_block=(1, 1, 1),
        decoder_layers_per_block=(1, 1, 1),
        spatio_temporal_scaling=(True, True),
        decoder_spatio_temporal_scaling=(True, True),
        decoder_inject_noise=(False, False, False),
        downsample_type=("spatiotemporal", "spatiotemporal"),  # 4× in time, as it decodes
        upsample_residual=(False, False),
        upsample_factor=(1, 1),
        timestep_conditioning=False,
        patch_size=4,  # its pixels patched 4 × 4 first, as LTX-2's: 16× in space in all
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=AUDIO_CHANNELS,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=MEL_BINS,
    )
    vocoder = LTX2Vocoder(
        in_channels=2 * MEL_BINS,
        hidden_channels=16,
        out_channels=2,
        upsample_kernel_sizes=[4, 4],
        upsample_factors=[2, 2],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=16000,
    )
    LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        audio_vae=audio_vae,
        text_encoder=encoder,
        tokenizer=words,
        connectors=connectors,
        transformer=transformer,
        vocoder=vocoder,
    ).save_pretrained(folder)
    return folder
