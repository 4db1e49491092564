"""Pictures from FLUX with LoRAs: the resource's LoRA files loaded as named adapters at their
scales (scale 0 adds nothing), then one picture at a time, each from a generator of its own
seeded with its own seed (`picture_seed`): picture k of a request seeded S is the picture a
one-picture request seeded S + k - 1 makes, whether it was made in one go or after a retry.
The same seed, prompt, size, steps and LoRAs give the same picture on one machine."""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Steps and guidance as the model cards give them: dev is guidance-distilled (28 steps at 3.5),
# schnell is timestep-distilled (4 steps, no guidance).
DEV_STEPS, DEV_GUIDANCE = 28, 3.5
SCHNELL_STEPS = 4
SEEDS = 2**32  # the API's seeds are 0 to 2**32 - 1


@dataclass(frozen=True)
class Picture:
    prompt: str
    width: int
    height: int
    seed: int = 0
    steps: int = DEV_STEPS
    guidance: float = DEV_GUIDANCE


def picture_seed(seed: int, number: int) -> int:
    """The seed of picture `number` (1, 2, ...) of a request seeded `seed` (pure)."""
    return (seed + number - 1) % SEEDS


@contextmanager
def loras_loaded(pipe: Any, loras: Sequence[tuple[Path, float]]) -> Iterator[None]:
    """The LoRA files loaded as adapters at their scales while the block runs; none after it
    (nothing stays loaded from one request to the next)."""
    if hasattr(pipe, "unload_lora_weights"):
        pipe.unload_lora_weights()
    names = []
    for number, (path, _) in enumerate(loras):
        name = f"lora{number}"
        pipe.load_lora_weights(str(path), adapter_name=name)
        names.append(name)
    if names:
        pipe.set_adapters(names, adapter_weights=[scale for _, scale in loras])
    try:
        yield
    finally:
        if names:
            pipe.unload_lora_weights()


class KeptLoras:
    """LoRAs kept loaded on a kept pipeline from one request to the next (a warm pool's: issue 47),
    `capacity` at most and while the GPU has room, the least recently used deleted first: a
    request whose LoRAs are kept loads nothing, and activates its own at its scales
    (`set_adapters`); a request without LoRAs draws with them all disabled. peft's layers add only
    their active adapters and, disabled, run the base layer alone, so a picture is the one
    `loras_loaded` draws (tested), while loading and unloading a 179 MB LoRA per request made
    FLUX.1-dev's picture a third longer on an H200 (docs/performance.md). A LoRA is known by its
    bytes' SHA-256 (read once per file on disk: a file replaced is read again), wherever its file
    lies. A request naming one LoRA twice goes through `loras_loaded` after every kept LoRA is
    unloaded; a load that fails unloads them all before its error goes on."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.loads = 0  # LoRA files loaded (a test and the benchmark count them)
        self._pipe: weakref.ref[Any] | None = None  # weak: a released pipeline goes
        self._names: OrderedDict[str, str] = OrderedDict()  # SHA-256 -> adapter name
        self._digests: dict[tuple[str, int, int, int], str] = {}  # a file on disk -> its SHA-256
        self._made = 0

    @contextmanager
    def using(
        self, pipe: Any, loras: Sequence[tuple[Path, float]], room: Callable[[], int] | None = None
    ) -> Iterator[None]:
        """The request's LoRAs active on `pipe` while the block runs; `room()`, where given, the
        device's bytes free: a LoRA is loaded only with its file's size and a GiB to spare,
        kept ones not asked for deleted first to make room."""
        if self._pipe is None or self._pipe() is not pipe:  # another pipeline: nothing kept on it
            self._pipe, self._names = weakref.ref(pipe), OrderedDict()
        keys = [self._digest(path) for path, _ in loras]
        if self.capacity < len(set(keys)) or len(set(keys)) < len(keys):
            self.forget()
            with loras_loaded(pipe, loras):
                yield
            return
        try:
            names = [
                self._loaded(pipe, key, path, keys, room) for key, (path, _) in zip(keys, loras, strict=True)
            ]
            if names:
                pipe.enable_lora()
                pipe.set_adapters(names, adapter_weights=[scale for _, scale in loras])
            elif self._names:
                pipe.disable_lora()
        except BaseException:
            self.forget()  # the pipeline as loaded: a LoRA half loaded never reaches a picture
            raise
        yield

    def account(self) -> dict[str, int]:
        """What a pool's status says of them: kept now, the most kept, and files loaded so far."""
        return {"kept": len(self._names), "capacity": self.capacity, "loads": self.loads}

    def forget(self) -> None:
        """Every kept LoRA unloaded: the pipeline as it was loaded."""
        pipe = self._pipe() if self._pipe is not None else None
        if self._names and pipe is not None:
            pipe.unload_lora_weights()
        self._names.clear()

    def vouch(self, path: Path, sha256: str) -> None:
        """`path`'s bytes have SHA-256 `sha256`, as checked when they were written (a pool's
        upload: its files are named by it): not read again to know it (0.3 s for a 179 MB LoRA at
        real size). The file replaced since is read again, as any other."""
        self._remember(self._on_disk(path), sha256)

    @staticmethod
    def _on_disk(path: Path) -> tuple[str, int, int, int]:
        found = path.stat()
        return (str(path.resolve()), found.st_ino, found.st_size, found.st_mtime_ns)

    def _remember(self, on_disk: tuple[str, int, int, int], sha256: str) -> None:
        if on_disk not in self._digests and len(self._digests) >= 4 * self.capacity + 16:
            self._digests.clear()
        self._digests[on_disk] = sha256

    def _digest(self, path: Path) -> str:
        on_disk = self._on_disk(path)
        if on_disk not in self._digests:
            with path.open("rb") as read:
                self._remember(on_disk, hashlib.file_digest(read, "sha256").hexdigest())
        return self._digests[on_disk]

    def _loaded(
        self, pipe: Any, key: str, path: Path, wanted: list[str], room: Callable[[], int] | None
    ) -> str:
        if key in self._names:
            self._names.move_to_end(key)
            return self._names[key]
        need = path.stat().st_size + 2**30  # the file (float32 at most) is no smaller than its tensors
        while len(self._names) >= self.capacity or (room is not None and room() < need):
            oldest = next((k for k in self._names if k not in wanted), None)
            if oldest is None:  # nothing left to drop: the load will tell whether it fits
                break
            pipe.delete_adapters(self._names.pop(oldest))
        self._made += 1
        name = f"kept{self._made}"
        self._names[key] = name  # before the load: a load that fails is unloaded by forget()
        pipe.load_lora_weights(str(path), adapter_name=name)
        self.loads += 1
        return name


def draw(pipe: Any, picture: Picture, path: Path, cancelled: Callable[[], bool] = lambda: False) -> Path:
    """One picture, as a PNG file at `path`; once `cancelled()` says so after a denoising step,
    the remaining steps are skipped (the picture is then not the one asked for: drop it)."""
    # here, not above: a worker whose pictures a pool draws reads this module's steps and seeds
    # and never draws (issue 47: torch is seconds of CPU at its start)
    import torch

    from . import flux

    def step_ended(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if cancelled():
            pipe._interrupt = True  # diffusers' own way out of its loop: the steps left are skipped
        return tensors

    generator = torch.Generator("cpu").manual_seed(picture.seed)
    with torch.inference_mode():
        [image] = pipe(
            prompt=picture.prompt,
            width=picture.width,
            height=picture.height,
            num_images_per_prompt=1,
            num_inference_steps=picture.steps,
            guidance_scale=picture.guidance,
            max_sequence_length=flux.max_sequence(pipe),
            generator=generator,
            output_type="pil",
            callback_on_step_end=step_ended,
        ).images
    image.save(path, format="PNG")
    return path
