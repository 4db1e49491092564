"""A person's choice of the evaluation that is a LoRA version's verdict, in a cluster: the
annotation that says it and what it resolves to (docs/likeness.md#one-verdict-per-version).

The LoraTraining's status does not list a version's re-evaluations (the catalog keeps them), so
whether an evaluation can be a verdict is asked of the caller (`refusal`): the operator answers
from the catalog's record, or not at all where it cannot read it (then only what the status
shows is checked, and the catalog's reading of the record checks the rest)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from ..base import ApiModel

# JSON, version → evaluation number, or version → {"evaluation", "by", "at", "note"} (what the
# HTTP API writes: who chose, when and why). 0 is the version's own, its training run's.
VERDICTS_ANNOTATION = "contentgen.io/verdicts"


class VerdictChoice(ApiModel):
    """The evaluation a person made the version's verdict, over its run's own."""

    evaluation: Annotated[
        int, Field(ge=0, description="The evaluation (e{K}; 0: its training run's own) that is the verdict.")
    ]
    by: Annotated[
        str | None,
        Field(
            max_length=256,
            description="Who chose it, where the annotation's entry says (the HTTP API's caller); unset for "
            "a plain number.",
        ),
    ] = None
    at: Annotated[str | None, Field(max_length=64, description="When, where the entry says.")] = None
    note: Annotated[str | None, Field(max_length=500, description="Why, where the entry says.")] = None


def verdict_entry(raw: Any) -> tuple[int, dict[str, str]]:
    """One entry of the annotation: a number, or {"evaluation", "by", "at", "note"}; the number and
    what the entry says of who chose, when and why (strings, cut to the status's lengths).
    ValueError or TypeError where it is neither, or the number is negative."""
    said: dict[str, str] = {}
    if isinstance(raw, dict):
        said = {k: str(raw[k])[:n] for k, n in (("by", 256), ("at", 64), ("note", 500)) if raw.get(k)}
        raw = raw.get("evaluation")
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise TypeError(raw)
    number = int(raw)
    if number < 0:
        raise ValueError(raw)
    return number, said


# Why version N's evaluation K cannot be its verdict ("" where it can); None where it is not known.
Refusal = Callable[[int, int], str | None]


def _parsed(value: str) -> dict[int, tuple[int, dict[str, str]]]:
    """The annotation's entries by version; ValueError or TypeError where it is not a JSON object of
    version to evaluation."""
    asked = json.loads(value)
    if not isinstance(asked, dict):
        raise ValueError(value)
    return {int(k): verdict_entry(v) for k, v in asked.items()}


def verdicts_asked(value: str | None) -> list[tuple[int, int]]:
    """The (version, evaluation) pairs the annotation names ([] where it names none, or is not
    JSON): what the operator looks up in the catalog before it follows them."""
    try:
        return [(n, e) for n, (e, _) in sorted(_parsed(value).items())] if value else []
    except (ValueError, TypeError):
        return []


def verdicts_of(
    value: str | None, versions: list[dict[str, Any]], refusal: Refusal | None = None
) -> tuple[dict[int, VerdictChoice], str]:
    """The verdicts the annotation VERDICTS_ANNOTATION (`value`) asks for, by version, against the
    status's `versions` (wire dicts), and what is wrong with it in one line ("" when nothing is). A
    version that is not listed, or an evaluation `refusal` refuses, is left out; the others hold."""
    if not value:
        return {}, ""
    try:
        wanted = _parsed(value)
    except (ValueError, TypeError):
        return {}, (
            f"annotation {VERDICTS_ANNOTATION}: {value[:80]!r} is not a JSON object of version to "
            'evaluation, as {"2": 1}'
        )
    listed = {int(v.get("version") or 0) for v in versions}
    found: dict[int, VerdictChoice] = {}
    problems = []
    for number, (evaluation, said) in sorted(wanted.items()):
        why = refusal(number, evaluation) if refusal is not None and number in listed else None
        if number not in listed:
            problems.append(f"version {number} is not listed in the status")
        elif why:
            problems.append(f"version {number}: {why.removeprefix('evaluation: ')}")
        else:
            found[number] = VerdictChoice(evaluation=evaluation, **said)
    problem = f"annotation {VERDICTS_ANNOTATION}: {'; '.join(problems)}" if problems else ""
    return found, problem
