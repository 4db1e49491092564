"""A person's choice of a scored checkpoint as a version's model: the annotation that says it and
what it resolves to against the status."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field

from ..base import ApiModel

# In a cluster, a person chooses a scored checkpoint as a LoRA version's model with an annotation
# on the LoraTraining (docs/likeness.md#choosing-a-checkpoint-yourself): JSON, version → step, or
# version → {"step", "by", "at", "note"} (what the HTTP API writes: who chose, when and why).
PROMOTED_ANNOTATION = "contentgen.io/promoted-checkpoints"


class Promotion(ApiModel):
    """A scored checkpoint a person made the version's model, over the automatic choice."""

    step: Annotated[int, Field(ge=1, description="The checkpoint chosen.")]
    model_uri: Annotated[str, Field(description="Its LoRA: what a loraRef to the version uses.")]
    automatic_step: Annotated[
        int | None, Field(description="The automatic choice (likeness.chosenStep), kept.")
    ] = None
    by: Annotated[
        str | None,
        Field(
            max_length=256,
            description="Who chose it, where the annotation's entry says (the HTTP API's caller); unset "
            "for a plain step.",
        ),
    ] = None
    at: Annotated[str | None, Field(max_length=64, description="When, where the entry says.")] = None
    note: Annotated[str | None, Field(max_length=500, description="Why, where the entry says.")] = None


def promotion_entry(raw: Any) -> tuple[int, dict[str, str]]:
    """One entry of the annotation: a step, or {"step", "by", "at", "note"}; the step and what the
    entry says of who chose, when and why (strings, cut to the status's lengths). ValueError or
    TypeError where it is neither."""
    if isinstance(raw, dict):
        said = {k: str(raw[k])[:n] for k, n in (("by", 256), ("at", 64), ("note", 500)) if raw.get(k)}
        return _step(raw.get("step")), said
    return _step(raw), {}


def _step(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise TypeError(raw)
    return int(raw)


def promotions_of(value: str | None, versions: list[dict[str, Any]]) -> tuple[dict[int, Promotion], str]:
    """The promotions the annotation PROMOTED_ANNOTATION (`value`) asks for, by version, against the
    status's `versions` (wire dicts: each scored checkpoint's LoRA is in its likeness curve), and
    what is wrong with it in one line ("" when nothing is). A version or step that cannot be
    promoted is left out; the others hold."""
    if not value:
        return {}, ""
    try:
        asked = json.loads(value)
        if not isinstance(asked, dict):
            raise ValueError
        wanted = {int(k): promotion_entry(v) for k, v in asked.items()}
    except (ValueError, TypeError):
        return {}, (
            f"annotation {PROMOTED_ANNOTATION}: {value[:80]!r} is not a JSON object of version to step, "
            'as {"2": 500}'
        )
    listed = {int(v.get("version") or 0): v for v in versions}
    found: dict[int, Promotion] = {}
    problems = []
    for number, (step, said) in sorted(wanted.items()):
        likeness = (listed.get(number) or {}).get("likeness") or {}
        curve = {int(p["step"]): str(p.get("modelUri") or "") for p in likeness.get("checkpoints") or []}
        if number not in listed:
            problems.append(f"version {number} is not listed in the status")
        elif not curve.get(step):
            shown = ", ".join(str(s) for s in sorted(curve)) or "none"
            problems.append(f"version {number} has no scored checkpoint {step} (scored: {shown})")
        else:
            found[number] = Promotion(
                step=step, model_uri=curve[step], automatic_step=likeness.get("chosenStep"), **said
            )
    problem = f"annotation {PROMOTED_ANNOTATION}: {'; '.join(problems)}" if problems else ""
    return found, problem
