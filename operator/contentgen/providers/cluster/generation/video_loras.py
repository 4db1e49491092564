"""A clip's LoRAs on the cluster's video pipeline (video.py), a Wan 2.2 A14B pair included: its
high-noise file into `transformer`, the expert diffusers' WanPipeline denoises the timesteps at and
above its boundary with, and its low-noise file into `transformer_2`, the expert of the timesteps
below (`WanLoraLoaderMixin.load_lora_weights(..., load_into_transformer_2=True)`). A LoRA of one
file on a model of two experts goes into the high-noise one, as fal's Wan 2.2 apps load a LoRA whose
`transformer` is not set (providers/fal/video.py). Each is an adapter of its expert at its scale
while the clip is drawn, and none after it.

The files travel as `Loaded`: (the file, its scale, the low-noise file or None)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from contentgen.errors import InvalidInput

from . import generation

Loaded = tuple[Path, float, Path | None]


def files_of(loras: Sequence[Loaded]) -> list[Path]:
    """Every file of `loras`, each LoRA's then its low-noise expert's (what check_loras reads)."""
    return [path for high, _, low in loras for path in (high, low) if path is not None]


def two_experts(pipe: Any) -> bool:
    return getattr(pipe, "transformer_2", None) is not None


@contextmanager
def experts_loaded(pipe: Any, loras: Sequence[Loaded], model: str) -> Iterator[None]:
    """The LoRAs loaded into their experts while the block runs (see the module); on a model of
    one transformer, `generation.loras_loaded` (a pair there is InvalidInput, before any load)."""
    if not two_experts(pipe):
        pairs = [n for n, (_, _, low) in enumerate(loras) if low is not None]
        if pairs:
            raise InvalidInput(
                f"loras[{pairs[0]}] is a Wan 2.2 pair (a high- and a low-noise expert's LoRA), and model "
                f"{model} has one transformer: use a Wan 2.2 model (docs/videos.md#loras)"
            )
        with generation.loras_loaded(pipe, [(high, scale) for high, scale, _ in loras]):
            yield
        return
    pipe.unload_lora_weights()
    high: list[tuple[str, float]] = []
    low: list[tuple[str, float]] = []
    try:
        for number, (path, scale, low_path) in enumerate(loras):
            name = f"lora{number}"
            pipe.load_lora_weights(str(path), adapter_name=name)
            high.append((name, scale))
            if low_path is not None:
                pipe.load_lora_weights(str(low_path), adapter_name=name, load_into_transformer_2=True)
                low.append((name, scale))
        # each expert its own adapters: the pipeline's set_adapters wants every name in both
        for transformer, named in ((pipe.transformer, high), (pipe.transformer_2, low)):
            if named:
                transformer.set_adapters([n for n, _ in named], [s for _, s in named])
        yield
    finally:
        if high:
            pipe.unload_lora_weights()


def check_all_loaded(pipe: Any, loras: Sequence[Loaded]) -> None:
    """Each LoRA an adapter of its expert: diffusers loads a file none of whose keys it recognises as
    nothing, with a warning, and the clip would be drawn without it (ValueError naming it)."""
    if not loras:
        return
    adapters = pipe.get_list_adapters() if hasattr(pipe, "get_list_adapters") else {}
    for number, (_, _, low) in enumerate(loras):
        wanted = [("transformer", "")] + ([("transformer_2", " (its low-noise file)")] if low else [])
        for component, what in wanted:
            if f"lora{number}" not in set(adapters.get(component, ())):
                raise ValueError(f"no layer of loras[{number}]{what} is one of the {component}'s")
