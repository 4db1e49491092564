"""A tiny FLUX.1 made from configs with random weights, saved as a diffusers model directory
(model_index.json and its subfolders), for the cluster provider's tests: nothing is downloaded.

The tokenizers are made here too: CLIP's byte-level BPE from a vocabulary of single characters
(no merges), T5's a Unigram model over the same characters, so a prompt tokenises the same way
on every machine. The directory is built once per configuration (cached by its hash), by one
process while the others wait."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import string
from pathlib import Path
from typing import Any

# Small enough for CPU in seconds, shaped like the real thing: 16 latent channels as FLUX's VAE
# has (packed 2 × 2 into 64), four VAE blocks (a 64 × 64 picture is 8 × 8 latents, 16 tokens).
CONFIG: dict[str, Any] = {
    "version": 1,
    "width": 32,  # text encoders' hidden size
    "heads": 2,
    "head_dim": 16,
    "rope": [4, 6, 6],  # sums to head_dim
    "latent_channels": 16,
    "vae_blocks": [8, 8, 8, 8],
    "guidance": True,  # FLUX.1-dev embeds the guidance; schnell does not
    "max_sequence": 32,  # T5's tokens (FLUX.1-dev: 512)
}


def tiny_flux(cache: Path, config: dict[str, Any] | None = None) -> Path:
    """The model directory for `config`, built into `cache` unless it is there already."""
    config = dict(CONFIG if config is None else config)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    target = cache / f"tiny-flux-{digest}"
    if (target / "model_index.json").exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{digest}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process builds it: wait for that one
        if not (target / "model_index.json").exists():
            building = cache / f".building-{digest}-{os.getpid()}"
            _build(building, config)
            building.rename(target)
    return target


def session_cache(tmp_path_factory: Any) -> Path:
    """Where this test session builds the tiny FLUX: one folder for all its xdist workers (each
    worker's base folder is popen-gwN under the session's), so that it is built once."""
    base = Path(tmp_path_factory.getbasetemp())
    return (base.parent if base.name.startswith("popen-gw") else base) / "tiny-flux-cache"


def _characters() -> list[str]:
    return sorted(set(string.ascii_letters + string.digits + string.punctuation))


def _clip_tokenizer(folder: Path, max_length: int) -> Any:
    from transformers import CLIPTokenizer

    chars = _characters()
    tokens = ["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars)]
    tokenizer = CLIPTokenizer(
        vocab={t: i for i, t in enumerate(tokens)}, merges=[], model_max_length=max_length
    )
    tokenizer.save_pretrained(folder)
    return tokenizer


def t5_tokenizer(folder: Path, max_length: int) -> Any:
    """A T5 Unigram tokenizer over single characters, saved in `folder`, at most `max_length`
    tokens (FLUX's T5 and Wan's UMT5 alike: a prompt's tokens, not their values, cost time)."""
    from transformers import T5TokenizerFast

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    vocab += [(c, -2.0) for c in _characters()]
    tokenizer = T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=max_length)
    tokenizer.save_pretrained(folder)
    return tokenizer


def _build(folder: Path, config: dict[str, Any]) -> None:
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    width = config["width"]
    clip_tokenizer = _clip_tokenizer(folder / "tokenizer", 77)
    t5_tokenizer_2 = t5_tokenizer(folder / "tokenizer_2", config["max_sequence"])
    clip = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(clip_tokenizer),
            hidden_size=width,
            intermediate_size=2 * width,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=77,
            projection_dim=width,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=len(t5_tokenizer_2),
            d_model=width,
            d_kv=8,
            d_ff=2 * width,
            num_layers=1,
            num_heads=2,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    )
    blocks = list(config["vae_blocks"])
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * len(blocks),
        up_block_types=["UpDecoderBlock2D"] * len(blocks),
        block_out_channels=blocks,
        layers_per_block=1,
        latent_channels=config["latent_channels"],
        norm_num_groups=min(blocks),
        sample_size=64,
        scaling_factor=0.3611,
        shift_factor=0.1159,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4 * config["latent_channels"],
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=config["head_dim"],
        num_attention_heads=config["heads"],
        joint_attention_dim=width,
        pooled_projection_dim=width,
        guidance_embeds=config["guidance"],
        axes_dims_rope=tuple(config["rope"]),
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=clip,
        tokenizer=clip_tokenizer,
        text_encoder_2=t5,
        tokenizer_2=t5_tokenizer_2,
        transformer=transformer,
    ).save_pretrained(folder)


def pictures(folder: Path, count: int = 3) -> list[tuple[Path, str]]:
    """`count` small noisy pictures (fixed seeds) and their captions, a stand-in dataset."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for number in range(count):
        pixels = np.random.default_rng(number).integers(0, 256, (80, 96, 3), dtype=np.uint8)
        path = folder / f"{number + 1:04d}.png"
        Image.fromarray(pixels).save(path)
        made.append((path, f"a photo of sks, picture {number + 1}"))
    return made
