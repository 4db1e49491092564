"""The offline provider's video LoRA: a labelled simulation of a Wan LoRA's training, without network,
keys or a GPU, so that a video LoraTraining (and a VideoGeneration with its loraRef) can be tried
end to end (`make demo`).

What it makes is honest about itself: small safetensors files under the layer names diffusers
gives Wan's transformer (`transformer.blocks.N.attn1.to_q.lora_A.weight`, ...), whose metadata says
`contentgen.placeholder: true`, "offline provider: a simulated Wan LoRA, not a trained model", the
base model and what the dataset held; a Wan 2.2 A14B base model gets two (the high-noise and the
low-noise expert's), as a trainer of it returns; and a config.json saying the same. The dataset zip
is read for real: its stills and clips are counted and hashed, and a zip with neither fails as a
trainer would. Nothing is paid for, no checkpoint is simulated (a video LoRA's likeness is not
scored on pictures: pipeline/video_lora.py).
"""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

from contentgen.errors import InvalidInput
from contentgen.providers.progress import SubProgress

from .base import TrainingOutput, TrainingRequest

NOTE = "offline provider: a simulated Wan LoRA, not a trained model"
STILLS = (".jpg", ".jpeg", ".png")
CLIPS = (".mp4",)
# The simulated LoRA's layers: each block's attention and feed-forward projections, as diffusers
# names Wan's (WanTransformer3DModel), at a rank and width small enough to read at a glance.
BLOCKS, RANK, WIDTH = 2, 4, 16
LAYERS = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "ffn.net.0.proj")


def read_media(dataset: Path) -> tuple[str, int, int]:
    """The zip's sha256, and how many stills and clips it holds (InvalidInput for none)."""
    digest = hashlib.sha256(dataset.read_bytes()).hexdigest()
    try:
        with zipfile.ZipFile(dataset) as archive:
            names = [n.lower() for n in archive.namelist()]
    except zipfile.BadZipFile as bad:
        raise InvalidInput(f"the dataset archive {dataset.name} is not a zip ({bad})") from None
    stills = sum(n.endswith(STILLS) for n in names)
    clips = sum(n.endswith(CLIPS) for n in names)
    if not stills and not clips:
        raise InvalidInput(f"the dataset archive {dataset.name} holds no stills and no clips")
    return digest, stills, clips


def _tensors(seed: str) -> dict[str, tuple[list[int], list[float]]]:
    """A LoRA's A and B matrices per layer, made deterministically from `seed`."""
    tensors: dict[str, tuple[list[int], list[float]]] = {}
    for block in range(BLOCKS):
        for layer in LAYERS:
            for part, shape in (("lora_A", [RANK, WIDTH]), ("lora_B", [WIDTH, RANK])):
                name = f"transformer.blocks.{block}.{layer}.{part}.weight"
                stream = hashlib.sha256(f"{seed}:{name}".encode()).digest()
                values = [(stream[i % len(stream)] - 128) / 4096 for i in range(shape[0] * shape[1])]
                tensors[name] = (shape, values)
    return tensors


def write_safetensors(
    path: Path, tensors: dict[str, tuple[list[int], list[float]]], metadata: dict[str, str]
) -> None:
    """float32 tensors {name: (shape, values)} as a safetensors file (as offline.write_safetensors)."""
    header: dict[str, Any] = {"__metadata__": metadata}
    data = bytearray()
    for name in sorted(tensors):
        shape, values = tensors[name]
        header[name] = {
            "dtype": "F32",
            "shape": shape,
            "data_offsets": [len(data), len(data) + 4 * len(values)],
        }
        data += struct.pack(f"<{len(values)}f", *values)
    encoded = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + bytes(data))


def train_video_lora(request: TrainingRequest, work_dir: Path, progress: SubProgress) -> TrainingOutput:
    """The simulated training of a Wan LoRA for `request.base_model` (see the module)."""
    progress(0)
    info = request.plan.base
    digest, stills, clips = read_media(request.dataset_zip)
    metadata = {
        "contentgen.placeholder": "true",
        "contentgen.simulated": "true",
        "contentgen.note": NOTE,
        "contentgen.provider": "offline",
        "contentgen.base_model": info.name,
        "contentgen.trigger_word": request.trigger_word,
        "contentgen.steps": str(request.plan.steps),
        "contentgen.dataset_sha256": digest,
        "contentgen.dataset_stills": str(stills),
        "contentgen.dataset_clips": str(clips),
    }
    pair = info.experts is not None
    weights = work_dir / "model.safetensors"
    high = {**metadata, "contentgen.expert": "high-noise"} if pair else metadata
    write_safetensors(weights, _tensors(f"{digest}:high" if pair else digest), high)
    low = None
    if pair:
        low = work_dir / "model-low-noise.safetensors"
        write_safetensors(low, _tensors(f"{digest}:low"), {**metadata, "contentgen.expert": "low-noise"})
    progress(90)
    config = work_dir / "config.json"
    said = {
        "placeholder": True,
        "note": NOTE,
        "provider": "offline",
        "base_model": info.name,
        "experts": ["high-noise", "low-noise"] if pair else [],
        "trigger_word": request.trigger_word,
        "steps": request.plan.steps,
        "dataset_sha256": digest,
        "dataset_stills": stills,
        "dataset_clips": clips,
    }
    config.write_text(json.dumps(said, indent=2) + "\n")
    progress(100)
    return TrainingOutput(
        weights=weights,
        config=config,
        request_id=f"offline-{digest[:16]}",
        placeholder=True,
        details={"note": NOTE, "dataset_sha256": digest, "dataset_stills": stills, "dataset_clips": clips},
        low_noise_weights=low,
    )
