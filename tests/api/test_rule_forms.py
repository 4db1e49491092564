"""The rules declared once in api/rules.py say the same thing in their three forms: the CEL the API
server runs (evaluated here by cel-python, on the spec as admission defaults it), the Python check
`contentgen validate` runs, and the JSON Schema of the HTTP API's document (on the spec as sent)."""

from __future__ import annotations

import random
from typing import Any

import celpy
import jsonschema  # type: ignore[import-untyped]
import pytest

from contentgen.api.image import LoraEntry, LoraRef
from contentgen.api.rules import Both, Either, Has, In, Not, Rule, SpecField
from contentgen.api.video import (
    DEFAULT_MODEL,
    DEFAULT_PROVIDER,
    MODELS,
    VIDEO_RULES,
    ImageRef,
    VideoGenerationSpec,
    VideoImage,
)

# Values on and beside every model's limits, and a field left out (None).
VALUES: dict[str, list[Any]] = {
    "model": [None, *MODELS],
    "provider": [None, "fal", "cluster", "offline"],
    "image": [None, {"url": "https://e/p.png"}],
    "imageRef": [None, {"name": "i"}],
    "numFrames": [None, 4, 5, 8, 9, 16, 17, 81, 82, 121, 161, 162, 257, 1441, 1442],
    "durationSeconds": [None, 0.5, 3.3, 5.0, 10.0, 11.0, 70.0],
    "fps": [None, 3, 4, 16, 24, 60],
    "resolution": [None, "480p", "580p", "720p", "1080p"],
    "aspectRatio": [None, "auto", "16:9", "1:1", "4:3"],
    "loras": [None, [], [{"url": "https://h/l.safetensors"}], [{"loraRef": {"name": "l"}}]],
}


def sent_specs(count: int) -> list[dict[str, Any]]:
    pick = random.Random(46)
    specs = []
    for _ in range(count):
        chosen = {field: pick.choice(values) for field, values in VALUES.items()}
        specs.append({field: value for field, value in chosen.items() if value is not None})
    return specs


def built(sent: dict[str, Any]) -> VideoGenerationSpec:
    """The spec as the Python checks read it: defaults filled in."""
    loras = [
        LoraEntry.model_construct(
            lora_ref=LoraRef.model_construct(**e["loraRef"]) if "loraRef" in e else None, url=e.get("url")
        )
        for e in sent.get("loras", [])
    ]
    return VideoGenerationSpec.model_construct(
        owner="u",
        prompt="waves",
        model=sent.get("model", DEFAULT_MODEL),
        provider=sent.get("provider", DEFAULT_PROVIDER),
        image=VideoImage.model_construct(**sent["image"]) if "image" in sent else None,
        image_ref=ImageRef.model_construct(**sent["imageRef"]) if "imageRef" in sent else None,
        num_frames=sent.get("numFrames"),
        duration_seconds=sent.get("durationSeconds"),
        fps=sent.get("fps"),
        resolution=sent.get("resolution"),
        aspect_ratio=sent.get("aspectRatio"),
        loras=loras,
    )


def test_every_video_rule_says_the_same_in_cel_python_and_json_schema() -> None:
    env = celpy.Environment()
    programs = [env.program(env.compile(rule.cel.rule)) for rule in VIDEO_RULES]
    schemas = [
        None if rule.json_schema is None else jsonschema.Draft202012Validator(rule.json_schema)
        for rule in VIDEO_RULES
    ]
    refused = 0
    for sent in sent_specs(100):
        admitted = {"model": DEFAULT_MODEL, "provider": DEFAULT_PROVIDER, **sent}
        activation = {"self": celpy.json_to_cel(admitted)}
        spec = built(sent)
        for rule, program, schema in zip(VIDEO_RULES, programs, schemas, strict=True):
            assert rule.cel.check is not None
            python = rule.cel.check(spec)
            assert bool(program.evaluate(activation)) == python, (rule.cel.rule, sent)
            if schema is not None:
                assert schema.is_valid(sent) == python, (rule.cel.rule, sent)
            refused += not python
    assert refused > 100  # the specs reach past the limits, not only inside them


NUMBER = SpecField("n", "number")
TEXT = SpecField("text", "string")
LIST = SpecField("list", "array")


@pytest.mark.parametrize(
    ("rule", "cel"),
    [
        # `&&` binds tighter than `||`: a term made of `||` keeps its parentheses inside `Both`
        (
            Not(Both((Has(NUMBER), Either((Has(TEXT), Has(LIST)))))),
            "!(has(self.n) && (has(self.text) || has(self.list)))",
        ),
        (Not(Has(NUMBER)), "!has(self.n)"),
        # a number field's values are CEL doubles, as the API server reads a JSON number
        (In(NUMBER, (5, 10)), "self.n in [5.0, 10.0]"),
        (In(TEXT, ("a", "b")), "self.text in ['a', 'b']"),
    ],
)
def test_terms_read_as_cel(rule: Any, cel: str) -> None:
    assert rule.cel() == cel


def test_a_rule_json_schema_cannot_say_is_none_whole() -> None:
    from contentgen.api.rules import Between

    said = Rule(NUMBER, "m", (Not(Has(NUMBER)), Between(NUMBER, 1, 9, step=4)))
    assert said.json_schema() is None
    assert Rule(NUMBER, "m", (Not(Has(NUMBER)), Between(NUMBER, 1, 9))).json_schema() == {
        "anyOf": [
            {"not": {"required": ["n"], "properties": {"n": {"type": "number"}}}},
            {"properties": {"n": {"minimum": 1, "maximum": 9}}},
        ]
    }
