"""A video LoRA's clips: how they are cut (the spec's `dataset.clips`, `dataset.media`), and what
the dataset stage cut and left out (`ClipsSummary`, in status.dataset.clips). The decisions are
pipeline/footage/clips.py's; the table of models and trainers is api/base_models.py's."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..base import ApiModel, CelRule
from ..base_models import WAN_FRAMES, Media

DEFAULT_CLIP_FRAMES = 33
DEFAULT_MAX_CLIPS = 20
CLIP_CAPTION_TEMPLATE = "a video of {trigger}"

MediaField = Annotated[
    Media,
    Field(
        description="What the dataset gives the trainer. auto: clips and stills where training.baseModel is "
        "a video model and its trainer learns from clips, stills elsewhere; stills: stills only; clips: "
        "clips (and stills where the trainer takes them), failing the run when the video has none."
    ),
]


class ClipsSpec(ApiModel):
    frames: Annotated[
        int,
        Field(
            ge=WAN_FRAMES.step + 1,
            le=WAN_FRAMES.max_frames,
            description=f"Frames of each clip, at {WAN_FRAMES.fps} frames a second: {WAN_FRAMES.step}k+1 "
            f"(Wan's frame rule), {WAN_FRAMES.step + 1} to {WAN_FRAMES.max_frames}.",
        ),
        CelRule(
            rule=f"(self - 1) % {WAN_FRAMES.step} == 0",
            message=f"must be {WAN_FRAMES.step}k+1 frames (Wan's frame rule): 17, 33, 49, 65 or 81, say",
            check=lambda value: (value - 1) % WAN_FRAMES.step == 0,
        ),
    ] = DEFAULT_CLIP_FRAMES
    max_clips: Annotated[
        int, Field(ge=1, le=100, description="At most this many clips, at most two from one shot.")
    ] = DEFAULT_MAX_CLIPS
    caption_template: Annotated[
        str,
        Field(
            min_length=1,
            max_length=300,
            description="Each clip's caption: {trigger} becomes the trigger word; with captioning auto, "
            "{caption} the vision model's description of the clip's middle frame.",
        ),
        CelRule(
            rule="self.contains('{trigger}')",
            message="must contain {trigger}, where the trigger word goes",
            check=lambda value: "{trigger}" in value,
        ),
    ] = CLIP_CAPTION_TEMPLATE


ClipsField = Annotated[
    ClipsSpec,
    Field(
        default_factory=ClipsSpec,
        description="How clips are cut for a video training.baseModel (docs/lora-datasets.md#clips).",
    ),
]


class DroppedClips(ApiModel):
    """Why shots of the subject gave no clip, each shot counted once."""

    too_short: Annotated[
        int, Field(ge=0, description="No stretch of the shot clear of its cuts is as long as a clip.")
    ] = 0
    subject_missing: Annotated[
        int, Field(ge=0, description="The subject was not on screen in every frame of any clip of it.")
    ] = 0
    crowded: Annotated[
        int, Field(ge=0, description="No crop holds the subject in every frame and leaves other faces out.")
    ] = 0
    over_max_clips: Annotated[int, Field(ge=0, description="Clips beyond maxClips, left out.")] = 0


class ClipsSummary(ApiModel):
    """The clips the dataset stage cut: status.dataset.clips (absent for a stills dataset)."""

    shots: Annotated[int, Field(ge=0, description="Shots of the subject the stills stage found.")]
    kept: Annotated[int, Field(ge=0, description="Clips in the dataset.")]
    frames: Annotated[int, Field(ge=0, description="Frames of each clip.")]
    fps: Annotated[int, Field(ge=0, description="Their frame rate.")]
    dropped: Annotated[DroppedClips, Field(description="Shots and clips left out, by reason.")]
    reason: Annotated[
        str, Field(description="Why the dataset has no clips, in one line (empty when it has some).")
    ] = ""
