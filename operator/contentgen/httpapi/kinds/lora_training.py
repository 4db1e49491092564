"""LoraTraining in the HTTP API: named lora-…, trained by the providers' trainers."""

from __future__ import annotations

from ._base import HttpKind


def runs_here() -> tuple[str, ...]:
    from contentgen.providers import TRAINERS

    return TRAINERS


KIND = HttpKind("LoraTraining", prefix="lora", runs_here=runs_here)
