"""The watch's pictures of a video LoRA's checkpoint, drawn as clips by the model the trainer holds
in memory with the checkpoint's LoRA, between its steps: flux_live.py's in-loop pictures for a
video model. Wan's here (wan_training.py); another video family's drawer is `InLoopClips` with its
own pipeline and call (ltx2_training.Ltx2Clips). A Wan LoRA's person is a person in motion, so
each of the evaluation's prompts and seeds is drawn as a clip (`FRAMES` frames at 16 fps, about
480p's pixels in the picture's shape, the model card's steps and guidance: 50 at 5.0 for Wan 2.1;
40 at 4.0, 3.0 on the low-noise expert, for Wan 2.2 A14B), and the picture the evaluation scores
and draws in its grids is the clip's frames sampled across it (providers/clip_frames.py: first to
last, each scored, the clip scored as its median frame).

An image-to-video model's clips start from a still of the dataset (its first, `first_frame`): the
picture the evaluation scores leaves that given frame out, and its baselines are keyed by the still.

The prompts' encodings and the empty negative prompt's were made before the text encoder left; the
VAE comes to the card only to decode; the transformers draw in eval mode without gradients, their
adapters enabled (the checkpoint's LoRA) or disabled (the baseline); where the plan makes the
experts take turns, each comes to the card when the clip's timesteps reach it, and everything goes
back where it was. The pictures are kept as the generator keeps its own (pictures.Folder: a
retried pod takes them), each with its GPU time."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contentgen.api.image import IMAGE_SIZES
from contentgen.providers import clip_frames
from contentgen.providers.base import Checkpoint, ImageOutput, ImageRequest
from contentgen.providers.progress import SubProgress

from ..files import FolderFiles
from ..generation import flux, generation, pictures
from ..generation.video_models import STAGED
from ..training import drawing
from . import wan_memory

FRAMES = 17  # about a second at 16 fps: enough for a face to turn and come back
FPS = 16
AREA = 832 * 480  # 480p's pixels: what Wan was trained at


def clip_size(width: int, height: int, area: int = AREA, multiple: int = 16) -> tuple[int, int]:
    """A picture's shape at about `area` pixels (480p's), on multiples of `multiple` (pure)."""
    scale = (area / (width * height)) ** 0.5
    m = multiple
    return max(m, round(width * scale / m) * m), max(m, round(height * scale / m) * m)


class InLoopClips:
    """An `ImageGenerator` of the watch's pictures, each a clip the training's Wan draws, as its
    frames (see the module); `lora_uri` is the checkpoint whose LoRA the transformers hold now.
    Another video family draws through it by its own pipeline and call (ltx2_training.py)."""

    frames, fps, multiple = FRAMES, FPS, 16

    def __init__(
        self,
        provider: Any,
        model: str,
        pipe: Any,
        encoded: Mapping[str, Any],  # each prompt's encodings, as the family's pipeline takes them
        on: flux.Device,
        plan: wan_memory.WanPlan,
        *,
        first_frame: Path | None = None,
        area: int = 0,
    ) -> None:
        self.name = provider.name
        self.area = area or AREA  # the clips' pixels
        self.provider, self.model, self.pipe, self.encoded, self.on, self.plan = (
            provider,
            model,
            pipe,
            encoded,
            on,
            plan,
        )
        self.first_frame = first_frame  # an image-to-video model's: the dataset's still
        pair = getattr(pipe, "transformer_2", None) is not None
        entry = STAGED["wan-2.2-a14b-t2v" if pair else "wan-1.3b-t2v"]
        self.steps = provider.inference_steps or entry.steps
        self.guidance, self.guidance_2 = entry.guidance, entry.guidance_2
        self.lora_uri = ""
        self.seconds = 0.0  # the wall time this process spent drawing

    def weights_of(self, model: str) -> str:
        """What a baseline picture depends on: the staged Wan, the clip's frames and steps, the
        training's base where it is not bf16 and an image-to-video model's first frame (never a
        FLUX picture's key)."""
        weights = f"{model}.{self.model}.clip-{self.frames}f.{self.steps}-steps"
        if self.first_frame is not None:
            weights += f".from-{hashlib.sha256(self.first_frame.read_bytes()).hexdigest()[:12]}"
        return weights if self.plan.base == "bf16" else f"{weights}.{self.plan.base}-base"

    def generate_images(
        self, request: ImageRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> list[ImageOutput]:
        asked = drawing.asked(request, self.lora_uri, self.encoded)
        width, height = clip_size(*IMAGE_SIZES[request.image_size], self.area, self.multiple)
        folder = pictures.Folder(request.outputs or FolderFiles(work_dir / "pictures"), work_dir)
        inputs = {
            "prompt": request.prompt,
            "model": self.weights_of(request.model),
            "size": [width, height],
            "frames": self.frames,
            "steps": self.steps,
            "guidance": [self.guidance, self.guidance_2],
            "seed": request.seed,
            "loras": [[url, 1.0] for url in asked],
        }
        seed = folder.begin(inputs, request.seed, secrets.randbelow(generation.SEEDS))
        seeds = {n: generation.picture_seed(seed, n) for n in range(1, request.num_images + 1)}
        made = folder.taken(request.num_images, seeds)
        described = self.plan.describe()
        for number, picture_seed in seeds.items():
            if number in made:
                continue
            began = time.monotonic()
            frames = self.draw(request.prompt, width, height, picture_seed, bool(asked))
            path = self.picture(frames, work_dir / pictures.picture_name(number))
            held = time.monotonic() - began
            self.seconds += held
            made[number] = folder.keep(number, picture_seed, path, held * self.provider.gpus, described)
            progress(100 * len(made) / len(seeds))
        return [made[n].output(width, height) for n in sorted(made)]

    def picture(self, frames: np.ndarray, path: Path) -> Path:
        """The clip's frames sampled across it (after the given first frame of an image-to-video
        model) as the picture the evaluation scores."""
        wanted = clip_frames.sampled(len(frames), skip_first=self.first_frame is not None)
        return clip_frames.write(path, [frames[n] for n in wanted], [round(n / self.fps, 4) for n in wanted])

    def draw(self, prompt: str, width: int, height: int, seed: int, with_lora: bool) -> np.ndarray:
        """One clip on the training's transformers (adapters on or off), as uint8 RGB frames;
        everything left as it was found."""
        pipe = self.pipe
        experts = [t for t in (pipe.transformer, getattr(pipe, "transformer_2", None)) if t is not None]
        extra: generation.CallArguments = (
            {"guidance_scale_2": self.guidance_2} if len(experts) == 2 and self.guidance_2 else {}
        )
        if self.first_frame is not None:
            from PIL import Image

            with Image.open(self.first_frame) as still:
                extra["image"] = still.convert("RGB").resize((width, height))
        with self._drawing(experts, with_lora), torch.no_grad():
            frames = self._pipeline()(
                **self.arguments(prompt),
                height=height,
                width=width,
                num_frames=self.frames,
                num_inference_steps=self.steps,
                guidance_scale=self.guidance,
                generator=torch.Generator("cpu").manual_seed(seed),
                output_type="np",
                **extra,
            ).frames[0]
        drawn: np.ndarray = np.clip(np.rint(np.asarray(frames, dtype=np.float32) * 255.0), 0, 255)
        return drawn.astype(np.uint8)

    def arguments(self, prompt: str) -> generation.CallArguments:
        """The call's prompt: its encodings and the empty negative prompt's, as the pipeline takes them."""
        return {"prompt_embeds": self.encoded[prompt], "negative_prompt_embeds": self.encoded[""]}

    def _pipeline(self) -> Any:
        """diffusers' own pipeline around the training's components (no text encoder: the prompts
        come encoded)."""
        import diffusers

        pipe = self.pipe
        library: Any = diffusers  # its pipelines are untyped
        parts: dict[str, Any] = {
            "tokenizer": None,
            "text_encoder": None,
            "vae": pipe.vae,
            "scheduler": type(pipe.scheduler).from_config(pipe.scheduler.config),
            "transformer": pipe.transformer,
            "transformer_2": getattr(pipe, "transformer_2", None),
            "boundary_ratio": getattr(pipe.config, "boundary_ratio", None),
        }
        if self.first_frame is None:
            drawing_pipe: Any = library.WanPipeline(**parts)
        else:
            image = {"image_encoder": getattr(pipe, "image_encoder", None)}
            image["image_processor"] = getattr(pipe, "image_processor", None)
            drawing_pipe = library.WanImageToVideoPipeline(**parts, **image)
        drawing_pipe.set_progress_bar_config(disable=True)
        return drawing_pipe

    @contextlib.contextmanager
    def _drawing(self, experts: list[Any], with_lora: bool) -> Iterator[None]:
        """The transformers in eval mode (adapters on or off), the VAE on the card, each expert on the
        card when it is called where they take turns; all as they were after."""
        was = [(t, t.training, _device(t)) for t in experts]
        hooks = []
        for transformer in experts:
            transformer.eval()
            if not with_lora:
                transformer.disable_adapters()
            if not self.plan.experts_resident and self.on.cuda:
                hooks.append(transformer.register_forward_pre_hook(self._to_card(experts)))
        if self.on.cuda:
            self.pipe.vae.to(self.on.where)
        try:
            yield
        finally:
            for hook in hooks:
                hook.remove()
            for transformer, training, device in was:
                if not with_lora:
                    transformer.enable_adapters()
                transformer.to(device)
                transformer.train(training)
            if self.on.cuda:
                self.pipe.vae.to("cpu")
                torch.cuda.empty_cache()

    def _to_card(self, experts: list[Any]) -> Any:
        def hook(module: Any, args: Any) -> None:
            if _device(module).type != self.on.where.type:
                for other in experts:
                    if other is not module:
                        other.to("cpu")
                module.to(self.on.where)

        return hook


def _device(module: Any) -> torch.device:
    found: torch.device = next(module.parameters()).device
    return found
