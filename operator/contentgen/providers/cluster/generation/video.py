"""provider cluster's videos: diffusers' Wan 2.1 and 2.2 (`wan-1.3b-t2v`, `wan-2.2-a14b-t2v`,
WanPipeline; `wan-14b-i2v`, WanImageToVideoPipeline), LTX-Video (`ltx-video`, LTXPipeline,
LTXImageToVideoPipeline for a picture) and LTX-2 (`ltx-2`, LTX2Pipeline and
LTX2ImageToVideoPipeline, which draw the clip's sound with its frames), from the staged models'
root, on this machine's GPU (bf16; Wan's VAE and CLIP image encoder in fp32, as its model cards
load them) or CPU (fp32), with the request's LoRAs.

Staged layout: each model is the diffusers directory of its published repository, copied (or staged
from CONTENTGEN_CLUSTER_MODELS_STORE, `staging.py`) under the models' root with the repository's
name (`STAGED`): `Wan2.1-T2V-1.3B-Diffusers`, `Wan2.1-I2V-14B-480P-Diffusers` (its 720p requests
use `Wan2.1-I2V-14B-720P-Diffusers`, the checkpoint trained at that size), `LTX-Video`. Nothing is
fetched from a hub: every load is `local_files_only`, and a directory that is missing or incomplete
is `ModelNotFound` in one line naming it and what to stage there, before any GPU work.

Memory: the pipeline is loaded once per process and kept (`pipelines`), laid out by a plan chosen
from the card's free memory before any load (`plan_memory`): every component resident when they
fit, else diffusers' `enable_model_cpu_offload` (each component on the card while it runs), and the
VAE decoding in tiles when the untiled decode would not fit. The estimates are arithmetic on the
staged weights' sizes (read from their safetensors headers) and the clip's latent tokens, to be
measured on a GPU; a clip that cannot fit even offloaded is `GpuMemoryTooSmall` with the numbers.

Cost: the GPU time the request held, from loading to the decoded frames, × the pod's GPUs
(`VideoOutput.gpu_seconds`), with, for a resumed clip, what the attempts before it held until the
state it resumed from (in that state's record); progress follows the denoising steps
(`callback_on_step_end`).

Resume (what is kept, and the loop's skipping of the steps made: `video_state.py`): a pod killed
mid-denoise goes on from the loop's last kept state, without drawing the steps before it again.
While it denoises, after a step that ends a minute or more after the last state kept
(`CHECKPOINT_SECONDS`; `checkpoint_steps` keeps every n steps too), the loop's state goes to the
request's write-once `frames_made` store under names of the attempt's own (`STATE`):
`latents-0012-<attempt>.pt` (torch.save of the latents as the loop has them, the CPU generator's
state, and the scheduler's: its step index, and UniPC's history, `SCHEDULER_STATE`), then its record
`latents-0012-<attempt>.json` (the step, the inputs' digest, seed, steps, scheduler class, diffusers
and torch versions, device and dtype, the GPU-seconds until then, the state's SHA-256); the states
before it are then removed. A retry of the same request calls the pipeline as before with the latest
matching state's latents and generator, and with the pipeline's `interrupt`, which its loop reads
first in each step (`if self.interrupt: continue`), true for the steps made: neither the transformer
nor the scheduler runs for them, and the scheduler is put back as they left it at the first step
drawn (after the loop's `set_timesteps` has started it again). On the CPU the frames equal an
uninterrupted run's bit for bit (tests/providers/test_cluster_video_resume.py); on a GPU the steps
after the state run the same kernels on the same values (the latents are fp32 in the loop, or bf16
values the next step reads the same), so they should differ at most as two uninterrupted runs on
that card can (not yet measured on one). A state that does not match the request (other inputs,
seed, steps, scheduler, diffusers, torch, device), or that is damaged, is passed over with a warning
rather than refused: any sound state, or none, makes the same frames, only GPU time is lost, where a
refusal would stop a run that can finish. A scheduler whose state is not known keeps none (its
denoise runs whole); a loop that does not skip as this expects stops at its first step drawn
(RuntimeError), before anything is kept.

A clip with sound (LTX-2) keeps its audio latents in the state beside the video's (its pipeline
does not offer them to the callback, so the call does), and its loop cannot skip steps (it works
out at its first step what every later one reads): a retry runs the rest of the schedule alone,
from the seed's noise replaced by the kept latents and the generator where they left it (`Sound`);
so it keeps states only with a scheduler whose state is its step alone (flow-matching Euler, which
LTX-2 ships).

Once the denoise and the VAE's decode end, the decoded frames (and the sound's waveform) go to the
store (`frames.npz`, lossless uint8 RGB, then `frames.json`, its record: seed, the id its GPU time
is counted under, GPU-seconds, SHA-256) and the states are removed, so a pod killed after that
(while encoding, or storing the video) takes them and only encodes, without loading the model or
denoising again. The store's `request.json` (a digest of the inputs and the seed, written first)
makes a retry go on with the same seed, and refuses frames made for other inputs."""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import shutil
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from contentgen.api.video import MODELS
from contentgen.errors import GpuMemoryTooSmall, InvalidInput, ModelNotFound, PermanentError, TransientError
from contentgen.files import sha256_file
from contentgen.providers.base import Checkpoint, LoraWeights, VideoOutput, VideoRequest
from contentgen.providers.progress import Monotonic, SubProgress

from .. import devices, memory
from ..files import FolderFiles
from ..models import model_dir
from . import generation
from .video_loras import Loaded, check_all_loaded, experts_loaded, files_of
from .video_models import STAGED, Staged, staged_directory
from .video_state import (
    CHECKPOINT_SECONDS,
    FRAMES,
    RECORD,
    STATE,
    Checkpoints,
    Drawn,
    FramesMade,
    Kept,
    Skip,
    Sound,
    checkpointable,
    draws_sound,
    restore_scheduler,
    scheduler_state,
    skipping,
)

if TYPE_CHECKING:  # flux imports torch: a pooled Job's worker image has none
    from . import flux

log = logging.getLogger(__name__)


def generation_size(width: int, height: int, multiple: int) -> tuple[int, int]:
    """The size the pipeline draws at: the asked one rounded to the model's multiple (pure); the
    frames are resized to the asked size before encoding when they differ (LTX's 1280 × 720)."""
    return max(multiple, round(width / multiple) * multiple), max(
        multiple, round(height / multiple) * multiple
    )


# --- memory -------------------------------------------------------------------------------------

# Activations while denoising, per latent token, in units of the transformer's width × 2 bytes (one
# block at a time, classifier-free guidance's two passes). Measured for Wan 2.1 T2V 1.3B at 832 × 480
# × 81 frames on an H200 (docs/cluster-gpus.md, "The video step at real size"): 1.71 GB over the
# weights, where this gives 3.2 GB.
ACTIVATIONS_PER_TOKEN = 32


@dataclass(frozen=True)
class Decode:
    """A family's VAE decode: the bytes each pixel of the frames it decodes at once holds, a tile's
    pixels when tiled (diffusers' tile_sample_min), and how many frames it decodes at once (Wan
    causally, 4 at a time; 0: all together, as LTX)."""

    bytes_per_pixel: int
    tile_pixels: int
    frames_at_once: int = 0


# Wan's measured with its activations above: 9.40 GB to decode 832 × 480 whole (5,884 bytes a pixel
# of its 4 frames, rounded up here), 2.01 GB in its 256 × 256 tiles. LTX-Video's and LTX-2's are
# not measured yet (LTX-2's audio decode is some seconds of a mel spectrogram: left out).
DECODE = {
    "wan": Decode(6144, 256 * 256, frames_at_once=4),
    "ltx": Decode(1536, 512 * 512),
    "ltx2": Decode(1536, 512 * 512),
}
# Each family's frames and pixels a side per latent token: Wan's VAE 4 frames and 8 × 8 pixels with
# its transformer's 2 × 2 patch; LTX-Video's and LTX-2's 8 frames and 32 × 32 pixels, patch 1.
TOKEN = {"wan": (4, 16), "ltx": (8, 32), "ltx2": (8, 32)}


@dataclass(frozen=True)
class VideoPlan:
    offload: bool = False
    vae_tiling: bool = False
    needed: int = 0
    free: int = 0
    chosen_by: str = "cpu"

    def describe(self) -> str:
        if self.chosen_by == "cpu":
            return "cpu (fp32, every component resident)"
        layout = "model CPU offload" if self.offload else "every component resident"
        tiles = ", VAE tiling" if self.vae_tiling else ""
        return f"bf16, {layout}{tiles}: about {memory.gib(self.needed)} of {memory.gib(self.free)} free"


@dataclass(frozen=True)
class VideoJob:
    family: str
    width: int
    height: int
    frames: int
    hidden: int  # the transformer's width (heads × head dim)

    def tokens(self) -> int:
        frames, side = TOKEN[self.family]
        return ((self.frames - 1) // frames + 1) * (self.height // side) * (self.width // side)

    def decode(self, tiled: bool) -> int:
        vae = DECODE[self.family]
        at_once = min(self.frames, vae.frames_at_once or self.frames)
        pixels = min(self.width * self.height, vae.tile_pixels) if tiled else self.width * self.height
        return at_once * pixels * vae.bytes_per_pixel


def plan_memory(card: memory.Card, components: Mapping[str, int], job: VideoJob) -> VideoPlan:
    """The layout of a clip on `card` (pure): every component resident, untiled, then tiled; else
    offloaded (the largest component and the work at a time), tiled; else GpuMemoryTooSmall."""
    if not card.gpu:
        return VideoPlan()
    room = memory.usable(card)
    tried = layouts(components, job)
    for offload, tiling, needed in tried:
        if needed <= room:
            return VideoPlan(offload, tiling, needed, card.free, "auto")
    needed = tried[-1][2]
    raise GpuMemoryTooSmall(
        f"a video of {job.frames} frames at {job.width}x{job.height} needs about {memory.gib(needed)} of "
        f"GPU memory even with model CPU offload and VAE tiling, and {card.name} has {memory.gib(card.free)} "
        f"free of {memory.gib(card.total)}: ask for fewer frames or a lower resolution, or use a larger card"
    )


def layouts(components: Mapping[str, int], job: VideoJob) -> list[tuple[bool, bool, int]]:
    """(offload, VAE tiling, bytes needed) of each layout, in the order they are tried (pure):
    every component resident and decoding whole, resident and tiled, offloaded and tiled."""
    activations = job.tokens() * job.hidden * 2 * ACTIVATIONS_PER_TOKEN
    weights, largest = sum(components.values()), max(components.values(), default=0)
    return [
        (False, False, weights + activations + job.decode(False)),
        (False, True, weights + activations + job.decode(True)),
        (True, True, largest + activations + job.decode(True)),
    ]


def component_bytes(model: Path, on: flux.Device) -> dict[str, int]:
    """Each component's weights in bytes as loaded on `on`, from its safetensors headers' shapes (no
    weights read): bf16 on a GPU, except Wan's VAE and image encoder, loaded in fp32."""
    fp32 = {"vae", "image_encoder"} if _family_of(model) == "wan" else set()
    sizes: dict[str, int] = {}
    for folder in sorted(p for p in model.iterdir() if p.is_dir()):
        count = sum(_parameters(f) for f in folder.glob("*.safetensors"))
        if count:
            sizes[folder.name] = count * (4 if folder.name in fp32 or not on.cuda else 2)
    return sizes


def _parameters(path: Path) -> int:
    return sum(int(np.prod(shape)) for shape in _shapes(path).values())


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape from a safetensors file's header (no weights read)."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > min(path.stat().st_size - 8, HEADER_LIMIT):  # not a safetensors file
            raise ValueError(f"{path.name}: a header of {length} bytes")
        header = json.loads(handle.read(length))
    return {k: tuple(int(n) for n in v["shape"]) for k, v in header.items() if k != "__metadata__"}


HEADER_LIMIT = 100 * 1024 * 1024  # safetensors' own limit on a header


# --- the LoRAs' layers -----------------------------------------------------------------------------

# Names only a FLUX.1 LoRA has, in diffusers' (single_transformer_blocks), BFL's and kohya's
# (double_blocks, single_blocks) formats: a LoraTraining's LoRA, which no video model loads.
_FLUX_LAYERS = re.compile(r"(?:^|[._])(?:single_transformer_blocks|double_blocks|single_blocks)[._]\d")
# What follows a layer's name in a LoRA's keys (diffusers' and PEFT's, kohya's, DoRA's)
_LORA_SUFFIXES = (
    ".lora_A.weight",
    ".lora_B.weight",
    ".lora_A.bias",
    ".lora_B.bias",
    ".lora_down.weight",
    ".lora_up.weight",
    ".alpha",
    ".lora_magnitude_vector",
)


def lora_mismatch(
    lora: Mapping[str, tuple[int, ...]], layers: Mapping[str, tuple[int, ...]], model: str, family: str
) -> str | None:
    """Why `model`'s transformer (its weights' shapes, `layers`) cannot take a LoRA (its tensors'
    shapes), or None (pure). A FLUX.1 LoRA is named by its blocks in any format; one in diffusers'
    format (`transformer.<layer>.lora_A.weight`) must name the transformer's own layers with their
    sides (a Wan 14B LoRA on the 1.3B has the names, not the widths). Other formats are converted
    by diffusers when loaded, which says what does not fit."""
    if any(_FLUX_LAYERS.search(key) for key in lora):
        return f"is a FLUX.1 LoRA (a LoraTraining's), and model {model} loads {family} LoRAs only"
    for key, shape in sorted(lora.items()):
        if not key.startswith("transformer."):
            continue
        suffix = next((s for s in _LORA_SUFFIXES if key.endswith(s)), None)
        if suffix is None:
            continue
        layer = key[len("transformer.") : -len(suffix)]
        weight = layers.get(layer + ".weight")
        if weight is None:
            return (
                f"names layer {layer}, which model {model}'s transformer does not have: not a {family} LoRA"
            )
        if len(weight) == 2 and len(shape) == 2:
            side = shape[1] if ".lora_A." in suffix or ".lora_down." in suffix else shape[0]
            wanted = weight[1] if ".lora_A." in suffix or ".lora_down." in suffix else weight[0]
            if side != wanted:
                return (
                    f"is made for a {family} of another size: its layer {layer} is {side} wide where model "
                    f"{model}'s is {wanted}"
                )
    return None


def transformer_layers(model: Path) -> dict[str, tuple[int, ...]]:
    """The staged transformer's weights' shapes, from their safetensors headers."""
    layers: dict[str, tuple[int, ...]] = {}
    for path in sorted((model / "transformer").glob("*.safetensors")):
        layers.update(_shapes(path))
    return layers


def check_loras(files: Sequence[Path], urls: Sequence[str], model: str, family: str, base: Path) -> None:
    """InvalidInput in one line naming the LoRA when the model cannot load it: before the card is
    touched or the model loaded, so no GPU time goes on a LoRA that could not apply."""
    layers: dict[str, tuple[int, ...]] | None = None
    for number, (path, url) in enumerate(zip(files, urls, strict=True)):
        try:
            shapes = _shapes(path)
        except (OSError, ValueError, KeyError, TypeError, struct.error):
            raise InvalidInput(f"loras[{number}]: {url.split('?', 1)[0]} is not a safetensors file") from None
        layers = transformer_layers(base) if layers is None else layers
        if problem := lora_mismatch(shapes, layers, model, family):
            raise InvalidInput(
                f"loras[{number}]: {url.split('?', 1)[0]} {problem}: give a LoRA made for it "
                "(docs/videos.md#loras)"
            )


def _family_of(model: Path) -> str:
    pipeline = str(json.loads((model / "model_index.json").read_text()).get("_class_name", ""))
    return "ltx2" if pipeline.startswith("LTX2") else "ltx" if pipeline.startswith("LTX") else "wan"


def _hidden(model: Path) -> int:
    config = json.loads((model / "transformer" / "config.json").read_text())
    return int(config["num_attention_heads"]) * int(config["attention_head_dim"])


# --- the pipelines -------------------------------------------------------------------------------


def load_pipeline(model: Path, on: flux.Device, *, offload: bool = False) -> Any:
    """The staged directory's own pipeline (its model_index.json's class: WanPipeline,
    WanImageToVideoPipeline or LTXPipeline), on the device in its dtype, or offloaded."""
    import diffusers

    index = json.loads((model / "model_index.json").read_text())
    cls = getattr(diffusers, str(index["_class_name"]))
    extra = wan_fp32_parts(model, on) if _family_of(model) == "wan" else {}
    pipe = cls.from_pretrained(str(model), dtype=on.dtype, local_files_only=True, **extra)
    pipe.set_progress_bar_config(disable=True)
    if offload and on.cuda:
        pipe.enable_model_cpu_offload(device=on.where)
    else:
        pipe = pipe.to(on.where)
    return pipe


def wan_fp32_parts(model: Path, on: flux.Device) -> dict[str, Any]:
    """A Wan model's VAE and image encoder (image-to-video) in fp32 on a GPU, as its model cards
    load them (a pipeline's keyword arguments); nothing on the CPU, where all is fp32 already."""
    import diffusers
    import torch

    if not on.cuda:
        return {}
    extra: dict[str, Any] = {
        "vae": diffusers.AutoencoderKLWan.from_pretrained(
            str(model), subfolder="vae", torch_dtype=torch.float32, local_files_only=True
        )
    }
    if (model / "image_encoder").is_dir():
        from transformers import CLIPVisionModel

        extra["image_encoder"] = CLIPVisionModel.from_pretrained(
            str(model / "image_encoder"), dtype=torch.float32, local_files_only=True
        )
    return extra


def text_only(pipe: Any) -> Any:
    """A Wan pipeline's text-to-video twin on its components, to encode prompts: diffusers 0.42's
    image-to-video pipeline cleans them with ftfy without checking that it is installed; the
    text-to-video pipeline's encoder (the same components) checks."""
    import diffusers

    library: Any = diffusers  # its pipelines are untyped
    if isinstance(pipe, library.WanPipeline):
        return pipe
    return library.WanPipeline(
        tokenizer=pipe.tokenizer,
        text_encoder=pipe.text_encoder,
        vae=pipe.vae,
        scheduler=pipe.scheduler,
        transformer=pipe.transformer,
    )


@dataclass(frozen=True)
class Clip:
    prompt: str
    negative_prompt: str
    width: int
    height: int
    frames: int
    fps: int
    steps: int
    guidance: float
    seed: int
    image: Any = None  # a PIL picture to animate, at width × height
    guidance_2: float = 0.0  # Wan 2.2 A14B: the low-noise expert's guidance (0: the pipeline's own)
    arguments: tuple[tuple[str, Any], ...] = ()  # the staged model's own (video_models.Staged)


def denoise(
    pipe: Any, clip: Clip, step: Callable[[int, int], None], checkpoints: Checkpoints | None = None
) -> Drawn:
    """The clip's frames, F × H × W × 3 uint8 RGB (and its sound, where the model draws one),
    `step(done, steps)` after each denoising step; with `checkpoints`, the loop's state kept when
    due, and the steps an earlier attempt kept not drawn again (`skipping`, or for a clip with
    sound the rest of the schedule alone: `Sound`)."""
    import diffusers
    import torch

    generator = torch.Generator("cpu").manual_seed(clip.seed)
    resumed = checkpoints.resumed if checkpoints is not None else None
    done = resumed.done if resumed is not None else 0
    drawn: list[int] = []
    skip: Skip | None = None
    pipe, inputs = _inputs(pipe, clip)
    sound = Sound(resumed, generator) if draws_sound(pipe) else None
    first = done if sound is not None else 0  # the step the loop's first is (Sound's rest of it)

    def callback(pipe: Any, index: int, _t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        # the loop's shape the resume relies on, checked before anything is kept from it
        index += first
        if index != done + len(drawn) or (skip is not None and skip.reads != index + 1):
            raise RuntimeError(
                f"diffusers {diffusers.__version__}'s {type(pipe).__name__} drew step {index + 1} of "
                f"{clip.steps} after {done + len(drawn)} (interrupt read {skip.reads if skip else '?'} "
                "times): its loop is not the one the kept steps are skipped in"
            )
        if sound is not None and not drawn:
            sound.check(pipe.scheduler)
        drawn.append(index)
        if checkpoints is not None and checkpoints.due(index + 1):
            state: Mapping[str, Any] = scheduler_state(pipe.scheduler)
            audio = None
            if sound is not None:
                state, audio = sound.whole(state), tensors["audio_latents"]
            checkpoints.keep(index + 1, tensors["latents"], state, generator, audio)
        step(index + 1, clip.steps)
        return {}

    kwargs: generation.CallArguments = {
        "height": clip.height,
        "width": clip.width,
        "num_frames": clip.frames,
        "num_inference_steps": clip.steps,
        "guidance_scale": clip.guidance,
        "generator": generator,
        "output_type": "np",
        "callback_on_step_end": callback,
        "callback_on_step_end_tensor_inputs": ["latents", *(["audio_latents"] if sound else [])],
        **inputs,
        **dict(clip.arguments),
    }
    if clip.guidance_2 and getattr(pipe, "transformer_2", None) is not None:
        kwargs["guidance_scale_2"] = clip.guidance_2
    with ExitStack() as resuming:
        if sound is not None:
            resuming.enter_context(sound.following(pipe))
            if resumed is not None:
                kwargs["sigmas"] = sound.sigmas(clip.steps)
        elif resumed is not None:
            # the loop starts from the kept latents, its generator where the kept steps left it
            # (LTX's decode draws noise from it), and skips the steps made
            generator.set_state(resumed.generator)
            kwargs["latents"] = resumed.latents
            skip = Skip(resumed.done, partial(restore_scheduler, pipe.scheduler, resumed.scheduler))
            resuming.enter_context(skipping(pipe, skip))
        if resumed is not None:
            step(resumed.done, clip.steps)
        resuming.enter_context(torch.inference_mode())
        out = pipe(**kwargs)
    if done + len(drawn) != clip.steps or (skip is not None and skip.reads != clip.steps):
        raise RuntimeError(
            f"diffusers {diffusers.__version__}'s {type(pipe).__name__} ran {done + len(drawn)} of "
            f"{clip.steps} steps: its loop is not the one the kept steps are skipped in"
        )
    return _drawn(pipe, out)


def _drawn(pipe: Any, out: Any) -> Drawn:
    """The pipeline's output as frames (uint8 RGB) and, where it drew one, its sound."""
    array = np.asarray(out.frames[0], dtype=np.float32)
    frames = np.ascontiguousarray(np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8))
    if getattr(out, "audio", None) is None:
        return Drawn(frames)
    sound = out.audio[0].float().cpu().numpy()  # the vocoder's channels × samples
    rate = int(pipe.vocoder.config.output_sampling_rate)
    return Drawn(frames, np.ascontiguousarray(sound, dtype=np.float32), rate)


def _inputs(pipe: Any, clip: Clip) -> tuple[Any, generation.CallArguments]:
    """The pipeline that draws `clip` and what it takes beside the shared arguments: the prompt
    (as text, or as embeddings), the picture it animates, LTX's frame rate."""
    import diffusers
    import torch

    library: Any = diffusers  # its pipelines are untyped
    text = {"prompt": clip.prompt, "negative_prompt": clip.negative_prompt or None}
    animating = {
        library.LTXPipeline: library.LTXImageToVideoPipeline,
        library.LTX2Pipeline: library.LTX2ImageToVideoPipeline,
    }.get(type(pipe))
    if animating is not None:
        inputs: generation.CallArguments = {"frame_rate": clip.fps, **text}
        if clip.image is not None:  # the kept pipeline's components, animating the picture
            pipe = animating(**pipe.components)
            pipe.set_progress_bar_config(disable=True)
            inputs["image"] = clip.image
        return pipe, inputs
    if not isinstance(pipe, library.WanImageToVideoPipeline):
        return pipe, text
    if clip.image is None:
        raise InvalidInput("model wan-14b-i2v animates a picture: give spec.image")
    with torch.inference_mode():
        positive, negative = text_only(pipe).encode_prompt(
            clip.prompt,
            clip.negative_prompt or None,
            do_classifier_free_guidance=clip.guidance > 1.0,
            device=pipe._execution_device,
        )
    return pipe, {"image": clip.image, "prompt_embeds": positive, "negative_prompt_embeds": negative}


def cover(path: Path, width: int, height: int) -> Any:
    """The picture to animate, resized to cover width × height and centre-cropped."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            picture = opened.convert("RGB")
    except (OSError, UnidentifiedImageError):
        raise InvalidInput(f"the picture to animate ({path.name}) cannot be decoded as an image") from None
    scale = max(width / picture.width, height / picture.height)
    resized = picture.resize(
        (max(width, round(picture.width * scale)), max(height, round(picture.height * scale))),
        Image.Resampling.LANCZOS,
    )
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


# --- the generator -------------------------------------------------------------------------------


def _stepped(meter: Monotonic, cancelled: Callable[[], bool], done: int, total: int) -> None:
    """After each denoising step: progress, or the end of a request whose client went away (a
    warm pool's: nothing more is drawn for it)."""
    if cancelled():
        raise TransientError("the clip's request was cancelled: its client went away", reason="Cancelled")
    meter(15 + 70 * done / total)


class RelayedFiles(FolderFiles):
    """A clip's folder in a warm pool: a local folder whose every put and delete is emitted as a
    line for the Job's worker, which makes the same change to its own store (`_apply`)."""

    def __init__(self, folder: Path, emit: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(folder)
        self.emit = emit

    def put(self, name: str, path: Path) -> str:
        uri = super().put(name, path)
        self.emit({"put": name, "data": base64.b64encode(path.read_bytes()).decode()})
        return uri

    def delete(self, name: str) -> None:
        super().delete(name)
        self.emit({"delete": name})


def _apply(message: dict[str, Any], store: FramesMade, work_dir: Path, meter: Monotonic) -> None:
    """A line of a pooled clip's answer applied by the Job's worker: a file its store keeps (write
    once), one it no longer needs, or progress."""
    if "put" in message:
        name = _relayed_name(str(message["put"]))
        path = work_dir / f"pooled-{name}"
        path.write_bytes(base64.b64decode(str(message["data"])))
        store.files.put(name, path)
        path.unlink()
    elif "delete" in message:
        store.files.delete(_relayed_name(str(message["delete"])))
    elif "progress" in message:
        meter(float(message["progress"]))


def _relayed_name(name: str) -> str:
    if name not in (FRAMES, RECORD) and not STATE.fullmatch(name):
        raise PermanentError(
            f"the generation pool named a file {name!r} no clip keeps", reason="ProviderError"
        )
    return name


def _staged(model: str) -> Staged:
    if model not in STAGED:
        raise InvalidInput(f"model {model} is not one of provider cluster's: {', '.join(sorted(STAGED))}")
    return STAGED[model]


@dataclass(frozen=True)
class _Planned:
    entry: Staged
    name: str  # its staged directory
    size: tuple[int, int]  # as drawn: the model's multiple
    steps: int
    inputs: dict[str, Any]


def _encoded(drawn: Drawn, request: VideoRequest, path: Path, meter: Monotonic) -> Path:
    """The frames at the asked size, encoded as H.264 faststart MP4 at `path` with their sound
    where the model drew one (progress 90 to 100)."""
    from contentgen.providers.offline_video import encode

    frames = drawn.frames
    if frames.shape[1:3] != (request.height, request.width):
        import cv2

        frames = np.stack(
            [cv2.resize(f, (request.width, request.height), interpolation=cv2.INTER_AREA) for f in frames]
        )
    path = encode(
        path,
        (np.ascontiguousarray(f[:, :, ::-1]) for f in frames),  # RGB to the encoder's BGR
        fps=request.fps,
        width=request.width,
        height=request.height,
        progress=lambda n: meter(90 + 10 * n / len(frames)),
        sound=(drawn.sound, drawn.rate) if drawn.sound is not None else None,
    )
    meter(100)
    return path


class ClusterVideoGenerator:
    """`VideoGenerator` on the cluster's own GPUs (see the module's description)."""

    name = "cluster"

    def __init__(
        self,
        root: Path,
        *,
        device: str = "",
        gpus: int = 1,
        inference_steps: int | None = None,
        models_store: str = "",
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
        checkpoint_steps: int = 0,
        pool_url: str = "",
    ) -> None:
        self.root, self.device_name, self.gpus = root, device, gpus
        self.pool_url = pool_url  # a warm pool of the clip's model denoises it (pool.py)
        self.inference_steps, self.models_store = inference_steps, models_store
        # the denoising loop's state is kept after a step ending this long after the last kept,
        # and every `checkpoint_steps` steps (0: by time only)
        self.checkpoint_seconds, self.checkpoint_steps = checkpoint_seconds, checkpoint_steps

    def check_staged(self, model: str, resolution: str) -> Path:
        """`model`'s staged directory at `resolution` (ModelNotFound, in one line, where it is not)."""
        return self._model(model, resolution)

    def _model(self, model: str, resolution: str) -> Path:
        entry, name = STAGED[model], staged_directory(model, resolution)
        try:
            if self.models_store:
                from ..staging import staged

                return staged(name, entry.required, root=self.root, url=self.models_store)
            return model_dir(name, entry.required, root=self.root)
        except ModelNotFound as exc:
            repository = entry.repository.replace(entry.directory, name)
            raise ModelNotFound(
                f"video model {model} needs {repository}'s diffusers directory staged as {self.root / name}: "
                f"{exc}"
            ) from None

    def generate_video(
        self, request: VideoRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> VideoOutput:
        """One clip: taken from `request.frames_made` when an earlier attempt kept its frames,
        else denoised and decoded, here or by a warm pool (then kept there); encoded as H.264
        faststart MP4 either way. `checkpoint` is not used: nothing is paid to anyone, the GPU time
        is the cost."""
        _staged(request.model)
        if request.frames < 1 or request.fps < 1:
            raise InvalidInput(f"a video of {request.frames} frames at {request.fps} fps cannot be made")
        meter = Monotonic(progress)
        work_dir.mkdir(parents=True, exist_ok=True)
        store = FramesMade(request.frames_made or FolderFiles(work_dir / "frames-made"), work_dir)
        clip = self._planned(request)
        seed = store.begin(clip.inputs, request.seed, secrets.randbelow(generation.SEEDS))
        drawn, kept = self._frames(request, clip, seed, work_dir, meter, store)
        meter(90)
        return VideoOutput(
            path=_encoded(drawn, request, work_dir / "video.mp4", meter),
            content_type="video/mp4",
            seed=seed,
            request_id=kept.request_id,
            gpu_seconds=kept.gpu_seconds,
        )

    def _planned(self, request: VideoRequest) -> _Planned:
        """The clip as it is drawn, and the inputs its write-once folder is begun with."""
        entry = STAGED[request.model]
        name = staged_directory(request.model, request.resolution)
        size = generation_size(request.width, request.height, entry.multiple)
        steps = self.inference_steps or entry.steps
        inputs = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "model": request.model,
            "weights": name,
            "size": list(size),
            "frames": request.frames,
            "fps": request.fps,
            "steps": steps,
            "guidance": entry.guidance,
            "seed": request.seed,
            "image": sha256_file(request.image_path) if request.image_path is not None else "",
            # a presigned link's query changes with every attempt; the object it names does not
            "loras": [
                [lora.url.split("?", 1)[0], lora.scale]
                + ([lora.low_noise_url.split("?", 1)[0]] if lora.low_noise_url else [])
                for lora in request.loras
            ],
        }
        return _Planned(entry, name, size, steps, inputs)

    def _frames(
        self,
        request: VideoRequest,
        clip: _Planned,
        seed: int,
        work_dir: Path,
        meter: Monotonic,
        store: FramesMade,
    ) -> tuple[Drawn, Kept]:
        """The clip's frames (and sound) and their record: kept by an earlier attempt, or denoised by the warm
        pool (which keeps them in the store), or here."""
        found = store.taken(seed)
        if found is not None:
            store.forget_states()  # the frames were kept and the pod died before forgetting them
            log.info("frames taken from %s: not denoised again", store.where())
            return found
        if not self.pool_url or request.drawn_here:
            loras = self._fetched_loras(request, work_dir)
            return self._draw(request, clip, loras, seed, work_dir, meter, store)
        self._pooled(request, clip.inputs, clip.size, clip.steps, seed, work_dir, meter, store)
        pooled = store.taken(seed)
        if pooled is None:
            raise PermanentError(
                "the generation pool ended the clip without its frames", reason="ProviderError"
            )
        return pooled

    def _fetched_loras(self, request: VideoRequest, work_dir: Path) -> list[Loaded]:
        """The request's LoRA files in the work directory, fetched as the image generator does (a
        Wan 2.2 pair's low-noise file too, video_loras.py)."""
        from .lora_files import fetch

        lows = work_dir / "low-noise"
        if any(lora.low_noise_url for lora in request.loras):
            lows.mkdir(exist_ok=True)
        return [
            (
                fetch(lora.url, work_dir, n),
                lora.scale,
                fetch(lora.low_noise_url, lows, n) if lora.low_noise_url else None,
            )
            for n, lora in enumerate(request.loras)
        ]

    def _draw(
        self,
        request: VideoRequest,
        planned: _Planned,
        loras: Sequence[Loaded],
        seed: int,
        work_dir: Path,
        meter: Monotonic,
        store: FramesMade,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> tuple[Drawn, Kept]:
        from . import flux, pipelines

        entry, steps = planned.entry, planned.steps
        width, height = planned.size
        base = self._model(request.model, request.resolution)  # ModelNotFound before any GPU time
        picture = cover(request.image_path, width, height) if request.image_path is not None else None
        family = MODELS[request.model].family
        urls = [url for lora in request.loras for url in (lora.url, lora.low_noise_url) if url]
        check_loras(files_of(loras), urls, request.model, family, base)
        devices.prepare_torch(self.device_name)  # DeviceUnavailable, in one line, before any load
        began = time.monotonic()
        on = flux.device(self.device_name)
        job = VideoJob(entry.family, width, height, request.frames, _hidden(base))
        plan = plan_memory(flux.card(on), component_bytes(base, on) if on.cuda else {}, job)
        described = plan.describe()
        log.info("memory plan: %s", described)
        meter(5)
        pipe = pipelines.pipeline(
            base,
            on,
            variant=("video", plan.offload),
            load=partial(load_pipeline, offload=plan.offload),
        )
        flux.tiling(pipe, plan.vae_tiling)
        checkpoints = self._checkpoints(pipe, on, store, seed, steps, began)
        meter(15)
        clip = Clip(
            request.prompt,
            request.negative_prompt,
            width,
            height,
            request.frames,
            request.fps,
            steps,
            entry.guidance,
            seed,
            picture,
            entry.guidance_2,
            entry.arguments,
        )
        with ExitStack() as loaded:
            try:
                loaded.enter_context(experts_loaded(pipe, loras, request.model))
                check_all_loaded(pipe, loras)
            except (ValueError, KeyError) as exc:  # a format diffusers converts, and it did not fit
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]
                raise InvalidInput(
                    f"loras: model {request.model} could not load them ({first}): give LoRAs made for "
                    f"{family} (docs/videos.md#loras)"
                ) from None
            drawn = denoise(pipe, clip, partial(_stepped, meter, cancelled), checkpoints)
        held = (time.monotonic() - began) * self.gpus  # × the pod's GPUs, as images count them
        if checkpoints is not None and checkpoints.resumed is not None:
            held += checkpoints.resumed.gpu_seconds  # the earlier attempts' steps taken
        return drawn, store.keep(drawn, seed, held, described)

    def _pooled(
        self,
        request: VideoRequest,
        inputs: Mapping[str, Any],
        size: tuple[int, int],
        steps: int,
        seed: int,
        work_dir: Path,
        meter: Monotonic,
        store: FramesMade,
    ) -> None:
        """The clip denoised by the warm pool of its model (CONTENTGEN_CLUSTER_POOL_URL): the
        store's files sent with it, the pool's changes to them applied to the store as they come
        (pool.py's description), its place in the queue said while it waits; where the pod that
        took it stops (Stopping), asked again, with what the store holds by then, of another pod
        (the least loaded: pool.route; a video pool keeps no LoRAs)."""
        from .pool import ClipRequest, PoolRouter, Stopping, tell, waiting

        router = PoolRouter(self.pool_url)
        loras = self._fetched_loras(request, work_dir)
        image = request.image_path.read_bytes() if request.image_path is not None else b""

        try:
            while True:
                client = router.reached((), waiting)  # a pool scaled to zero comes back for the waiting Jobs
                # each file uploaded once by its SHA-256; a pair's low-noise file follows its LoRA's
                shas, lows = [], []
                for path, scale, low in loras:
                    shas.append((client.upload_lora(path), scale))
                    if low is not None:
                        lows.append(len(shas))
                        shas.append((client.upload_lora(low), scale))
                clip = ClipRequest(
                    owner=request.owner,
                    prompt=request.prompt,
                    negative_prompt=request.negative_prompt,
                    model=request.model,
                    resolution=request.resolution,
                    width=size[0],
                    height=size[1],
                    frames=request.frames,
                    fps=request.fps,
                    steps=steps,
                    seed=seed,
                    inputs=dict(inputs),
                    loras=tuple(shas),
                    low_noise=tuple(lows),
                    files=tuple(
                        (n, store.files.get(n, work_dir / n).read_bytes()) for n in store.files.names()
                    ),
                    image=image,
                )
                try:
                    for message in client.clip(clip, waiting):
                        _apply(message, store, work_dir, meter)
                    return
                except Stopping:
                    log.info("generation pool: its pod stopped; the clip is asked again")
        finally:
            tell("", 0)

    def clip_for_pool(
        self,
        clip: Any,
        files: Sequence[tuple[Path, float]],
        folder: Path,
        cancelled: Callable[[], bool],
        emit: Callable[[dict[str, Any]], None],
    ) -> float:
        """A warm pool's side of `_pooled` (cli/pool.py): `clip` (pool.ClipRequest) denoised in
        `folder`, a copy of its Job's write-once folder (its `files`), each file put or deleted
        there emitted as a line, progress too; the seconds it held the GPU. The folder goes
        after."""
        entry = _staged(clip.model)
        loras: list[Loaded] = []
        for number, (path, scale) in enumerate(files):  # a pair's low-noise file after its LoRA's
            if number in clip.low_noise and loras:
                loras[-1] = (loras[-1][0], loras[-1][1], path)
            else:
                loras.append((path, scale, None))
        try:
            made = RelayedFiles(folder / "made", emit)
            for name, data in clip.files:
                (made.folder / name).write_bytes(data)  # what the Job's store holds: not sent back
            still = None
            if clip.image:
                still = folder / "still"
                still.write_bytes(clip.image)
            request = VideoRequest(
                prompt=clip.prompt,
                model=clip.model,
                app="",
                frames=clip.frames,
                fps=clip.fps,
                width=clip.width,
                height=clip.height,
                resolution=clip.resolution,
                aspect_ratio="",
                negative_prompt=clip.negative_prompt,
                seed=clip.seed,
                image_path=still,
                loras=tuple(
                    LoraWeights(
                        url=path.resolve().as_uri(),
                        scale=scale,
                        low_noise_url=low.resolve().as_uri() if low is not None else "",
                    )
                    for path, scale, low in loras
                ),
            )
            store = FramesMade(made, folder)
            seed = store.begin(clip.inputs, clip.seed, clip.seed)  # the Job's: its request.json agrees
            name = staged_directory(clip.model, clip.resolution)
            planned = _Planned(entry, name, (clip.width, clip.height), clip.steps, clip.inputs)
            meter = Monotonic(lambda percent: emit({"progress": percent}))
            began = time.monotonic()
            self._draw(request, planned, loras, seed, folder, meter, store, cancelled)
            return (time.monotonic() - began) * self.gpus
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _checkpoints(
        self, pipe: Any, on: flux.Device, store: FramesMade, seed: int, steps: int, began: float
    ) -> Checkpoints | None:
        """Where the loop's state is kept as it denoises, and the state to resume from; None
        with a scheduler whose state is not known (its denoise runs whole)."""
        import diffusers
        import torch

        scheduler = type(pipe.scheduler).__name__
        if not checkpointable(pipe.scheduler, sound=draws_sound(pipe)):
            log.warning(
                "no denoising state is kept with %s: a killed pod denoises again from the start", scheduler
            )
            return None
        where = {
            "inputs": store.inputs,
            "seed": seed,
            "steps": steps,
            "scheduler": scheduler,
            "diffusers": diffusers.__version__,
            "torch": torch.__version__,
            "on": f"{on.where.type} {str(on.dtype).removeprefix('torch.')}",
            **({"sound": True} if draws_sound(pipe) else {}),
        }
        resumed = store.resumable(where)
        if resumed is not None:
            log.info("resumed from %s after step %d of %d", store.where(), resumed.done, steps)

        def held() -> float:
            earlier = resumed.gpu_seconds if resumed is not None else 0.0
            return (time.monotonic() - began) * self.gpus + earlier

        return Checkpoints(
            store,
            where,
            every_steps=self.checkpoint_steps,
            every_seconds=self.checkpoint_seconds,
            held=held,
            resumed=resumed,
        )
