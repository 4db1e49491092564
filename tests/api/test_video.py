"""VideoGeneration's limits per model (api/video/table.py, made into rules by api/video/limits.py),
enforced twice as every rule is: by the CRD at admission (the real API server's CEL) and by
`contentgen validate`, naming the same field; each model's edge on both sides. And what a spec
makes: frames, rate, size."""

from __future__ import annotations

from typing import Any

import pytest

from contentgen.api import KINDS, ResolvedLora
from contentgen.api.crd import crd
from contentgen.api.image import LoraEntry
from contentgen.api.manifests import Document
from contentgen.api.validation import validate_document
from contentgen.api.video import (
    LORA_TRAINING_FAMILY,
    MODELS,
    VideoGenerationSpec,
    frame_size,
    on_grid,
    shape_of,
    unloadable_lora,
)
from tests.admission import admit

PICTURE = {"url": "https://example.com/p.png"}


def video(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "VideoGeneration",
        "metadata": {"name": "v"},
        "spec": {"owner": "u", "prompt": "waves", **spec},
    }


def problems(obj: dict[str, Any]) -> list[str]:
    return [p.path for p in validate_document(Document("v.yaml", 1, obj)).problems]


# (spec, the field the error names): each refused by admission and by validate
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "wan t2v frames over": ({"model": "wan-2.2-t2v", "numFrames": 162}, "spec.numFrames"),
    "wan t2v frames under": ({"model": "wan-2.2-t2v", "numFrames": 16}, "spec.numFrames"),
    "wan t2v fps over": ({"model": "wan-2.2-t2v", "fps": 61}, "spec.fps"),
    "wan t2v 1080p": ({"model": "wan-2.2-t2v", "resolution": "1080p"}, "spec.resolution"),
    "wan t2v auto aspect": ({"model": "wan-2.2-t2v", "aspectRatio": "auto"}, "spec.aspectRatio"),
    "wan t2v with a picture": ({"model": "wan-2.2-t2v", "image": PICTURE}, "spec.image"),
    "wan t2v too long": ({"model": "wan-2.2-t2v", "durationSeconds": 11.0}, "spec.durationSeconds"),
    "wan i2v without a picture": ({"model": "wan-2.2-i2v"}, "spec.model"),
    "wan i2v loras": (
        {"model": "wan-2.2-i2v", "image": PICTURE, "loras": [{"url": "https://h/l.safetensors"}]},
        "spec.loras",
    ),
    # no LoraTraining makes LTX-Video LoRAs (a Wan model's loraRef is checked as it resolves)
    **{
        f"{model} loraRef": (
            {
                "model": model,
                "provider": provider,
                "loras": [{"url": "https://h/l.safetensors"}, {"loraRef": {"name": "x"}}],
            },
            "spec.loras",
        )
        for model, provider in (("ltx-video-13b", "fal"), ("ltx-video", "cluster"))
    },
    "ltx fps 30": ({"model": "ltx-video-13b", "fps": 30}, "spec.fps"),
    "ltx 580p": ({"model": "ltx-video-13b", "resolution": "580p"}, "spec.resolution"),
    "kling 7 s": ({"model": "kling-2.5-turbo", "durationSeconds": 7.0}, "spec.durationSeconds"),
    "kling frames": ({"model": "kling-2.5-turbo", "numFrames": 120}, "spec.numFrames"),
    "kling fps": ({"model": "kling-2.5-turbo", "fps": 24}, "spec.fps"),
    "kling resolution": ({"model": "kling-2.5-turbo", "resolution": "720p"}, "spec.resolution"),
    "cluster wan frames off the grid": (
        {"model": "wan-1.3b-t2v", "provider": "cluster", "numFrames": 80},
        "spec.numFrames",
    ),
    "cluster wan 720p": (
        {"model": "wan-1.3b-t2v", "provider": "cluster", "resolution": "720p"},
        "spec.resolution",
    ),
    "cluster model on fal": ({"model": "ltx-video"}, "spec.model"),
    "fal model on the cluster": ({"model": "wan-2.2-t2v", "provider": "cluster"}, "spec.model"),
    "cluster ltx frames off the grid": (
        {"model": "ltx-video", "provider": "cluster", "numFrames": 120},
        "spec.numFrames",
    ),
    "image and imageRef": (
        {"model": "wan-2.2-i2v", "image": PICTURE, "imageRef": {"name": "p"}},
        "spec.imageRef",
    ),
    "frames and duration": ({"numFrames": 33, "durationSeconds": 2.0}, "spec.numFrames"),
    "imageRef bad name": ({"model": "wan-2.2-i2v", "imageRef": {"name": "Not_A_Name"}}, "spec.imageRef.name"),
    "image ftp": ({"model": "wan-2.2-i2v", "image": {"url": "ftp://h/p.png"}}, "spec.image.url"),
}

TAKEN: dict[str, dict[str, Any]] = {
    "defaults": {},
    "wan t2v edges": {"model": "wan-2.2-t2v", "numFrames": 161, "fps": 4, "resolution": "580p"},
    "wan t2v lowest": {"model": "wan-2.2-t2v", "numFrames": 17, "fps": 60, "aspectRatio": "9:16"},
    "wan t2v loras": {"model": "wan-2.2-t2v", "loras": [{"url": "https://h/wan.safetensors", "scale": 0.7}]},
    "wan t2v 10 s": {"model": "wan-2.2-t2v", "durationSeconds": 10.0},
    "wan i2v by imageRef": {"model": "wan-2.2-i2v", "imageRef": {"name": "p", "version": 2, "image": 3}},
    "wan i2v by URL": {"model": "wan-2.2-i2v", "image": PICTURE, "aspectRatio": "auto", "resolution": "720p"},
    "ltx both ways": {"model": "ltx-video-13b", "fps": 24, "numFrames": 1441},
    "kling 10 s from a picture": {"model": "kling-2.5-turbo", "durationSeconds": 10.0, "image": PICTURE},
    "cluster wan on the grid": {"model": "wan-1.3b-t2v", "provider": "cluster", "numFrames": 5},
    "cluster wan i2v": {
        "model": "wan-14b-i2v",
        "provider": "cluster",
        "imageRef": {"name": "p"},
        "numFrames": 81,
    },
    "cluster ltx on the grid": {"model": "ltx-video", "provider": "cluster", "numFrames": 257},
    "any model offline": {"model": "wan-14b-i2v", "provider": "offline", "image": PICTURE},
    # a Wan model's loraRef: a LoraTraining of its base model makes one (api/base_models.py)
    "wan t2v loraRef": {"model": "wan-2.2-t2v", "loras": [{"loraRef": {"name": "x"}}]},
    "cluster wan loraRef": {
        "model": "wan-1.3b-t2v",
        "provider": "cluster",
        "loras": [{"loraRef": {"name": "x"}}],
    },
}


def test_every_model_says_where_its_limits_come_from() -> None:
    for model in MODELS.values():
        assert model.source.startswith("https://"), model.name
        assert set(model.apps) == set(model.modes), model.name
        if model.frames is not None:
            low, high = model.frames
            assert low <= model.default_frames <= high
            assert (model.default_frames - 1) % model.frame_step == 0


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_by_admission_and_validate(case: str) -> None:
    spec, field = REFUSED[case]
    obj = video(**spec)
    _, errors = admit(crd(KINDS["VideoGeneration"]), obj)
    assert any(path == field or path.startswith(field + ".") for path, _ in errors), errors
    found = problems(obj)
    assert field in found, found


@pytest.mark.parametrize("case", list(TAKEN))
def test_taken_by_admission_and_validate(case: str) -> None:
    obj = video(**TAKEN[case])
    _, errors = admit(crd(KINDS["VideoGeneration"]), obj)
    assert errors == []
    assert problems(obj) == []


def test_one_line_per_error_naming_the_field_and_the_model() -> None:
    for spec, field in (({"fps": 24}, "spec.fps"), ({"numFrames": 3}, "spec.numFrames")):
        outcome = validate_document(Document("v.yaml", 1, video(model="kling-2.5-turbo", **spec)))
        assert [p.path for p in outcome.problems] == [field]
        assert all("\n" not in p.line() and "kling-2.5-turbo" in p.reason for p in outcome.problems)


def test_a_lora_ref_is_refused_in_one_line_naming_the_field_and_what_to_do() -> None:
    obj = video(model="ltx-video-13b", loras=[{"loraRef": {"name": "avatar"}}])
    [problem] = validate_document(Document("v.yaml", 1, obj)).problems
    assert problem.path == "spec.loras" and "\n" not in problem.line()
    assert "no LoraTraining makes LTX-Video LoRAs" in problem.reason and "imageRef" in problem.reason
    assert all(m.family != LORA_TRAINING_FAMILY for m in MODELS.values())


def test_unloadable_lora_names_a_lora_training_by_ref_or_by_its_stored_file() -> None:
    by_url = ResolvedLora(uri="https://h/wan.safetensors")
    stored = ResolvedLora(uri="s3://b/loras/u/uid-1/v2/model.safetensors?sig=1", uid="uid-1", version=2)
    assert unloadable_lora("ltx-video", [by_url]) is None
    found = unloadable_lora("ltx-video", [by_url, stored])
    assert found is not None and found.startswith("loras[1]: s3://b/loras/u/uid-1/v2/model.safetensors is")
    assert "which no LoraTraining makes" in found and "sig" not in found
    # on a Wan model, what a LoraTraining's LoRA is made for decides (unknown: its run reads it)
    assert unloadable_lora("wan-2.2-t2v", [by_url], [True]) is None
    flux = ResolvedLora(uri="", name="avatar", base_model="flux.1")
    named = unloadable_lora("wan-1.3b-t2v", [flux])
    assert named is not None and named.startswith("loras[0]: loraRef 'avatar' is a FLUX.1 LoRA")
    assert "training.baseModel wan-2.1-t2v-1.3b" in named
    wan = ResolvedLora(uri="", name="avatar", base_model="wan-2.1-t2v-1.3b")
    assert unloadable_lora("wan-1.3b-t2v", [wan]) is None
    assert "use model wan-1.3b-t2v" in (unloadable_lora("wan-2.2-t2v", [wan]) or "")


def _spec(**fields: Any) -> VideoGenerationSpec:
    return VideoGenerationSpec.model_validate({"owner": "u", "prompt": "p", **fields})


def test_what_a_spec_makes() -> None:
    default = shape_of(_spec())
    assert (default.frames, default.fps, default.resolution, default.mode) == (81, 16, "480p", "text")
    assert default.app == "fal-ai/wan/v2.2-a14b/text-to-video/lora"
    two_seconds = shape_of(_spec(model="ltx-video", provider="cluster", durationSeconds=2.0))
    assert two_seconds.frames == 49  # 48 frames at 24 fps, on LTX's grid of 8k+1
    assert shape_of(_spec(model="kling-2.5-turbo", durationSeconds=10.0, image=PICTURE)).app.endswith(
        "/image-to-video"
    )
    assert on_grid(MODELS["wan-1.3b-t2v"], 200) == 81
    assert on_grid(MODELS["wan-1.3b-t2v"], 1) == 5
    assert frame_size("480p", "16:9") == (832, 480)
    assert frame_size("720p", "9:16") == (720, 1280)
    assert frame_size("480p", "auto", (768, 1024)) == (480, 640)  # a 3:4 portrait
    assert frame_size("480p", "auto") == (832, 480)


def test_the_json_schema_twins_agree_with_the_python_twins() -> None:
    """Each rule's JSON Schema (the HTTP API's document, httpapi/request_rules.py) says what its
    Python check says, on every spec above (the spec as sent: defaults left out)."""
    import jsonschema

    from contentgen.api.video import VIDEO_RULES

    names = {field.alias or name: name for name, field in VideoGenerationSpec.model_fields.items()}
    for spec in [*(s for s, _ in REFUSED.values()), *TAKEN.values()]:
        sent = {"owner": "u", "prompt": "waves", **spec}
        fields = {names[k]: v for k, v in sent.items()}
        fields["loras"] = [
            LoraEntry.model_construct(lora_ref=e.get("loraRef"), url=e.get("url"))
            for e in sent.get("loras", [])
        ]
        built = VideoGenerationSpec.model_construct(**fields)
        for rule in VIDEO_RULES:
            if rule.json_schema is None or rule.cel.check is None:
                continue
            said = jsonschema.Draft202012Validator(rule.json_schema).is_valid(sent)
            assert said == rule.cel.check(built), (rule.cel.rule, spec)
