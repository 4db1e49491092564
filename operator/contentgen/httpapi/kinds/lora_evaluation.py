"""LoraEvaluation in the HTTP API: named evaluation-…, its pictures drawn by the image generators;
a refusal of its reference names spec.loraRef."""

from __future__ import annotations

from ._base import HttpKind


def runs_here() -> tuple[str, ...]:
    from contentgen.providers import IMAGE_GENERATORS

    return IMAGE_GENERATORS


KIND = HttpKind("LoraEvaluation", prefix="evaluation", runs_here=runs_here, references="spec.loraRef")
