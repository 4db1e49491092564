"""How provider cluster draws with each picture model it stages: FLUX.1's (flux.py), and the
newer families' (Z-Image, Qwen-Image, FLUX.2 [klein]: families/pictures.py's recipes), told apart
by the staged directory itself (its model_index.json's pipeline class), so a warm pool that keeps a
family's model draws it as a Job does.

A newer family's pipeline is diffusers' own (`from_pretrained` of the class model_index.json
names), in bf16 on a GPU (fp32 on the CPU), resident, or with its components taking turns on the
card (`offload`) where it does not fit; its memory plan is the generation planner's (memory.py)
with the components' parameters counted on the meta device and no quantised base (torchao's and
bitsandbytes' layouts here are FLUX.1's). The estimate's activation term is FLUX.1's, measured on
an H100: these families' own are not measured (docs/cluster-gpus.md says so). What differs per
family when drawing is only its call's guidance (the recipe's `options`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from contentgen.api.base_models import BaseModelInfo, drawn_on_cluster
from contentgen.errors import InvalidInput

from . import memory
from .generation import generation
from .generation.generation import CallArguments

# torch and diffusers are imported where a model is loaded or counted: a worker whose pictures a
# warm pool draws never loads one (issue 47)
if TYPE_CHECKING:
    from .generation import flux

MODEL_INDEX = "model_index.json"


class PictureModel(Protocol):
    """What drawing a staged picture model takes: the files it needs staged, its sizes for the
    memory plan, its pipeline loaded for a plan, and its call's model-specific arguments."""

    @property
    def name(self) -> str: ...
    @property
    def required(self) -> tuple[str, ...]: ...
    @property
    def quantised(self) -> bool:
        """Whether its memory plans may store the transformer in 8 or 4 bits."""

    @property
    def hot_swaps(self) -> bool:
        """Whether a warm pool may compile its transformer, LoRAs swapped into one adapter
        (generation.HotSwapLoras: laid out on FLUX.1's blocks)."""

    def count(self, model_dir: Path) -> memory.Sizes: ...
    def load(self, model_dir: Path, on: flux.Device, plan: memory.MemoryPlan | None) -> Any: ...
    def options(self, pipe: Any, guidance: float) -> CallArguments: ...


class Flux:
    name = "FLUX.1"
    quantised = True
    hot_swaps = True

    @property
    def required(self) -> tuple[str, ...]:
        from .generation.flux import REQUIRED

        return REQUIRED

    def count(self, model_dir: Path) -> memory.Sizes:
        from .generation import flux

        return flux.count(model_dir).sizes

    def load(self, model_dir: Path, on: flux.Device, plan: memory.MemoryPlan | None) -> Any:
        from .generation import flux

        return flux.load_pipeline(model_dir, on) if plan is None else flux.load_pipeline(model_dir, on, plan)

    def options(self, pipe: Any, guidance: float) -> CallArguments:
        return generation.flux_options(pipe, guidance)


class Guided(Protocol):
    """A picture family's recipe, as far as drawing goes (families/pictures.py's Recipe)."""

    name: str

    def classes(self) -> tuple[Any, Any]: ...
    def options(self, guidance: float) -> CallArguments: ...


@dataclass(frozen=True)
class Family:
    """A newer family's picture model: its recipe names its pipeline and its guidance."""

    recipe: Guided
    required: tuple[str, ...]
    quantised = False
    hot_swaps = False

    @property
    def name(self) -> str:
        return self.recipe.name

    def count(self, model_dir: Path) -> memory.Sizes:
        resolved = model_dir.resolve()
        return _counted(resolved, resolved.stat().st_mtime_ns)

    def load(self, model_dir: Path, on: flux.Device, plan: memory.MemoryPlan | None) -> Any:
        pipe = self.recipe.classes()[0].from_pretrained(str(model_dir), dtype=on.dtype, local_files_only=True)
        pipe.set_progress_bar_config(disable=True)
        if plan is not None and plan.offload and on.cuda:
            pipe.enable_model_cpu_offload(device=on.where)
        else:
            pipe = pipe.to(on.where)
        return pipe

    def options(self, pipe: Any, guidance: float) -> CallArguments:
        return self.recipe.options(guidance)


FLUX = Flux()


def for_directory(model_dir: Path) -> PictureModel:
    """The picture model a staged directory holds, by its pipeline class (FluxPipeline: FLUX.1's)."""
    try:
        named = json.loads((model_dir / MODEL_INDEX).read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError):
        named = None
    if named in (None, "FluxPipeline"):
        return FLUX
    found = _by_pipeline(str(named))
    if found is None:
        raise InvalidInput(
            f"{model_dir.name} is a {named}, which provider cluster does not draw pictures with"
        )
    return found


@cache
def _by_pipeline(named: str) -> Family | None:
    """The newer family whose pipeline class is `named` (found once per process: a pool asks at
    every request)."""
    return next(
        (f for f in map(_family, drawn_on_cluster()) if f.recipe.classes()[0].__name__ == named), None
    )


def _family(base: BaseModelInfo) -> Family:
    from .families import family_of
    from .families.pictures import PictureFamily

    family = family_of(base)
    if not isinstance(family, PictureFamily):
        raise InvalidInput(f"{base.title}'s family on provider cluster draws no pictures")
    return Family(family.recipe, family.required(base))


@cache
def _counted(model_dir: Path, changed: int) -> memory.Sizes:
    """The staged pipeline's parameters counted on the meta device, component by component as its
    model_index.json names them: the transformer, the VAE and the text encoders (`t5`: all of them)."""
    from accelerate import init_empty_weights

    index: Mapping[str, Any] = json.loads((model_dir / MODEL_INDEX).read_text())
    counts: dict[str, int] = {}
    config: Any = None
    with init_empty_weights():
        for name, entry in index.items():
            made = _on_meta(model_dir / name, entry)
            if made is not None:
                counts[name] = sum(p.numel() for p in made.parameters())
                config = made.config if name == "transformer" else config
    heads = getattr(config, "num_attention_heads", None)
    hidden = heads * config.attention_head_dim if heads else getattr(config, "dim", 0)
    transformer, vae = counts.pop("transformer", 0), counts.pop("vae", 0)
    return memory.Sizes(transformer, 0, sum(counts.values()), 0, vae, int(hidden), 0)


def _on_meta(folder: Path, entry: Any) -> Any:
    """A component of the pipeline made from its config (under init_empty_weights), None for one
    that holds no weights (a tokenizer, a scheduler)."""
    import diffusers
    import torch
    import transformers

    if not (isinstance(entry, list) and len(entry) == 2 and folder.is_dir()):
        return None
    library, class_name = entry
    found = getattr({"diffusers": diffusers, "transformers": transformers}.get(library), class_name, None)
    if not (isinstance(found, type) and issubclass(found, torch.nn.Module)):
        return None
    kind: Any = found
    if library == "diffusers":
        return kind.from_config(kind.load_config(str(folder)))
    return kind._from_config(transformers.AutoConfig.from_pretrained(str(folder)))
