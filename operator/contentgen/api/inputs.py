"""The addresses a spec reads (pure): each declared once, where its field is typed.

A field whose type carries `READS` or `USES` (in its `Annotated` metadata) is an input: a URL the
run fetches, presigns for a provider or loads. Its access is what naming another owner's output
there needs of their grants (api/sharing.py): `use` for a LoRA's weights, `read` for everything
else (a source video, a picture, a photo). The same declaration serves the three checks of a key
named across owners (store/access.py: the admission policy the chart is generated with, the HTTP
API and the operator, and the pipeline before it fetches anything), and the scope of a worker's
credentials (store/scopes.py).

    declared(LoraTrainingSpec)   -> (InputPath(("source", "url"), "read"), InputPath(("subject",
                                     "referenceImages", "[]"), "read"))
    inputs(spec_model, spec)     -> [SpecInput("spec.source.url", "s3://...", "read"), ...]
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field

from .base import ApiModel

Access = Literal["read", "use"]
EACH = "[]"  # a path step into every item of a list


@dataclass(frozen=True)
class Input:
    """The marker of an input field (in `Annotated[...]`): the access it needs of another owner."""

    access: Access


READS = Input("read")
USES = Input("use")


@dataclass(frozen=True)
class InputPath:
    """Where a model keeps an input: its wire names from the spec down (EACH for every item), and
    the most items each of those lists may hold (its model's max_length), in order."""

    steps: tuple[str, ...]
    access: Access
    bounds: tuple[int, ...] = ()


@dataclass(frozen=True)
class SpecInput:
    """One address a spec names: its field as a user reads it (`spec.loras[0].url`), the URL, and
    the access it needs."""

    field: str
    url: str
    access: Access


class SharedInput(ApiModel):
    """An output of another owner that the run's spec names, and the grant that lets it (as the
    operator or `contentgen run` found it when the run was made): the pipeline's own check reads
    these, and the run's store credentials reach that key."""

    uid: str = Field(description="The uid of the resource whose output it is.")
    owner: str = Field(description="That resource's owner.")
    access: Access = Field(description="What its grant gives spec.owner: read or use.")


def _marker(metadata: list[Any]) -> Input | None:
    return next((m for m in metadata if isinstance(m, Input)), None)


def _unwrapped(annotation: Any) -> Iterator[tuple[bool, Any]]:
    """The types an annotation may hold, each with whether it is inside a list."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _unwrapped(typing.get_args(annotation)[0])
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _unwrapped(arg)
    elif origin is list:
        for inner in _unwrapped(typing.get_args(annotation)[0]):
            yield True, inner[1]
    else:
        yield False, annotation


def _held_marker(annotation: Any, *, listed: bool) -> Input | None:
    """The marker a field's type carries, through Optional: on the value itself (`listed` False)
    or on a list's items (list[Annotated[str, READS]], `listed` True)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        args = typing.get_args(annotation)
        own = None if listed else _marker(list(args[1:]))
        return own or _held_marker(args[0], listed=listed)
    if origin in (typing.Union, types.UnionType):
        found = (_held_marker(arg, listed=listed) for arg in typing.get_args(annotation))
        return next((m for m in found if m is not None), None)
    if origin is list and listed:
        return _held_marker(typing.get_args(annotation)[0], listed=False)
    return None


def _max_length(metadata: list[Any]) -> int:
    return min((int(m.max_length) for m in metadata if getattr(m, "max_length", None)), default=0)


@cache
def declared(model: type[BaseModel]) -> tuple[InputPath, ...]:
    """Every input a model declares, its nested models' too, in field order."""
    found: list[InputPath] = []
    for name, info in model.model_fields.items():
        wire, most = info.alias or name, _max_length(info.metadata)
        marker = _marker(info.metadata) or _held_marker(info.annotation, listed=False)
        if marker is not None:
            found.append(InputPath((wire,), marker.access))
            continue
        if (listed := _held_marker(info.annotation, listed=True)) is not None:
            found.append(InputPath((wire, EACH), listed.access, (most,)))
            continue
        for in_list, inner in _unwrapped(info.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                head, bound = ((wire, EACH), (most,)) if in_list else ((wire,), ())
                found += [InputPath(head + p.steps, p.access, bound + p.bounds) for p in declared(inner)]
    return tuple(found)


def _walk(value: Any, steps: tuple[str, ...], field: str) -> Iterator[tuple[str, Any]]:
    if not steps:
        yield field, value
        return
    step, rest = steps[0], steps[1:]
    if step == EACH:
        for n, item in enumerate(value if isinstance(value, list) else []):
            yield from _walk(item, rest, f"{field}[{n}]")
    elif isinstance(value, Mapping) and value.get(step) is not None:
        yield from _walk(value[step], rest, f"{field}.{step}")


def inputs(model: type[BaseModel], spec: Mapping[str, Any]) -> list[SpecInput]:
    """The addresses `spec` (the wire form of `model`) names, in the order its model declares them."""
    return [
        SpecInput(field, url, path.access)
        for path in declared(model)
        for field, url in _walk(spec, path.steps, "spec")
        if isinstance(url, str) and url
    ]
