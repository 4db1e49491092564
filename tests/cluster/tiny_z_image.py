"""A tiny Z-Image made from its published configs' shapes with random weights, saved as a diffusers
model directory (model_index.json and its subfolders) for the cluster's tests: nothing is
downloaded. Its parts are Z-Image's (Tongyi-MAI/Z-Image-Turbo's model_index.json): a Qwen3 text
encoder (its second-to-last hidden states are the captions' features), FLUX's 16-channel VAE
(AutoencoderKL, scaling 0.3611, shift 0.1159) and the single-stream ZImageTransformer2DModel, at a
width of 32. The tokenizer is a character-level one with a chat template (the pipeline wraps each
prompt in one), built here so a prompt tokenises the same way on every machine."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

WIDTH = 32  # the text encoder's hidden size, the transformer's caption features
CHAT = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tokenizer(folder: Path) -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    chars = sorted(set(string.printable))
    vocab = {t: i for i, t in enumerate([*specials, *chars])}
    model = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    model.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    made = PreTrainedTokenizerFast(
        tokenizer_object=model, pad_token="<|endoftext|>", eos_token="<|im_end|>", model_max_length=128
    )
    made.add_special_tokens({"additional_special_tokens": specials[1:]})
    made.chat_template = CHAT
    made.save_pretrained(folder)
    return made


def tiny_z_image(folder: Path) -> Path:
    """The model directory, built into `folder` unless it is there already."""
    if (folder / "model_index.json").exists():
        return folder
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        ZImagePipeline,
        ZImageTransformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(0)
    words = tokenizer(folder / "tokenizer")
    encoder = Qwen3Model(
        Qwen3Config(
            vocab_size=len(words),
            hidden_size=WIDTH,
            intermediate_size=2 * WIDTH,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=16,
            max_position_embeddings=256,
        )
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[8, 8, 8, 8],
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=0.3611,
        shift_factor=0.1159,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    transformer = ZImageTransformer2DModel(
        in_channels=16,
        dim=32,
        n_layers=1,
        n_refiner_layers=1,
        n_heads=2,
        n_kv_heads=2,
        cap_feat_dim=WIDTH,
        axes_dims=[8, 4, 4],  # sums to the heads' width (16)
        axes_lens=[256, 64, 64],
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)  # Z-Image-Turbo's scheduler_config.json
    ZImagePipeline(
        scheduler=scheduler, vae=vae, text_encoder=encoder, tokenizer=words, transformer=transformer
    ).save_pretrained(folder)
    return folder
