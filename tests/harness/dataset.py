"""A dataset's spec with test defaults (tests/pipeline)."""

from __future__ import annotations

from contentgen.api import DatasetSpec


def spec(*, min_frames: int = 1, **changes: object) -> DatasetSpec:
    """A valid spec; `min_frames` below the API's least (4) only to test selection on short videos
    (the gate has its own tests, with valid values)."""
    fields: dict[str, object] = {
        "max_frames": 12,
        "min_frames": 4,
        "min_scene_seconds": 1.0,
        "face_filter": True,
    }
    fields["caption_template"] = TEMPLATE
    fields.update(changes)
    return DatasetSpec.model_validate(fields).model_copy(update={"min_frames": min_frames})


TEMPLATE = "a photo of {trigger}, a person"
