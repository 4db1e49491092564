"""provider cluster's pictures drawn by a training between its steps (providers/watch.py): the
likeness evaluation's prompts and seeds drawn with the FLUX the trainer holds in memory and the
LoRA it has just stored, so that a checkpoint is scored as soon as it is stored, without a second
copy of the model.

They are the generator's pictures in every way the evaluation reads: the same folder per request
(pictures.Folder: kept as each is made, a retried pod takes them; the same inputs, so the
generator takes them too), the same size, inference steps, guidance and per-picture seeds, each
with its GPU time (the seconds it took × the pod's GPUs). What differs is how they are drawn: the
prompts' encodings were made once before the text encoders left (training.py), the VAE comes to
the device only to decode, the transformer draws in eval mode without gradients, with its adapter
enabled (the checkpoint's LoRA) or disabled (the baseline), and goes back to training as it was. A
training on an 8-bit or NF4 base draws on that base: its baseline pictures are keyed by it
(`weights_of`), apart from the bf16 generator's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

from contentgen.providers.base import Checkpoint, ImageOutput, ImageRequest
from contentgen.providers.progress import SubProgress

from ..generation import flux, generation, pictures
from ..generation.generation import CallArguments
from ..generation.pool import DrawRequest
from ..training import drawing

Encoded = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # flux.encode_prompt's
# A prompt's pipeline arguments at a guidance (its encodings and the guidance's own arguments)
Arguments = Callable[[str, float], CallArguments]


class Chosen(Protocol):
    """The training's memory plan, as far as its pictures go (a family's: memory.MemoryPlan)."""

    @property
    def base(self) -> str: ...
    def describe(self) -> str: ...


class Generator(Protocol):
    """What these pictures take of the cluster's generator (provider.py's ClusterProvider): its
    name, GPUs, weights and the folder each request's pictures are kept in."""

    name: str
    gpus: int

    def weights_of(self, model: str) -> str: ...

    def make_pictures(
        self, request: ImageRequest, work_dir: Path, progress: SubProgress, draw_rest: Callable[..., None]
    ) -> list[ImageOutput]: ...


class InLoopPictures:
    """An `ImageGenerator` of the pictures a training draws between its steps; `lora_uri` is the
    checkpoint whose LoRA the transformer holds now ("" before the first). `encoded` holds the
    prompts it can draw, and `arguments` makes a prompt's pipeline arguments (FLUX.1's from its
    encodings where none is given; a newer family's: families/pictures.py)."""

    def __init__(
        self,
        provider: Generator,
        pipe: Any,
        encoded: Mapping[str, Any],
        on: flux.Device,
        plan: Chosen,
        arguments: Arguments | None = None,
    ) -> None:
        self.name = provider.name
        self.provider, self.pipe, self.encoded, self.on, self.plan = provider, pipe, encoded, on, plan
        self.arguments = arguments or self._flux
        self.lora_uri = ""
        self.seconds = 0.0  # the wall time this process spent drawing (the training's is the rest)

    def weights_of(self, model: str) -> str:
        """The generator's weights and steps, and the training's base where it is not bf16."""
        weights = self.provider.weights_of(model)
        return weights if self.plan.base == "bf16" else f"{weights}.{self.plan.base}-base"

    def _flux(self, prompt: str, guidance: float) -> CallArguments:
        embeds, pooled, _ = self.encoded[prompt]
        return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled, "guidance_scale": guidance}

    def generate_images(
        self, request: ImageRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> list[ImageOutput]:
        return self.provider.make_pictures(request, work_dir, progress, self._draw_rest)

    def _draw_rest(
        self,
        request: ImageRequest,
        wanted: DrawRequest,
        folder: pictures.Folder,
        made: dict[int, pictures.Made],
        work_dir: Path,
        progress: SubProgress,
    ) -> None:
        asked = drawing.asked(request, self.lora_uri, self.encoded)
        described, seeds = self.plan.describe(), dict(wanted.pictures)
        ordered = [
            (
                number,
                generation.Picture(
                    request.prompt, wanted.width, wanted.height, seed, wanted.steps, wanted.guidance
                ),
            )
            for number, seed in wanted.pictures
        ]
        for done, (number, path, held) in enumerate(self.drawn(ordered, bool(asked), work_dir), start=1):
            self.seconds += held
            made[number] = folder.keep(number, seeds[number], path, held * self.provider.gpus, described)
            progress(100 * done / len(wanted.pictures))

    def drawn(
        self, ordered: list[tuple[int, generation.Picture]], with_lora: bool, work_dir: Path
    ) -> Iterator[tuple[int, Path, float]]:
        """Each picture of `ordered` (its number, what to draw) drawn here: its number, its file and
        the seconds it held the GPUs (distributed.py's team draws them in shares)."""
        for number, picture in ordered:
            began = time.monotonic()
            path = self.draw(
                picture.prompt, picture, with_lora=with_lora, path=work_dir / pictures.picture_name(number)
            )
            yield number, path, time.monotonic() - began

    def draw(self, prompt: str, picture: generation.Picture, *, with_lora: bool, path: Path) -> Path:
        """One picture from the prompt's encodings, on the training's transformer (its adapter on
        or off), as a PNG at `path`; the transformer left as it was found."""
        transformer, vae = self.pipe.transformer, self.pipe.vae
        arguments = self.arguments(prompt, picture.guidance)
        was_training = transformer.training
        transformer.eval()
        if not with_lora:
            transformer.disable_adapters()
        if self.on.cuda:
            vae.to(self.on.where)
        try:
            with torch.no_grad():
                [image] = self.pipe(
                    width=picture.width,
                    height=picture.height,
                    num_images_per_prompt=1,
                    num_inference_steps=picture.steps,
                    generator=torch.Generator("cpu").manual_seed(picture.seed),
                    output_type="pil",
                    **arguments,
                ).images
        finally:
            if not with_lora:
                transformer.enable_adapters()
            if self.on.cuda:
                vae.to("cpu")
                torch.cuda.empty_cache()
            transformer.train(was_training)
        image.save(path, format="PNG")
        return path
