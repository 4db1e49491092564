"""VideoGeneration: a prompt, optionally a picture (by URL or an ImageGeneration's output), in; a
video out. Its rooms: the models table (table.py), each model's limits as rules made from it
(limits.py), the spec (spec.py), what a run made (status.py) and what a run of a spec makes
(shape.py). Every name the other layers use is importable from here."""

from .limits import VIDEO_RULES, unloadable_lora
from .shape import VideoShape, shape_of, shape_of_wire
from .spec import ImageRef, VideoGenerationSpec, VideoImage
from .status import (
    GeneratedVideo,
    LikenessSample,
    ResolvedImage,
    VideoGenerationStatus,
    VideoLikeness,
    VideoVersion,
)
from .table import (
    ASSUMED_FPS,
    DEFAULT_MODEL,
    DEFAULT_PROVIDER,
    LORA_TRAINING_FAMILY,
    MODELS,
    AspectRatio,
    Mode,
    Resolution,
    VideoModel,
    VideoModelInfo,
    frame_size,
    on_grid,
)

__all__ = [
    "ASSUMED_FPS",
    "DEFAULT_MODEL",
    "DEFAULT_PROVIDER",
    "LORA_TRAINING_FAMILY",
    "MODELS",
    "VIDEO_RULES",
    "AspectRatio",
    "GeneratedVideo",
    "ImageRef",
    "LikenessSample",
    "Mode",
    "Resolution",
    "ResolvedImage",
    "VideoGenerationSpec",
    "VideoGenerationStatus",
    "VideoImage",
    "VideoLikeness",
    "VideoModel",
    "VideoModelInfo",
    "VideoShape",
    "VideoVersion",
    "frame_size",
    "on_grid",
    "shape_of",
    "shape_of_wire",
    "unloadable_lora",
]
