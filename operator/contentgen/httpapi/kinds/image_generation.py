"""ImageGeneration in the HTTP API: named image-…, drawn by the image generators, seeded."""

from __future__ import annotations

from ._base import HttpKind


def runs_here() -> tuple[str, ...]:
    from contentgen.providers import IMAGE_GENERATORS

    return IMAGE_GENERATORS


KIND = HttpKind("ImageGeneration", prefix="image", runs_here=runs_here, seeded=True)
