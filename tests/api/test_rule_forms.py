"""The rules declared once in api/rules.py say the same thing in their three forms: the CEL the API
server runs (evaluated here by cel-python, on the spec as admission defaults it), the Python check
`contentgen validate` runs, and the JSON Schema of the HTTP API's document (on the spec as sent)."""

from __future__ import annotations

import random
import typing
from collections.abc import Sequence
from typing import Any

import celpy
import jsonschema  # type: ignore[import-untyped]
import pytest
from pydantic import BaseModel

from contentgen.api.base_models import BASE_MODEL_RULES
from contentgen.api.evaluation import SEED_RULES, LikenessPlan
from contentgen.api.image import LORA_ENTRY_RULES, ImageGenerationSpec, LoraEntry, image_rules
from contentgen.api.lora import (
    CLUSTER_ONLY_TRAINING_RULES,
    DATASET_RULES,
    LIVE_TRAINING_RULES,
    TRAINING_RULES,
    DatasetSpec,
    LoraTrainingSpec,
    TrainingSpec,
)
from contentgen.api.lora.resources import CLUSTER_RESOURCES_RULES, SEVERAL_NODES_RULE, ResourcesSpec
from contentgen.api.rules import GENERATED, Both, Either, GeneratedRule, Has, In, Not, Rule, SpecField
from contentgen.api.transcription import TRANSCRIPTION_RULES, TranscriptionSpec
from contentgen.api.video import MODELS, VIDEO_RULES, VideoGenerationSpec

Values = dict[str, list[Any]]


def sent_specs(values: Values, count: int, seed: int = 46) -> list[dict[str, Any]]:
    """`count` specs as sent, each field one of its `values` (None: left out)."""
    pick = random.Random(seed)
    specs = []
    for _ in range(count):
        chosen = {field: pick.choice(choices) for field, choices in values.items()}
        specs.append({field: value for field, value in chosen.items() if value is not None})
    return specs


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for a in typing.get_args(annotation) if (m := _model_in(a))), None)


def built(model: type[BaseModel], sent: dict[str, Any]) -> Any:
    """The spec as the Python checks read it: defaults filled in, nested objects models."""

    def value(annotation: Any, sent: Any) -> Any:
        if isinstance(sent, list):
            return [value(annotation, v) for v in sent]
        nested = _model_in(annotation) if isinstance(sent, dict) else None
        return built(nested, sent) if nested else sent

    fields = {
        name: value(info.annotation, sent[info.alias or name])
        for name, info in model.model_fields.items()
        if (info.alias or name) in sent
    }
    return model.model_construct(**fields)


def assert_forms_agree(
    rules: Sequence[GeneratedRule], model: type[BaseModel], specs: list[dict[str, Any]]
) -> int:
    """Each rule's three forms say the same of every spec; how many times a rule refused one."""
    env = celpy.Environment()
    programs = [env.program(env.compile(rule.cel.rule)) for rule in rules]
    schemas = [
        None if r.json_schema is None else jsonschema.Draft202012Validator(r.json_schema) for r in rules
    ]
    refused = 0
    for sent in specs:
        spec = built(model, sent)
        # admission fills in every default the CRD declares, as the model's own
        admitted = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        activation = {"self": celpy.json_to_cel(admitted)}
        for rule, program, schema in zip(rules, programs, schemas, strict=True):
            assert rule.cel.check is not None
            python = rule.cel.check(spec)
            assert bool(program.evaluate(activation)) == python, (rule.cel.rule, sent)
            if schema is not None:
                assert schema.is_valid(sent) == python, (rule.cel.rule, sent)
            refused += not python
    return refused


# Values on and beside every model's limits, and a field left out (None).
VIDEO: Values = {
    "owner": ["u"],
    "prompt": ["waves"],
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
IMAGE: Values = {
    "owner": ["u"],
    "prompt": ["a fox"],
    "model": [None, "flux-dev", "flux-pro", "flux-schnell", "flux-lora"],
    "provider": [None, "fal", "offline", "cluster"],
    "numImages": [None, 1, 4, 5, 8],
    "memoryPlan": [None, "auto", "bf16", "offload"],
    "denoising": [None, "pool", "job"],
    "loras": [None, [], [{"url": "https://h/l.safetensors"}]],
}
LORA_ENTRY: Values = {"loraRef": [None, {"name": "l"}], "url": [None, "https://h/l.safetensors"]}
TRANSCRIPTION: Values = {
    "owner": ["u"],
    "source": [{"url": "https://e/a.mp3"}],
    "provider": [None, "assemblyai", "offline", "cluster"],
    "speakerLabels": [None, False, True],
}
# Each cluster-only field at its default and off it, and steps and checkpointEvery about 50 checkpoints.
TRAINING: Values = {
    "memoryPlan": [None, "auto", "nf4"],
    "loraTargets": [None, "attention+feedforward", "all-linear"],
    "guidance": [None, 1.0, 3.5],
    "timestepSampling": [None, "shift", "uniform"],
    "maxGradNorm": [None, 1.0, 0.0],
    "steps": [None, 100, 1000, 1001, 10000],
    "checkpointEvery": [None, 0, 19, 20, 21, 250, 10000],
    "batchSize": [None, 4],
}
LORA: Values = {
    "owner": ["u"],
    "source": [{"url": "https://e/v.mp4"}],
    "triggerWord": ["jx"],
    "provider": [None, "fal", "offline", "cluster"],
    "training": [None, {}, *sent_specs(TRAINING, 40)],
}
# resources (GPUs, nodes, a backend) beside every provider
RESOURCES_ON: Values = {
    "owner": ["u"],
    "source": [{"url": "https://e/v.mp4"}],
    "triggerWord": ["jx"],
    "provider": [None, "fal", "offline", "cluster"],
    "resources": [
        None,
        {},
        {"gpus": 2},
        {"nodes": 2},
        {"backend": "jobset"},
        {"nodes": 1, "backend": "auto"},
    ],
}
RESOURCES: Values = {
    "gpus": [None, 1, 8],
    "nodes": [None, 1, 2, 8],
    "backend": [None, "auto", "job", "jobset", "trainjob"],
}
DATASET: Values = {
    "minFrames": [None, 4, 39, 40, 41, 200],
    "maxFrames": [None, 4, 40, 200],
    "subject": [None, {"referenceImages": ["https://e/p.png"]}],
    "faceFilter": [None, True, False],
}
# stopWhen (its plateau with the evaluation on and off) and continueFrom beside every provider.
LIVE: Values = {
    "owner": ["u"],
    "source": [{"url": "https://e/v.mp4"}],
    "triggerWord": ["jx"],
    "provider": [None, "fal", "offline", "cluster"],
    "training": [
        None,
        {},
        {"stopWhen": {}},
        {"stopWhen": {"likenessPlateau": {"patience": 2}}},
        {"stopWhen": {"maxCostUsd": 5.0}},
        {"continueFrom": {"version": 2}},
        {"stopWhen": {"likenessPlateau": {"patience": 1}}, "continueFrom": {"version": 1, "step": 500}},
    ],
    "evaluation": [None, {}, {"enabled": True}, {"enabled": False}],
}
# Base models, fal's trainers and a dataset's media, each with values that pass and that do not.
BASE_MODEL: Values = {
    "owner": ["u"],
    "source": [{"url": "https://e/v.mp4"}],
    "triggerWord": ["jx"],
    "provider": [None, "fal", "offline", "cluster"],
    "training": [
        None,
        {},
        *sent_specs(
            {
                "baseModel": [
                    None,
                    "flux.1",
                    "wan-2.1-t2v-1.3b",
                    "wan-2.1-i2v-14b",
                    "wan-2.2-t2v-a14b",
                    "wan-2.2-i2v-a14b",
                ],
                "model": [
                    None,
                    "fal-ai/flux-lora-fast-training",
                    "fal-ai/flux-lora-portrait-trainer",
                    "fal-ai/wan-trainer",
                    "fal-ai/wan-22-trainer/t2v-a14b",
                    "fal-ai/wan-22-image-trainer",
                    "FLUX.1-dev",
                ],
            },
            60,
        ),
    ],
    "dataset": [None, {}, {"media": "auto"}, {"media": "stills"}, {"media": "clips"}],
}
LIKENESS_PLAN: Values = {"seeds": [None, [1], [1, 2], [2, 2], [1, 2, 1]]}

FORMS: dict[str, tuple[Sequence[GeneratedRule], type[BaseModel], Values, int]] = {
    "video": (VIDEO_RULES, VideoGenerationSpec, VIDEO, 100),
    "image": (image_rules(), ImageGenerationSpec, IMAGE, 100),
    "lora entry": (LORA_ENTRY_RULES, LoraEntry, LORA_ENTRY, 20),
    "transcription": (TRANSCRIPTION_RULES, TranscriptionSpec, TRANSCRIPTION, 30),
    "lora training's cluster-only fields": (CLUSTER_ONLY_TRAINING_RULES, LoraTrainingSpec, LORA, 100),
    "lora training's base model": (BASE_MODEL_RULES, LoraTrainingSpec, BASE_MODEL, 300),
    "lora training's stop and continue": (LIVE_TRAINING_RULES, LoraTrainingSpec, LIVE, 120),
    "lora training's resources": (CLUSTER_RESOURCES_RULES, LoraTrainingSpec, RESOURCES_ON, 24),
    "resources": ((SEVERAL_NODES_RULE,), ResourcesSpec, RESOURCES, 60),
    "training": (TRAINING_RULES, TrainingSpec, TRAINING, 100),
    "dataset": (DATASET_RULES, DatasetSpec, DATASET, 60),
    "likeness plan": (SEED_RULES, LikenessPlan, LIKENESS_PLAN, 20),
}


@pytest.mark.parametrize("name", FORMS)
def test_every_rule_says_the_same_in_cel_python_and_json_schema(name: str) -> None:
    rules, model, values, count = FORMS[name]
    refused = assert_forms_agree(rules, model, sent_specs(values, count))
    # the specs reach past the rules, not only inside them
    assert refused >= (100 if name == "video" else len(rules))


def test_every_generated_rule_is_held_to_its_forms() -> None:
    """Every rule generated (api/rules.GENERATED: what the HTTP API's document says) is tested
    above, and the document says each (request_rules.rules)."""
    from contentgen.httpapi.request_rules import rules

    tested = {r.cel.rule for rules_, *_ in FORMS.values() for r in rules_}
    assert sorted(GENERATED) == sorted(tested)
    said = rules(local=False)
    assert all(said[rule] == generated.json_schema for rule, generated in GENERATED.items())


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


def test_a_base_model_whose_family_trains_on_one_gpu_refuses_several_at_admission() -> None:
    """A table row whose family does not spread refuses resources.gpus or nodes above 1 on provider
    cluster, in all three forms, and holds nothing else back. Every family spreads today, so the row
    is LTX-2's as it would be if its trainer did not (as it was before it did); the table registers
    no such rule."""
    from dataclasses import replace

    from contentgen.api.base_models import BASE_MODEL_RULES, BASE_MODELS, gpus_rule

    assert [m.name for m in BASE_MODELS.values() if not m.spreads] == []
    rule = gpus_rule(replace(BASE_MODELS["ltx-2"], spreads=False))
    assert rule.cel_rule().message not in [r.cel.message for r in BASE_MODEL_RULES]
    generated = GeneratedRule(rule.cel_rule(), rule.json_schema())
    values: Values = {
        **RESOURCES_ON,
        "provider": [None, "offline", "cluster"],
        "training": [None, {"baseModel": "flux.1"}, {"baseModel": "ltx-2"}],
        "resources": [None, {}, {"gpus": 1}, {"gpus": 4}, {"nodes": 2, "backend": "jobset"}],
    }
    assert assert_forms_agree([generated], LoraTrainingSpec, sent_specs(values, 80)) > 0
    one = {"owner": "u", "source": {"url": "https://e/v.mp4"}, "triggerWord": "jx", "provider": "cluster"}
    four = {**one, "training": {"baseModel": "ltx-2"}, "resources": {"gpus": 4}}
    assert generated.cel.check is not None
    assert not generated.cel.check(built(LoraTrainingSpec, four))
    assert generated.cel.check(built(LoraTrainingSpec, {**four, "resources": {"gpus": 1}}))
    assert generated.cel.check(built(LoraTrainingSpec, {**four, "training": {"baseModel": "flux.1"}}))
    assert "trains on one GPU" in generated.cel.message and "resources.gpus" in generated.cel.message
