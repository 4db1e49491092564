"""Pictures from FLUX with LoRAs: the resource's LoRA files loaded as named adapters at their
scales (scale 0 adds nothing), then one picture at a time, each from a generator of its own
seeded with its own seed (`picture_seed`): picture k of a request seeded S is the picture a
one-picture request seeded S + k - 1 makes, whether it was made in one go or after a retry.
The same seed, prompt, size, steps and LoRAs give the same picture on one machine."""

from __future__ import annotations

import hashlib
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Steps and guidance as the model cards give them: dev is guidance-distilled (28 steps at 3.5),
# schnell is timestep-distilled (4 steps, no guidance).
DEV_STEPS, DEV_GUIDANCE = 28, 3.5
SCHNELL_STEPS = 4
SEEDS = 2**32  # the API's seeds are 0 to 2**32 - 1
# A pipeline call's own arguments by its parameters' names: a model's guidance, a prompt's encodings
CallArguments = dict[str, Any]


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


class FileDigests:
    """The SHA-256 of LoRA files, read once per file on disk (its path, inode, size and time: a
    file replaced is read again), `most` remembered."""

    def __init__(self, most: int) -> None:
        self.most = most
        self._known: dict[tuple[str, int, int, int], str] = {}

    def vouch(self, path: Path, sha256: str) -> None:
        """`path`'s bytes have SHA-256 `sha256`, as checked when they were written (a pool's
        upload: its files are named by it): not read again to know it (0.3 s for a 179 MB LoRA at
        real size)."""
        self._remember(self._on_disk(path), sha256)

    def of(self, path: Path) -> str:
        on_disk = self._on_disk(path)
        if on_disk not in self._known:
            with path.open("rb") as read:
                self._remember(on_disk, hashlib.file_digest(read, "sha256").hexdigest())
        return self._known[on_disk]

    @staticmethod
    def _on_disk(path: Path) -> tuple[str, int, int, int]:
        found = path.stat()
        return (str(path.resolve()), found.st_ino, found.st_size, found.st_mtime_ns)

    def _remember(self, on_disk: tuple[str, int, int, int], sha256: str) -> None:
        if on_disk not in self._known and len(self._known) >= self.most:
            self._known.clear()
        self._known[on_disk] = sha256


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
        self.digests = FileDigests(4 * capacity + 16)
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
        keys = [self.digests.of(path) for path, _ in loras]
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

    def account(self) -> dict[str, Any]:
        """What a pool's status says of them: kept now (and which), the most kept, and files loaded
        so far."""
        return {
            "kept": len(self._names),
            "capacity": self.capacity,
            "loads": self.loads,
            "held": sorted(self._names),
        }

    def forget(self) -> None:
        """Every kept LoRA unloaded: the pipeline as it was loaded."""
        pipe = self._pipe() if self._pipe is not None else None
        if self._names and pipe is not None:
            pipe.unload_lora_weights()
        self._names.clear()

    def vouch(self, path: Path, sha256: str) -> None:
        self.digests.vouch(path, sha256)

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


SLOT = "hot"  # a compiled pipeline's one adapter, each request's LoRAs swapped into it


class Compiler:
    """torch.compile's backend `name` (inductor, aot_eager, ...), counting the graphs it compiles:
    after the warm-up's, each one more is a recompile."""

    def __init__(self, name: str) -> None:
        self.name, self.graphs = name, 0

    def __call__(self, graph: Any, inputs: Any) -> Any:
        from torch._dynamo.backends.registry import lookup_backend

        self.graphs += 1
        return lookup_backend(self.name)(graph, inputs)


@dataclass(frozen=True)
class Adapter:
    """A LoRA's layers as a compiled pipeline's slot takes them: each adapted linear layer of the
    transformer (its name in it) with its down weights and its up weights × alpha / rank, on the
    pipeline's device in its dtype."""

    layers: Mapping[str, tuple[Any, Any]]

    @property
    def rank(self) -> int:
        return int(max(down.shape[0] for down, _ in self.layers.values()))

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for pair in self.layers.values() for t in pair)


def adapter_of(state: Mapping[str, Any], alphas: Mapping[str, Any] | None, like: Any) -> Adapter | None:
    """A LoRA file's tensors as diffusers reads them (`lora_state_dict(..., return_alphas=True)`:
    kohya's names converted) as an Adapter, moved to `like`'s device and dtype; None where it
    adapts anything but the transformer's linear layers (the text encoder, biases, norms) or has
    alphas named otherwise than its layers."""
    prefix, downs = "transformer.", ".lora_A.weight"
    alphas = dict(alphas or {})
    layers: dict[str, tuple[Any, Any]] = {}
    for key, down in state.items():
        if key.endswith(".lora_B.weight"):
            continue
        if not (key.startswith(prefix) and key.endswith(downs)) or down.dim() != 2:
            return None
        name = key.removeprefix(prefix).removesuffix(downs)
        up = state.get(f"{prefix}{name}.lora_B.weight")
        if up is None or up.dim() != 2:
            return None
        alpha = alphas.pop(f"{prefix}{name}.alpha", None)
        factor = float(alpha) / down.shape[0] if alpha is not None else 1.0
        layers[name] = (down.to(like), (up * factor).to(like))
    if alphas or 2 * len(layers) != len(state):
        return None
    return Adapter(layers) if layers else None


def composed(
    adapters: Sequence[tuple[Adapter, float]], layers: Mapping[str, tuple[int, int]], rank: int, like: Any
) -> dict[str, Any] | None:
    """The slot's weights for `adapters` at their scales (pure): on each layer one of them adapts,
    their down weights stacked and their up weights × scale side by side, zeros up to `rank`; the
    layers none adapts left out (a hot-swap zeroes them); one layer of zeros for no adapter. None
    where they cannot go into a slot of `layers` (the layer's name: (in, out)) and `rank`."""
    import torch

    named = sorted({name for adapter, _ in adapters for name in adapter.layers}) or [next(iter(layers))]
    out: dict[str, Any] = {}
    for name in named:
        parts = [(a.layers[name][0], a.layers[name][1] * scale) for a, scale in adapters if name in a.layers]
        if name not in layers or sum(down.shape[0] for down, _ in parts) > rank:
            return None
        size_in, size_out = layers[name]
        down = torch.zeros(rank, size_in, dtype=like.dtype, device=like.device)
        up = torch.zeros(size_out, rank, dtype=like.dtype, device=like.device)
        at = 0
        for part_down, part_up in parts:
            down[at : at + part_down.shape[0]] = part_down
            up[:, at : at + part_down.shape[0]] = part_up
            at += part_down.shape[0]
        out[f"transformer.{name}.lora_A.weight"], out[f"transformer.{name}.lora_B.weight"] = down, up
    return out


class HotSwapLoras:
    """LoRAs on a compiled transformer (a warm pool's with --compile, issue 79). The first request
    readies the pipeline: one adapter, SLOT, of `rank` on every linear layer of the transformer's
    blocks (zeros: the base's pictures), ready for diffusers' hot-swap (`enable_lora_hotswap`), then
    the transformer compiled once (`torch.compile`, `backend`). Each request copies its LoRAs into
    the slot in place (`load_lora_weights(..., hotswap=True)`), several as one of their summed ranks
    (`composed`: each one's scale in its up weights, so the slot's own scale stays 1), the compiled
    graphs kept (`compiler.graphs` counts any recompile); the next request of the same LoRAs and
    scales swaps nothing. The `capacity` most used LoRAs are kept on the device (`Adapter`), read
    from disk once; the least used goes first when full or when the device lacks room. A request
    the slot cannot hold (ranks summing above `rank`, a layer outside the blocks, the text encoder)
    is drawn with the compiled graphs set aside (`torch.compiler.set_stance("force_eager")`), its
    LoRAs adapters of their own, the slot zeroed and inactive, deleted after (`fallbacks`)."""

    def __init__(self, capacity: int, rank: int, backend: str) -> None:
        self.capacity, self.rank, self.compiler = capacity, rank, Compiler(backend)
        self.loads = self.swaps = self.fallbacks = 0  # LoRA files read, slot swaps, requests apart
        self.swap_seconds = 0.0
        self.digests = FileDigests(4 * capacity + 16)
        self._pipe: weakref.ref[Any] | None = None
        self._layers: dict[str, tuple[int, int]] = {}  # the slot's layers: name -> (in, out)
        self._like: Any = None  # a tensor of the transformer's device and dtype
        self._kept: dict[str, Adapter] = {}  # SHA-256 -> its layers on the device
        self._uses: Counter[str] = Counter()
        self._slot: tuple[tuple[str, float], ...] | None = None  # the LoRAs the slot holds now

    @contextmanager
    def using(
        self, pipe: Any, loras: Sequence[tuple[Path, float]], room: Callable[[], int] | None = None
    ) -> Iterator[None]:
        """The request's LoRAs in the slot of `pipe` while the block runs (`room()`, where given, the
        device's bytes free: a LoRA is kept on it only with a GiB to spare)."""
        if self._pipe is None or self._pipe() is not pipe:
            self._ready(pipe)
        wanted = tuple((self.digests.of(path), scale) for path, scale in loras)
        self._uses.update(key for key, _ in wanted)
        if wanted == self._slot:
            yield
            return
        keys = {key for key, _ in wanted}
        adapters = [
            self._adapter(pipe, key, path, keys, room)
            for (key, _), (path, _) in zip(wanted, loras, strict=True)
        ]
        slot = None
        if all(a is not None for a in adapters):
            found = [(a, scale) for a, (_, scale) in zip(adapters, wanted, strict=True) if a is not None]
            slot = composed(found, self._layers, self.rank, self._like)
        if slot is None:
            with self._apart(pipe, loras):
                yield
            return
        self._swap(pipe, slot, wanted)
        yield

    def account(self) -> dict[str, Any]:
        """What a pool's status says of them (`kept`, `capacity` and `loads` as KeptLoras's)."""
        return {
            "kept": len(self._kept),
            "capacity": self.capacity,
            "loads": self.loads,
            "held": sorted(self._kept),
            "rank": self.rank,
            "compiler": self.compiler.name,
            "graphs": self.compiler.graphs,
            "swaps": self.swaps,
            "swapSeconds": round(self.swap_seconds, 4),
            "fallbacks": self.fallbacks,
        }

    def vouch(self, path: Path, sha256: str) -> None:
        self.digests.vouch(path, sha256)

    def _ready(self, pipe: Any) -> None:
        import torch

        from .lora_files import target_modules

        transformer = pipe.transformer
        linear = {n: m for n, m in transformer.named_modules() if isinstance(m, torch.nn.Linear)}
        names = target_modules(linear, "all-linear")
        self._layers = {n: (linear[n].in_features, linear[n].out_features) for n in names}
        self._like = next(transformer.parameters())
        self._kept.clear()
        zeros = {
            f"transformer.{n}.lora_{ab}.weight": torch.zeros(shape, dtype=self._like.dtype)
            for n, (size_in, size_out) in self._layers.items()
            for ab, shape in (("A", (self.rank, size_in)), ("B", (size_out, self.rank)))
        }
        pipe.enable_lora_hotswap(target_rank=self.rank)
        pipe.load_lora_weights(zeros, adapter_name=SLOT)
        transformer.compile(backend=self.compiler)
        self._pipe, self._slot = weakref.ref(pipe), ()

    def _swap(self, pipe: Any, slot: dict[str, Any], wanted: tuple[tuple[str, float], ...]) -> None:
        began = time.perf_counter()
        self._slot = None  # a swap that fails leaves it unknown: the next request swaps again
        pipe.load_lora_weights(slot, adapter_name=SLOT, hotswap=True)
        self._slot = wanted
        self.swaps += 1
        self.swap_seconds += time.perf_counter() - began

    def _adapter(
        self, pipe: Any, key: str, path: Path, wanted: set[str], room: Callable[[], int] | None
    ) -> Adapter | None:
        """The LoRA `key`'s layers: kept, or read from `path` (and kept, the least used dropped to
        make room for it); None where it cannot go into the slot."""
        if key in self._kept:
            return self._kept[key]
        state, alphas = pipe.lora_state_dict(str(path), return_alphas=True)
        self.loads += 1
        made = adapter_of(state, alphas, self._like)
        if made is None or made.rank > self.rank:
            return None
        if self.capacity == 0:
            return made
        need = made.nbytes + 2**30
        while len(self._kept) >= self.capacity or (room is not None and room() < need):
            spare = [k for k in self._kept if k not in wanted]
            if not spare:
                return made  # drawn with, not kept
            del self._kept[min(spare, key=lambda k: self._uses[k])]  # the least used (the oldest of those)
        self._kept[key] = made
        return made

    @contextmanager
    def _apart(self, pipe: Any, loras: Sequence[tuple[Path, float]]) -> Iterator[None]:
        import torch

        self.fallbacks += 1
        if self._slot != ():
            empty = composed([], self._layers, self.rank, self._like)
            assert empty is not None
            self._swap(pipe, empty, ())
        names: list[str] = []
        with torch.compiler.set_stance("force_eager"):
            try:
                for number, (path, _) in enumerate(loras):
                    names.append(f"apart{number}")
                    pipe.load_lora_weights(str(path), adapter_name=names[-1])
                    self.loads += 1
                # the slot (zeros) made inactive, its scale left as it is: a tensor the graphs read
                pipe.set_adapters(names, adapter_weights=[scale for _, scale in loras])
                yield
            finally:
                if names:
                    pipe.delete_adapters(names)
                pipe.transformer.set_adapter(SLOT)


def flux_options(pipe: Any, guidance: float) -> CallArguments:
    """A FLUX pipeline call's own arguments for a picture at `guidance`."""
    from . import flux

    return {"guidance_scale": guidance, "max_sequence_length": flux.max_sequence(pipe)}


def draw(
    pipe: Any,
    picture: Picture,
    path: Path,
    cancelled: Callable[[], bool] = lambda: False,
    options: CallArguments | None = None,
) -> Path:
    """One picture, as a PNG file at `path`; once `cancelled()` says so after a denoising step,
    the remaining steps are skipped (the picture is then not the one asked for: drop it).
    `options` are the model's own call arguments (its guidance: ../picture_models.py), FLUX.1's
    where none are given."""
    # here, not above: a worker whose pictures a pool draws reads this module's steps and seeds
    # and never draws (issue 47: torch is seconds of CPU at its start)
    import torch

    def step_ended(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if cancelled():
            pipe._interrupt = True  # diffusers' own way out of its loop: the steps left are skipped
        return tensors

    if options is None:
        options = flux_options(pipe, picture.guidance)
    generator = torch.Generator("cpu").manual_seed(picture.seed)
    with torch.inference_mode():
        [image] = pipe(
            prompt=picture.prompt,
            width=picture.width,
            height=picture.height,
            num_images_per_prompt=1,
            num_inference_steps=picture.steps,
            generator=generator,
            output_type="pil",
            callback_on_step_end=step_ended,
            **options,
        ).images
    image.save(path, format="PNG")
    return path
