"""A video LoRA's dataset as its family's trainer reads it (wan_training.py; ltx2_training.py at
LTX-2's cell and frame step, the functions' `multiple` and `step`): the dataset archive's clips and
stills with their captions, each as the pixels the VAE encodes, and the cached encodings a
training step reads (the clip's latents, its caption's UMT5 encoding; an image-to-video model's
first-frame condition too).

The archive is a video LoRA's (pipeline/dataset.py: flat, `0001.jpg` and `clip-0001.mp4`, each with
its `.txt` caption beside it) or a stills dataset's (`images/0001.jpg`, `captions/0001.txt`); a
caption missing is the trigger word. A clip is trained at its own shape (the dataset's resolution
buckets, about 832 × 480's pixels), scaled down to at most `resolution`² pixels, sides on
multiples of 16, with its frames (4k+1, Wan's frame rule: a clip of another count is cut to the
4k+1 frames at its start); a still is a one-frame clip of its centre square at `resolution`.

The latents are as Wan's pipelines hold theirs: the VAE's distribution's mode (its mean: the same
every epoch), normalised per channel by the VAE config's `latents_mean` and `latents_std`
(WanPipeline's decode undoes exactly that). Captions are encoded as WanPipeline encodes a prompt
(`encode_prompt`, 512 tokens, no negative)."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from contentgen.errors import InvalidInput

from ..generation.video import text_only

STILLS = (".jpg", ".jpeg", ".png", ".webp")
CLIPS = (".mp4", ".webm", ".mov", ".mkv")
MULTIPLE = 16  # Wan's latents are 8 × 8 pixels, patched 2 × 2
TEXT_TOKENS = 512  # WanPipeline's max_sequence_length


@dataclass(frozen=True)
class Example:
    path: Path
    caption: str
    kind: Literal["still", "clip"]


@dataclass
class Cached:
    """One example as a step reads it, on the device the transformer trains on."""

    latents: torch.Tensor  # 1 × 16 × F' × h × w, float32
    text: torch.Tensor  # 1 × 512 × the text encoder's width, the transformer's dtype
    condition: torch.Tensor | None = None  # image-to-video: the mask and the first frame's latents
    image: torch.Tensor | None = None  # Wan 2.1 image-to-video: the CLIP image encoder's hidden states


def read_dataset(archive: Path, folder: Path, trigger_word: str) -> list[Example]:
    """The clips and stills of a dataset archive with their captions, extracted into `folder`."""
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        media = sorted(n for n in names if n.lower().endswith(STILLS + CLIPS) and not n.endswith("/"))
        examples: list[Example] = []
        for name in media:
            kind: Literal["still", "clip"] = "clip" if name.lower().endswith(CLIPS) else "still"
            target = folder / f"{len(examples):04d}-{Path(name).name}"
            target.write_bytes(zf.read(name))
            beside, nested = str(Path(name).with_suffix(".txt")), f"captions/{Path(name).stem}.txt"
            caption = next((zf.read(c).decode("utf-8").strip() for c in (beside, nested) if c in names), "")
            examples.append(Example(target, caption or trigger_word, kind))
    if not examples:
        raise InvalidInput(f"the dataset {archive.name} holds no clips or pictures")
    return examples


def clip_shape(width: int, height: int, resolution: int, multiple: int = MULTIPLE) -> tuple[int, int]:
    """A clip's trained shape: its own, scaled to at most `resolution`² pixels, on multiples of
    `multiple` (Wan's 16; another family's latent cell times its patch) (pure)."""
    scale = min(1.0, (resolution * resolution / (width * height)) ** 0.5)
    return (
        max(multiple, int(width * scale) // multiple * multiple),
        max(multiple, int(height * scale) // multiple * multiple),
    )


def frame_count(frames: int, step: int = 4) -> int:
    """The `step`k+1 frames a clip of `frames` trains on (Wan's VAE: 4; LTX-2's: 8): the most at its
    start (pure)."""
    if frames < 1:
        raise ValueError("a clip of no frames")
    return (frames - 1) // step * step + 1


def pixels(example: Example, resolution: int, multiple: int = MULTIPLE, step: int = 4) -> torch.Tensor:
    """1 × 3 × F × H × W in [-1, 1]: a clip's frames at its trained shape, or a still's centre
    square at `resolution` as one frame (sides on multiples of `multiple`, `step`k+1 frames)."""
    from PIL import Image

    if example.kind == "still":
        with Image.open(example.path) as opened:
            picture = opened.convert("RGB")
        side = min(picture.size)
        left, top = (picture.width - side) // 2, (picture.height - side) // 2
        square = max(multiple, resolution // multiple * multiple)
        frames = [
            picture.crop((left, top, left + side, top + side)).resize(
                (square, square), Image.Resampling.BICUBIC
            )
        ]
    else:
        frames = _decoded(example.path)
        width, height = clip_shape(frames[0].width, frames[0].height, resolution, multiple)
        frames = [
            f.resize((width, height), Image.Resampling.BICUBIC) if f.size != (width, height) else f
            for f in frames[: frame_count(len(frames), step)]
        ]
    array = np.stack([np.asarray(f, dtype=np.float32) for f in frames]) / 127.5 - 1.0
    return torch.from_numpy(array).permute(3, 0, 1, 2).unsqueeze(0)


def first_frame_of(path: Path) -> Any:
    """A clip's first frame (a PIL picture)."""
    return _decoded(path)[0]


def _decoded(path: Path) -> list[Any]:
    import av

    try:
        with av.open(str(path)) as container:
            frames = [frame.to_image() for frame in container.decode(video=0)]
    except (av.error.FFmpegError, StopIteration) as exc:
        raise InvalidInput(f"the dataset's clip {path.name} cannot be decoded ({exc})") from None
    if not frames:
        raise InvalidInput(f"the dataset's clip {path.name} has no frames")
    return frames


def normalised(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    """The VAE's latents as the transformer sees them: (z - mean) / std per channel."""
    z_dim = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean).view(1, z_dim, 1, 1, 1).to(latents)
    std = torch.tensor(vae.config.latents_std).view(1, z_dim, 1, 1, 1).to(latents)
    return (latents - mean) / std


@torch.no_grad()
def encode_video(vae: Any, video: torch.Tensor) -> torch.Tensor:
    """A clip's normalised latents (float32, on the VAE's device)."""
    encoded = vae.encode(video.to(vae.device, vae.dtype)).latent_dist.mode()
    return normalised(vae, encoded.float())


@torch.no_grad()
def encode_text(pipe: Any, caption: str, device: torch.device) -> torch.Tensor:
    """A caption as WanPipeline encodes a prompt: UMT5's last hidden state, 512 tokens, the
    padding zeroed (an image-to-video pipeline's components encode it through WanPipeline)."""
    embeds, _ = text_only(pipe).encode_prompt(
        prompt=caption,
        do_classifier_free_guidance=False,
        max_sequence_length=TEXT_TOKENS,
        device=device,
    )
    encoded: torch.Tensor = embeds
    return encoded


@torch.no_grad()
def first_frame_condition(pipe: Any, video: torch.Tensor) -> torch.Tensor:
    """Image-to-video's condition for a clip: WanImageToVideoPipeline's own (its `prepare_latents`
    from the clip's first frame: the mask of the given frame and its latents), float32."""
    _, _, frames, height, width = video.shape
    latent_frames = (frames - 1) // pipe.vae_scale_factor_temporal + 1
    shape = (
        1,
        pipe.vae.config.z_dim,
        latent_frames,
        height // pipe.vae_scale_factor_spatial,
        width // pipe.vae_scale_factor_spatial,
    )
    device = pipe.vae.device
    _, condition = pipe.prepare_latents(
        video[:, :, 0].to(device, torch.float32),
        1,
        pipe.vae.config.z_dim,
        height,
        width,
        frames,
        torch.float32,
        device,
        latents=torch.zeros(shape),  # the noise is the trainer's to draw, not the pipeline's
    )
    conditioned: torch.Tensor = condition.float()
    return conditioned


@torch.no_grad()
def image_embeds(pipe: Any, video: torch.Tensor, device: torch.device) -> torch.Tensor | None:
    """Wan 2.1 image-to-video's CLIP image encoding of a clip's first frame (None: no encoder)."""
    if getattr(pipe, "image_encoder", None) is None:
        return None
    from PIL import Image

    first = ((video[0, :, 0].permute(1, 2, 0).float().cpu().numpy() + 1.0) * 127.5).round().clip(0, 255)
    encoded: torch.Tensor = pipe.encode_image(Image.fromarray(first.astype(np.uint8)), device)
    return encoded


def largest(
    examples: Sequence[Example], resolution: int, multiple: int = MULTIPLE, step: int = 4
) -> tuple[int, int, int]:
    """(width, height, frames) of the largest example as trained: what the memory plan holds."""
    best = (0, 0, 0)
    for example in examples:
        if example.kind == "still":
            side = max(multiple, resolution // multiple * multiple)
            shape = (side, side, 1)
        else:
            import av

            with av.open(str(example.path)) as container:
                stream = container.streams.video[0]
                counted = stream.frames or sum(1 for _ in container.decode(stream))
                width, height = clip_shape(
                    stream.codec_context.width, stream.codec_context.height, resolution, multiple
                )
            shape = (width, height, frame_count(max(1, counted), step))
        if _cells(shape, step) > _cells(best, step):
            best = shape
    return best


def _cells(shape: tuple[int, int, int], step: int) -> int:
    """A (width, height, frames) shape's pixels times its latent frames (pure)."""
    return shape[0] * shape[1] * ((shape[2] - 1) // step + 1)
