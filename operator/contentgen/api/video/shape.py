"""What a run of a VideoGeneration's spec makes: its unset fields filled in from its model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .spec import VideoGenerationSpec
from .table import ASSUMED_FPS, DEFAULT_MODEL, MODELS, Mode, VideoModelInfo, on_grid


@dataclass(frozen=True)
class VideoShape:
    """The video a spec asks for, its unset fields filled in from its model."""

    model: VideoModelInfo
    mode: Mode
    frames: int
    fps: int
    resolution: str
    aspect_ratio: str

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.fps

    @property
    def app(self) -> str:
        return self.model.apps[self.mode]


def shape_of(spec: VideoGenerationSpec) -> VideoShape:
    """What a run of `spec` makes: its frames (numFrames; durationSeconds at the frame rate, on the
    model's grid of frame counts; else the model's default), frame rate, resolution and aspect."""
    return shape_of_wire(spec.wire())


def shape_of_wire(spec: Mapping[str, Any]) -> VideoShape:
    """`shape_of` of a spec as on the wire (a resource's, admitted already)."""
    model = MODELS.get(str(spec.get("model") or DEFAULT_MODEL), MODELS[DEFAULT_MODEL])
    mode: Mode = "image" if spec.get("image") or spec.get("imageRef") else "text"
    fps = int(spec.get("fps") or model.default_fps or ASSUMED_FPS)
    if spec.get("numFrames"):
        frames = int(spec["numFrames"])
    elif spec.get("durationSeconds"):
        frames = on_grid(model, round(float(spec["durationSeconds"]) * fps))
    else:
        frames = model.default_frames
    return VideoShape(
        model=model,
        mode=mode if model.takes(mode) else model.modes[0],
        frames=frames,
        fps=fps,
        resolution=str(spec.get("resolution") or model.default_resolution or "720p"),
        aspect_ratio=str(spec.get("aspectRatio") or model.default_aspect_ratio),
    )
