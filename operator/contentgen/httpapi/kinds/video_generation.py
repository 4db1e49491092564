"""VideoGeneration in the HTTP API: named video-…, made by the video generators, seeded."""

from __future__ import annotations

from ._base import HttpKind


def runs_here() -> tuple[str, ...]:
    from contentgen.providers import VIDEO_GENERATORS

    return VIDEO_GENERATORS


KIND = HttpKind("VideoGeneration", prefix="video", runs_here=runs_here, seeded=True)
