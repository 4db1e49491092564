"""VideoGeneration's spec: a prompt, optionally a picture (by URL or an ImageGeneration's output), in;
each model's limits on it are its rules (limits.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ..base import ApiModel
from ..common import CommonSpec, ObjectName, SourceUrl
from ..image import LoraEntry
from ..providers import PictureProvider
from .limits import VIDEO_RULES
from .table import DEFAULT_MODEL, DEFAULT_PROVIDER, AspectRatio, Resolution, VideoModel


class VideoImage(ApiModel):
    url: SourceUrl


class ImageRef(ApiModel):
    name: Annotated[
        ObjectName,
        Field(
            description="An ImageGeneration in the same namespace; its latest version is used, or `version`.",
        ),
    ]
    version: (
        Annotated[
            int,
            Field(ge=1, description="Use this version of it; unset: its latest version when the run starts."),
        ]
        | None
    ) = None
    image: Annotated[
        int, Field(ge=1, le=8, description="Which of that version's images (1 for the first).")
    ] = 1


class VideoGenerationSpec(CommonSpec):
    cel_rules = tuple(r.cel for r in VIDEO_RULES)

    prompt: Annotated[str, Field(min_length=1, max_length=4000, description="What happens in the video.")]
    negative_prompt: Annotated[str, Field(max_length=4000, description="What to keep out.")] = ""
    model: Annotated[
        VideoModel,
        Field(
            description="The video model (docs/videos.md#models): fal's wan-2.2-t2v, wan-2.2-i2v, "
            "ltx-video-13b, kling-2.5-turbo; the cluster's wan-1.3b-t2v, wan-14b-i2v, wan-2.2-a14b-t2v, "
            "ltx-video, ltx-2. Each "
            "takes what its provider documents, checked at admission."
        ),
    ] = DEFAULT_MODEL
    image: (
        Annotated[
            VideoImage,
            Field(
                description="Animate the picture at this URL (image-to-video); a local run takes a local "
                "file."
            ),
        ]
        | None
    ) = None
    image_ref: (
        Annotated[
            ImageRef,
            Field(
                description="Animate an ImageGeneration's picture (image-to-video): its lineage (the LoRA, "
                "its dataset and source video) becomes the video's."
            ),
        ]
        | None
    ) = None
    duration_seconds: (
        Annotated[
            float,
            Field(
                gt=0,
                le=120,
                description="How long the video is; or numFrames. Unset: the model's default length.",
            ),
        ]
        | None
    ) = None
    num_frames: (
        Annotated[int, Field(ge=1, le=2000, description="How many frames; or durationSeconds.")] | None
    ) = None
    fps: Annotated[int, Field(ge=1, le=60, description="Frames a second; unset: the model's.")] | None = None
    resolution: (
        Annotated[
            Resolution,
            Field(description="480p, 580p, 720p or 1080p, as the model takes; unset: its default."),
        ]
        | None
    ) = None
    aspect_ratio: (
        Annotated[
            AspectRatio,
            Field(description="16:9, 9:16, 1:1, 4:3, 3:4, or auto (the picture's), as the model takes."),
        ]
        | None
    ) = None
    seed: Annotated[int, Field(ge=0, le=4294967295, description="Fixes the randomness.")] | None = None
    loras: Annotated[
        list[LoraEntry],
        Field(
            max_length=5,
            description="Up to 5 LoRAs made for the video model's family (Wan 2.2, Wan 2.1, LTX-Video), "
            "by url or loraRef; only for models that take them. A loraRef's version must be made for the "
            "model (its LoraTraining's training.baseModel; a Wan 2.2 pair loads into both experts); a FLUX.1 "
            "LoRA is refused naming the fix (docs/videos.md#loras).",
        ),
    ] = []
    provider: Annotated[
        PictureProvider,
        Field(
            description="fal generates on fal.ai; cluster on the cluster's own GPUs (docs/cluster-gpus.md); "
            "offline encodes a labelled placeholder video of the asked shape."
        ),
    ] = DEFAULT_PROVIDER
    denoising: (
        Annotated[
            Literal["pool", "job"],
            Field(
                description="provider cluster: where the clip is denoised. pool: by the warm pool of its "
                "model's staged directory (docs/cluster-gpus.md#warm-pools), which keeps it loaded (a Job "
                "per request where the chart made no pool for it); job: by a Job of its own, which loads "
                "the model. Unset: the chart's pools.denoising. Either way the resource runs, records and "
                "bills as its Job does.",
            ),
        ]
        | None
    ) = None
