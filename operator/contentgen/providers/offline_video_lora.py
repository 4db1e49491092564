"""The offline provider's video LoRA: a labelled simulation of a Wan LoRA's training
(offline_training.py trains it as it trains a FLUX.1 one), without network, keys or a GPU, so that a
video LoraTraining (its checkpoints scored, stopped early, kept at its best) and a VideoGeneration
with its loraRef can be tried end to end (`make demo`).

What it makes is honest about itself: small safetensors files under the layer names diffusers
gives Wan's transformer (`transformer.blocks.N.attn1.to_q.lora_A.weight`, ...), whose metadata says
`contentgen.placeholder: true` and what made them; a Wan 2.2 A14B base model gets two (the
high-noise and the low-noise expert's), as a trainer of it returns. Each carries the subject's
pictures (offline_subject.py), and its checkpoints are drawn for the watch as clips' frames
(`OfflineClips`: the offline video generator's labelled frames, the face moving across them as
far as the checkpoint's step had learned it), scored by the real scorer."""

from __future__ import annotations

import hashlib
from pathlib import Path

from contentgen.api.base_models import BaseModelInfo
from contentgen.api.image import IMAGE_SIZES

from . import clip_frames, offline_subject
from .base import Checkpoint, ImageOutput, ImageRequest, LoraWeights, VideoRequest
from .offline_training import SimulatedLora, Tensors, placeholder_tensors
from .progress import SubProgress

# The simulated LoRA's layers: each block's attention and feed-forward projections, as diffusers
# names Wan's (WanTransformer3DModel), at a rank and width small enough to read at a glance.
BLOCKS, RANK, WIDTH = 2, 4, 16
LAYERS = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "ffn.net.0.proj")
FRAMES, FPS = 17, 16  # the cluster's in-loop clips' (families/video_live.py)
SIDE = 256  # each frame's longer side


def wan_tensors(seed: str) -> Tensors:
    """A LoRA's A and B matrices per layer, made deterministically from `seed`."""
    tensors: Tensors = {}
    for block in range(BLOCKS):
        for layer in LAYERS:
            for part, shape in (("lora_A", [RANK, WIDTH]), ("lora_B", [WIDTH, RANK])):
                name = f"transformer.blocks.{block}.{layer}.{part}.weight"
                stream = hashlib.sha256(f"{seed}:{name}".encode()).digest()
                values = [(stream[i % len(stream)] - 128) / 4096 for i in range(shape[0] * shape[1])]
                tensors[name] = (shape, values)
    return tensors


def lora_of(base: BaseModelInfo) -> SimulatedLora:
    """The files a simulated LoRA of `base` is: FLUX.1's one placeholder, a Wan LoRA's layers (a
    Wan 2.2 A14B pair: one file per expert)."""
    if not base.video:
        return SimulatedLora(placeholder_tensors)
    return SimulatedLora(wan_tensors, ("high-noise", "low-noise") if base.experts is not None else ("",))


class OfflineClips:
    """The watch's pictures of a simulated video LoRA's checkpoint: each prompt and seed a clip of
    the offline video generator's, its frames sampled across it as the picture scored
    (providers/clip_frames.py), the subject's face drawn with the checkpoint's LoRA."""

    name = "offline"
    placeholder_pictures = True  # faces only with a LoRA it trained (evaluation.run_evaluations)

    def __init__(self, base: str) -> None:
        self.base = base

    def draws_subject(self, lora: LoraWeights) -> bool:
        return lora.scale > 0 and offline_subject.of_loras([lora.url]) is not None

    def weights_of(self, model: str) -> str:
        """Its baseline's key: clips, never the offline pictures'."""
        return f"{model}.offline-clip-{FRAMES}f"

    def generate_images(
        self, request: ImageRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> list[ImageOutput]:
        from .offline_video import clip_frame, derived_seed

        width, height = _shape(*IMAGE_SIZES[request.image_size])
        seed = request.seed if request.seed is not None else derived_seed(request.prompt)
        clip = VideoRequest(
            prompt=request.prompt,
            model=f"{self.base} (simulated)",
            app="offline",
            frames=FRAMES,
            fps=FPS,
            width=width,
            height=height,
            resolution="",
            aspect_ratio="",
            seed=seed,
            loras=request.loras,
        )
        subject = offline_subject.of_loras([lora.url for lora in request.loras if lora.scale > 0])
        wanted = clip_frames.sampled(FRAMES)
        frames = [clip_frame(clip, seed, None, n, subject)[..., ::-1] for n in wanted]
        path = clip_frames.write(work_dir / "image-01.png", frames, [round(n / FPS, 4) for n in wanted])
        progress(100)
        return [ImageOutput(path, width, height, "image/png", seed=seed, placeholder=True)]


def _shape(width: int, height: int) -> tuple[int, int]:
    """The picture's shape, its longer side SIDE, on even pixels (the frames' encoder's)."""
    scale = SIDE / max(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
