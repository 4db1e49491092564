"""What a VideoGeneration made: its videos, the picture each animates, their likeness."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ..base import ApiModel
from ..common import CommonStatus, LatestVersion, NewestVersions, VersionBase
from ..image import PoolPlace, ResolvedLora


class LikenessSample(ApiModel):
    time_seconds: Annotated[float, Field(ge=0, description="Where in the video the frame is.")]
    score: (
        Annotated[
            float,
            Field(
                ge=-1, le=1, description="Its face's similarity to the person (cosine, SFace); null: no face."
            ),
        ]
        | None
    ) = None
    faces: Annotated[int, Field(ge=0, description="Faces found in the frame.")] = 0


class VideoLikeness(ApiModel):
    """Whether the face in a video made from a LoRA (or from a picture made with one) stays that
    LoRA's person along the clip (docs/videos.md#likeness-over-time)."""

    verdict: Annotated[
        Literal["good", "poor", "no-faces", "unmeasured"],
        Field(description="good, poor (not the person, or drifts away from them), no-faces, unmeasured."),
    ]
    reasons: Annotated[list[Annotated[str, Field(max_length=400)]], Field(max_length=8)] = []
    median: Annotated[float, Field(description="The median similarity of the frames with a face.")] | None = (
        None
    )
    lowest: Annotated[float, Field(description="The lowest similarity of a frame.")] | None = None
    lowest_at_seconds: Annotated[float, Field(ge=0, description="Where that frame is.")] | None = None
    drift: (
        Annotated[
            float,
            Field(
                description="The first third's median minus the last third's: above 0, the face moves away."
            ),
        ]
        | None
    ) = None
    percent: (
        Annotated[
            float,
            Field(
                description="The median from strangers (0) to the person's own photographs' likeness (100)."
            ),
        ]
        | None
    ) = None
    upper_bound: (
        Annotated[
            float, Field(description="The person's own photographs' likeness to each other (leave-one-out).")
        ]
        | None
    ) = None
    threshold: Annotated[float, Field(description="At or above it a face is the person.")] = 0.0
    samples: Annotated[
        list[LikenessSample], Field(max_length=32, description="The frames scored, evenly across the video.")
    ] = []
    lora: Annotated[ResolvedLora, Field(description="The LoRA whose person was looked for.")] | None = None


class GeneratedVideo(ApiModel):
    uri: Annotated[str, Field(description="The MP4 (H.264, yuv420p, its index at the front: faststart).")]
    content_type: str = "video/mp4"
    size_bytes: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    duration_seconds: Annotated[float, Field(ge=0, description="Its length, as decoded.")]
    frames: Annotated[int, Field(ge=0, description="Its frames, as decoded.")]
    fps: Annotated[float, Field(ge=0, description="Frames a second.")]
    width: Annotated[int, Field(ge=0)]
    height: Annotated[int, Field(ge=0)]
    codec: Annotated[str, Field(max_length=32, description="The video codec, e.g. h264.")] = "h264"
    audio_codec: Annotated[
        str,
        Field(
            max_length=32,
            description="Its sound's codec (aac where the model draws sound: ltx-2); empty when silent.",
        ),
    ] = ""
    original_uri: Annotated[
        str,
        Field(
            description="The file the provider delivered (original.webm or original.mp4), kept as it was "
            "paid for where the video is a transcode of it (it was not H.264, yuv420p, in an MP4); "
            "empty otherwise."
        ),
    ] = ""
    original_codec: Annotated[
        str,
        Field(max_length=64, description="That file's codec and pixel format (vp9/yuv420p, say)."),
    ] = ""
    seed: Annotated[int, Field(ge=0)] | None = None
    poster_uri: Annotated[str, Field(description="Its first frame as a JPEG (poster.jpg).")] = ""
    thumbnail_uri: Annotated[str, Field(description="A small JPEG of the poster (thumbs/poster.jpg).")] = ""
    strip_uri: Annotated[
        str, Field(description="A strip of frames across the video, one JPEG (strip.jpg).")
    ] = ""
    likeness: (
        Annotated[
            VideoLikeness,
            Field(
                description="Whether the face stays the LoRA's person along the video, when made with one."
            ),
        ]
        | None
    ) = None


class ResolvedImage(ApiModel):
    """The picture a video animates: an imageRef resolved to the version used (the lineage of the
    video: which ImageGeneration, uid, version and image), or a URL."""

    uri: Annotated[str, Field(description="The picture used.")]
    name: Annotated[str, Field(description="The ImageGeneration it came from (imageRef), if any.")] = ""
    uid: Annotated[str, Field(description="That ImageGeneration's uid.")] = ""
    version: Annotated[int, Field(ge=0, description="Its version that was used.")] = 0
    image: Annotated[int, Field(ge=0, description="Which of that version's images (1 for the first).")] = 0
    loras: Annotated[
        list[ResolvedLora],
        Field(max_length=8, description="The LoRAs that picture was made with (its lineage)."),
    ] = []


class VideoVersion(VersionBase):
    """The video one run made (generated-videos/{owner}/{uid}/v{n}/)."""

    model: Annotated[str, Field(description="The video model it was made with.")] = ""
    video: GeneratedVideo
    image: Annotated[ResolvedImage, Field(description="The picture it animates, if any.")] | None = None
    loras: Annotated[list[ResolvedLora], Field(description="The LoRAs it was made with.")] = []


class VideoGenerationStatus(CommonStatus):
    provider: Annotated[str, Field(description="The provider that made the latest version's video.")] = ""
    pool: (
        Annotated[
            PoolPlace,
            Field(description="The running request's place in the warm pool denoising it; unset otherwise."),
        ]
        | None
    ) = None
    video: Annotated[GeneratedVideo, Field(description="The latest version's video.")] | None = None
    image: Annotated[ResolvedImage, Field(description="The picture the latest version animates.")] | None = (
        None
    )
    loras: Annotated[
        list[ResolvedLora], Field(description="The LoRAs the latest version was made with.")
    ] = []
    latest_version: LatestVersion = 0
    versions: NewestVersions[VideoVersion] = []
