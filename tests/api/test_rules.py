"""Every constraint of the API, enforced twice: by the generated CRD at admission (schema + CEL)
and by `contentgen validate`. Each rule has a rejected and an accepted example, and both
sides must agree, naming the same field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from contentgen.api import KINDS
from contentgen.api.crd import crd
from contentgen.api.manifests import Document
from contentgen.api.run import offline_spec
from contentgen.api.validation import validate_document
from tests.admission import admit

Mutation = Callable[[dict[str, Any]], None]


def put(path: str, value: Any) -> Mutation:
    """Set spec.<path> (dot-separated; list indexes as numbers)."""

    def mutate(obj: dict[str, Any]) -> None:
        node: Any = obj["spec"]
        *parents, last = path.split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def drop(path: str) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        node: Any = obj["spec"]
        *parents, last = path.split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        for m in mutations:
            m(obj)

    return mutate


LORA_URL = "https://models.example.com/a.safetensors"

# (example, mutation, field the error must name)
REJECTED: dict[str, tuple[str, Mutation, str]] = {
    # every kind
    "owner missing": ("LoraTraining", drop("owner"), "spec.owner"),
    "owner with space": ("ImageGeneration", put("owner", "jesse smith"), "spec.owner"),
    "owner with slash": ("Transcription", put("owner", "a/b"), "spec.owner"),
    "owner uppercase": ("LoraTraining", put("owner", "Jesse"), "spec.owner"),
    "owner dots only": ("LoraTraining", put("owner", ".."), "spec.owner"),
    "owner ends with dot": ("LoraTraining", put("owner", "a."), "spec.owner"),
    "owner too long": ("LoraTraining", put("owner", "a" * 64), "spec.owner"),
    "deletionPolicy unknown": ("LoraTraining", put("deletionPolicy", "Orphan"), "spec.deletionPolicy"),
    "too many tags": ("ImageGeneration", put("tags", [f"t{i}" for i in range(21)]), "spec.tags"),
    "tag too long": ("Transcription", put("tags", ["x" * 65]), "spec.tags[0]"),
    "description too long": ("LoraTraining", put("description", "x" * 1001), "spec.description"),
    # LoraTraining
    "lora source missing": ("LoraTraining", drop("source"), "spec.source"),
    "lora source url missing": ("LoraTraining", put("source", {}), "spec.source.url"),
    "lora source ftp": ("LoraTraining", put("source.url", "ftp://host/v.mp4"), "spec.source.url"),
    "lora source file": ("LoraTraining", put("source.url", "file:///etc/passwd"), "spec.source.url"),
    "lora source plain path": ("LoraTraining", put("source.url", "/data/v.mp4"), "spec.source.url"),
    "lora source credentials": (
        "LoraTraining",
        put("source.url", "https://user:pw@host/v.mp4"),
        "spec.source.url",
    ),
    "lora source space": ("LoraTraining", put("source.url", "https://host/a b.mp4"), "spec.source.url"),
    "lora source s3 no key": ("LoraTraining", put("source.url", "s3://bucket"), "spec.source.url"),
    "lora source too long": (
        "LoraTraining",
        put("source.url", "https://h/" + "a" * 2040),
        "spec.source.url",
    ),
    "trigger missing": ("LoraTraining", drop("triggerWord"), "spec.triggerWord"),
    "trigger empty": ("LoraTraining", put("triggerWord", ""), "spec.triggerWord"),
    "trigger bad char": ("LoraTraining", put("triggerWord", "jf!"), "spec.triggerWord"),
    "trigger too long": ("LoraTraining", put("triggerWord", "a" * 33), "spec.triggerWord"),
    "lora provider assemblyai": ("LoraTraining", put("provider", "assemblyai"), "spec.provider"),
    "maxFrames low": ("LoraTraining", put("dataset.maxFrames", 3), "spec.dataset.maxFrames"),
    "maxFrames high": ("LoraTraining", put("dataset.maxFrames", 201), "spec.dataset.maxFrames"),
    "maxFrames string": ("LoraTraining", put("dataset.maxFrames", "40"), "spec.dataset.maxFrames"),
    "maxFrames float": ("LoraTraining", put("dataset.maxFrames", 4.5), "spec.dataset.maxFrames"),
    "minFrames low": ("LoraTraining", put("dataset.minFrames", 3), "spec.dataset.minFrames"),
    "minFrames over maxFrames": (
        "LoraTraining",
        both(put("dataset.maxFrames", 12), put("dataset.minFrames", 13)),
        "spec.dataset.minFrames",
    ),
    "minFrames over the default maxFrames": (
        "LoraTraining",
        put("dataset.minFrames", 41),
        "spec.dataset.minFrames",
    ),
    "captioning unknown": ("LoraTraining", put("dataset.captioning", "vlm"), "spec.dataset.captioning"),
    "minScene low": ("LoraTraining", put("dataset.minSceneSeconds", 0.1), "spec.dataset.minSceneSeconds"),
    "minScene high": ("LoraTraining", put("dataset.minSceneSeconds", 60.5), "spec.dataset.minSceneSeconds"),
    "faceFilter string": ("LoraTraining", put("dataset.faceFilter", "yes"), "spec.dataset.faceFilter"),
    "caption without trigger": (
        "LoraTraining",
        put("dataset.captionTemplate", "a photo of a person"),
        "spec.dataset.captionTemplate",
    ),
    "caption too long": (
        "LoraTraining",
        put("dataset.captionTemplate", "{trigger}" + "x" * 292),
        "spec.dataset.captionTemplate",
    ),
    "training model too long": ("LoraTraining", put("training.model", "m" * 201), "spec.training.model"),
    "steps low": ("LoraTraining", put("training.steps", 99), "spec.training.steps"),
    "more than 50 checkpoints": (
        "LoraTraining",
        both(put("training.steps", 1000), put("training.checkpointEvery", 19)),
        "spec.training.checkpointEvery",
    ),
    "more than 50 checkpoints of the default steps": (
        "LoraTraining",
        put("training.checkpointEvery", 19),
        "spec.training.checkpointEvery",
    ),
    "checkpoints scored 0": ("LoraTraining", put("evaluation.checkpoints", 0), "spec.evaluation.checkpoints"),
    "checkpoints scored 21": (
        "LoraTraining",
        put("evaluation.checkpoints", 21),
        "spec.evaluation.checkpoints",
    ),
    "steps high": ("LoraTraining", put("training.steps", 10001), "spec.training.steps"),
    "learningRate zero": ("LoraTraining", put("training.learningRate", 0), "spec.training.learningRate"),
    # the training fields only provider cluster reads (issue 39): the example's provider is fal
    "memoryPlan on fal training": (
        "LoraTraining",
        put("training.memoryPlan", "int8"),
        "spec.training.memoryPlan",
    ),
    "memoryPlan offline training": (
        "LoraTraining",
        both(put("provider", "offline"), put("training.memoryPlan", "nf4")),
        "spec.training.memoryPlan",
    ),
    "loraTargets on fal": (
        "LoraTraining",
        put("training.loraTargets", "all-linear"),
        "spec.training.loraTargets",
    ),
    "guidance on fal": ("LoraTraining", put("training.guidance", 3.5), "spec.training.guidance"),
    "timestepSampling on fal": (
        "LoraTraining",
        put("training.timestepSampling", "uniform"),
        "spec.training.timestepSampling",
    ),
    "maxGradNorm on fal": ("LoraTraining", put("training.maxGradNorm", 0), "spec.training.maxGradNorm"),
    "learningRate high": ("LoraTraining", put("training.learningRate", 0.011), "spec.training.learningRate"),
    # a training's stop and continue need a trainer that scores checkpoints as it trains (issue 67)
    "stopWhen on fal": (
        "LoraTraining",
        put("training.stopWhen", {"likenessPlateau": {"patience": 2}}),
        "spec.training.stopWhen",
    ),
    "continueFrom on fal": (
        "LoraTraining",
        put("training.continueFrom", {"version": 1}),
        "spec.training.continueFrom",
    ),
    "likenessPlateau without the evaluation": (
        "LoraTraining",
        both(
            put("provider", "cluster"),
            put("training.stopWhen", {"likenessPlateau": {"patience": 2}}),
            put("evaluation", {"enabled": False}),
        ),
        "spec.training.stopWhen.likenessPlateau",
    ),
    "patience zero": (
        "LoraTraining",
        both(put("provider", "cluster"), put("training.stopWhen", {"likenessPlateau": {"patience": 0}})),
        "spec.training.stopWhen.likenessPlateau.patience",
    ),
    "patience missing": (
        "LoraTraining",
        both(put("provider", "cluster"), put("training.stopWhen", {"likenessPlateau": {"minGain": 0.02}})),
        "spec.training.stopWhen.likenessPlateau.patience",
    ),
    "maxCostUsd zero": (
        "LoraTraining",
        both(put("provider", "cluster"), put("training.stopWhen", {"maxCostUsd": 0})),
        "spec.training.stopWhen.maxCostUsd",
    ),
    "continueFrom version zero": (
        "LoraTraining",
        both(put("provider", "cluster"), put("training.continueFrom", {"version": 0})),
        "spec.training.continueFrom.version",
    ),
    # ImageGeneration
    "prompt missing": ("ImageGeneration", drop("prompt"), "spec.prompt"),
    "prompt empty": ("ImageGeneration", put("prompt", ""), "spec.prompt"),
    "prompt too long": ("ImageGeneration", put("prompt", "p" * 4001), "spec.prompt"),
    "negativePrompt too long": ("ImageGeneration", put("negativePrompt", "p" * 4001), "spec.negativePrompt"),
    "model unknown": ("ImageGeneration", put("model", "sdxl"), "spec.model"),
    "numImages zero": ("ImageGeneration", put("numImages", 0), "spec.numImages"),
    "numImages nine": ("ImageGeneration", put("numImages", 9), "spec.numImages"),
    "numImages five on fal": ("ImageGeneration", put("numImages", 5), "spec.numImages"),
    "numImages eight on fal": (
        "ImageGeneration",
        both(put("numImages", 8), put("provider", "fal")),
        "spec.numImages",
    ),
    "imageSize unknown": ("ImageGeneration", put("imageSize", "huge"), "spec.imageSize"),
    "seed negative": ("ImageGeneration", put("seed", -1), "spec.seed"),
    "seed too big": ("ImageGeneration", put("seed", 4294967296), "spec.seed"),
    "image provider assemblyai": ("ImageGeneration", put("provider", "assemblyai"), "spec.provider"),
    "loras without flux-lora": (
        "ImageGeneration",
        put("loras", [{"url": LORA_URL}]),
        "spec.loras",
    ),
    "too many loras": (
        "ImageGeneration/lora",
        put("loras", [{"url": LORA_URL}] * 6),
        "spec.loras",
    ),
    "lora entry with both": (
        "ImageGeneration/lora",
        put("loras", [{"url": LORA_URL, "loraRef": {"name": "x"}}]),
        "spec.loras[0]",
    ),
    "lora entry with neither": ("ImageGeneration/lora", put("loras", [{"scale": 1}]), "spec.loras[0]"),
    "lora url http": (
        "ImageGeneration/lora",
        put("loras", [{"url": "http://models.example.com/a.safetensors"}]),
        "spec.loras[0].url",
    ),
    "lora ref bad name": (
        "ImageGeneration/lora",
        put("loras", [{"loraRef": {"name": "Not_A_Name"}}]),
        "spec.loras[0].loraRef.name",
    ),
    "lora scale high": (
        "ImageGeneration/lora",
        put("loras", [{"url": LORA_URL, "scale": 2.5}]),
        "spec.loras[0].scale",
    ),
    "lora scale negative": (
        "ImageGeneration/lora",
        put("loras", [{"url": LORA_URL, "scale": -0.1}]),
        "spec.loras[0].scale",
    ),
    "memoryPlan on fal": ("ImageGeneration", put("memoryPlan", "int8"), "spec.memoryPlan"),
    "memoryPlan offline": (
        "ImageGeneration",
        both(put("provider", "offline"), put("memoryPlan", "offload")),
        "spec.memoryPlan",
    ),
    "memoryPlan unknown": (
        "ImageGeneration",
        both(put("provider", "cluster"), put("memoryPlan", "fp4")),
        "spec.memoryPlan",
    ),
    # Transcription
    "transcription source missing": ("Transcription", drop("source"), "spec.source"),
    "transcription source gopher": ("Transcription", put("source.url", "gopher://h/a"), "spec.source.url"),
    "languageCode bad": ("Transcription", put("languageCode", "english"), "spec.languageCode"),
    "languageCode upper": ("Transcription", put("languageCode", "EN"), "spec.languageCode"),
    "speakerLabels string": ("Transcription", put("speakerLabels", "true"), "spec.speakerLabels"),
    "transcription provider fal": ("Transcription", put("provider", "fal"), "spec.provider"),
    "whisperModel with a slash": ("Transcription", put("whisperModel", "../etc"), "spec.whisperModel"),
    "whisperModel empty": ("Transcription", put("whisperModel", ""), "spec.whisperModel"),
    "speakerLabels on cluster": (
        "Transcription",
        both(put("provider", "cluster"), put("speakerLabels", True)),
        "spec.speakerLabels",
    ),
    # LoraEvaluation
    "evaluation loraRef missing": ("LoraEvaluation", drop("loraRef"), "spec.loraRef"),
    "evaluation loraRef name bad": (
        "LoraEvaluation",
        put("loraRef.name", "Demo_Avatar"),
        "spec.loraRef.name",
    ),
    "evaluation version 0": ("LoraEvaluation", put("loraRef.version", 0), "spec.loraRef.version"),
    "evaluation provider assemblyai": ("LoraEvaluation", put("provider", "assemblyai"), "spec.provider"),
    "evaluation prompt set unknown": (
        "LoraEvaluation",
        put("evaluation.promptSet", "likeness-v9"),
        "spec.evaluation.promptSet",
    ),
    "evaluation five seeds": (
        "LoraEvaluation",
        put("evaluation.seeds", [1, 2, 3, 4, 5]),
        "spec.evaluation.seeds",
    ),
    "evaluation no seeds": ("LoraEvaluation", put("evaluation.seeds", []), "spec.evaluation.seeds"),
    "evaluation seed twice": ("LoraEvaluation", put("evaluation.seeds", [3, 4, 3]), "spec.evaluation.seeds"),
    "evaluation seed negative": ("LoraEvaluation", put("evaluation.seeds", [-1]), "spec.evaluation.seeds[0]"),
}

ACCEPTED: dict[str, tuple[str, Mutation]] = {
    "owner single char": ("LoraTraining", put("owner", "a")),
    "owner 63 chars": ("LoraTraining", put("owner", "a" * 63)),
    "owner with dot dash underscore": ("ImageGeneration", put("owner", "team.a_b-c")),
    "deletionPolicy Delete": ("Transcription", put("deletionPolicy", "Delete")),
    "20 tags of 64": ("LoraTraining", put("tags", [f"{i:02d}" + "x" * 62 for i in range(20)])),
    "description 1000": ("LoraTraining", put("description", "x" * 1000)),
    "only required lora fields": (
        "LoraTraining",
        lambda o: o.__setitem__(
            "spec", {"owner": "u", "source": {"url": "s3://bucket/v.mp4"}, "triggerWord": "t"}
        ),
    ),
    "lora source http": ("LoraTraining", put("source.url", "http://videos.internal/v.mp4")),
    "lora source query": ("LoraTraining", put("source.url", "https://h.example.com/v?sig=abc&x=1")),
    "lora source 2048": ("LoraTraining", put("source.url", "https://h/" + "a" * 2038)),
    "trigger 32": ("LoraTraining", put("triggerWord", "A_b-9" + "x" * 27)),
    "lora provider offline": ("LoraTraining", put("provider", "offline")),
    "maxFrames bounds": (
        "LoraTraining",
        both(put("dataset.maxFrames", 4), put("dataset.minSceneSeconds", 60)),
    ),
    "maxFrames 200": (
        "LoraTraining",
        both(put("dataset.maxFrames", 200), put("dataset.minSceneSeconds", 0.2)),
    ),
    "minScene integer": ("LoraTraining", put("dataset.minSceneSeconds", 2)),
    "minFrames equals maxFrames": (
        "LoraTraining",
        both(put("dataset.maxFrames", 6), put("dataset.minFrames", 6)),
    ),
    "maxFrames below the default minFrames": ("LoraTraining", put("dataset.maxFrames", 5)),
    "captioning auto with {caption}": (
        "LoraTraining",
        both(put("dataset.captioning", "auto"), put("dataset.captionTemplate", "{trigger}, {caption}")),
    ),
    "caption 300 with trigger": ("LoraTraining", put("dataset.captionTemplate", "{trigger}" + "x" * 291)),
    "steps bounds": ("LoraTraining", put("training.steps", 100)),
    "steps 10000": ("LoraTraining", put("training.steps", 10000)),
    "50 checkpoints": (
        "LoraTraining",
        both(put("training.steps", 1000), put("training.checkpointEvery", 20)),
    ),
    "the last step's checkpoint only": (
        "LoraTraining",
        both(put("training.steps", 10000), put("training.checkpointEvery", 0)),
    ),
    "checkpointEvery over steps": (
        "LoraTraining",
        both(put("training.steps", 100), put("training.checkpointEvery", 10000)),
    ),
    "checkpoints scored 1": ("LoraTraining", put("evaluation.checkpoints", 1)),
    "checkpoints scored 20": ("LoraTraining", put("evaluation.checkpoints", 20)),
    "learningRate max": ("LoraTraining", put("training.learningRate", 0.01)),
    "cluster-only training fields at their defaults on fal": (
        "LoraTraining",
        put(
            "training",
            {
                "memoryPlan": "auto",
                "loraTargets": "attention+feedforward",
                "guidance": 1,
                "timestepSampling": "shift",
                "maxGradNorm": 1.0,
            },
        ),
    ),
    "cluster-only training fields on cluster": (
        "LoraTraining",
        both(
            put("provider", "cluster"),
            put(
                "training",
                {
                    "memoryPlan": "int8",
                    "loraTargets": "all-linear",
                    "guidance": 3.5,
                    "timestepSampling": "uniform",
                    "maxGradNorm": 0,
                },
            ),
        ),
    ),
    "learningRate tiny": ("LoraTraining", put("training.learningRate", 1e-6)),
    "prompt 4000": ("ImageGeneration", put("prompt", "p" * 4000)),
    "numImages 4 on fal": ("ImageGeneration", put("numImages", 4)),
    "numImages 8 offline": ("ImageGeneration", both(put("numImages", 8), put("provider", "offline"))),
    "seed max": ("ImageGeneration", put("seed", 4294967295)),
    "seed zero": ("ImageGeneration", put("seed", 0)),
    "every size": ("ImageGeneration", put("imageSize", "portrait_16_9")),
    "schnell": ("ImageGeneration", put("model", "flux-schnell")),
    "empty loras without flux-lora": ("ImageGeneration", put("loras", [])),
    "five loras": (
        "ImageGeneration/lora",
        put(
            "loras",
            [{"url": LORA_URL}, {"url": "s3://bucket/l.safetensors", "scale": 0}]
            + [{"loraRef": {"name": "x"}, "scale": 2}] * 3,
        ),
    ),
    "lora ref only": ("ImageGeneration/lora", put("loras", [{"loraRef": {"name": "a.b-c"}}])),
    "memoryPlan on cluster": ("ImageGeneration", both(put("provider", "cluster"), put("memoryPlan", "nf4"))),
    "memoryPlan offload on cluster": (
        "ImageGeneration",
        both(put("provider", "cluster"), put("memoryPlan", "offload")),
    ),
    "memoryPlan auto on fal": ("ImageGeneration", put("memoryPlan", "auto")),
    "languageCode region": ("Transcription", put("languageCode", "en_us")),
    "transcription offline": ("Transcription", put("provider", "offline")),
    "transcription cluster": (
        "Transcription",
        both(put("provider", "cluster"), put("speakerLabels", False), put("whisperModel", "tiny.en")),
    ),
    "speakerLabels unset on cluster": (
        "Transcription",
        both(put("provider", "cluster"), drop("speakerLabels")),
    ),
    "speakerLabels on assemblyai": ("Transcription", put("speakerLabels", True)),
    "evaluation of the latest version": ("LoraEvaluation", drop("loraRef.version")),
    "evaluation on the cluster": ("LoraEvaluation", put("provider", "cluster")),
    "stopWhen and continueFrom on the cluster": (
        "LoraTraining",
        both(
            put("provider", "cluster"),
            put("training.stopWhen", {"likenessPlateau": {"patience": 3, "minGain": 0.02}, "maxCostUsd": 40}),
            put("training.continueFrom", {"version": 2, "step": 500}),
        ),
    ),
    "stopWhen offline": ("LoraTraining", both(put("provider", "offline"), put("training.stopWhen", {}))),
    "maxCostUsd without the evaluation": (
        "LoraTraining",
        both(
            put("provider", "cluster"),
            put("training.stopWhen", {"maxCostUsd": 3}),
            put("evaluation", {"enabled": False}),
        ),
    ),
    "evaluation with the version's provider": ("LoraEvaluation", drop("evaluation")),
    "evaluation four seeds": ("LoraEvaluation", put("evaluation.seeds", [0, 1, 2, 2**31 - 1])),
    "transcription s3": ("Transcription", put("source.url", "s3://my-bucket/audio/ep1.mp3")),
}


def _kind(example_name: str) -> str:
    return example_name.split("/")[0]


def _validate(obj: dict[str, Any]) -> list[tuple[str, str]]:
    outcome = validate_document(Document("test.yaml", 1, obj))
    return [(p.path, p.reason) for p in outcome.problems]


@pytest.mark.parametrize("case", list(REJECTED))
def test_rejected_by_admission_and_validate(case: str, example) -> None:
    example_name, mutate, field = REJECTED[case]
    obj = example(example_name)
    mutate(obj)

    _, admission_errors = admit(crd(KINDS[_kind(example_name)]), obj)
    assert admission_errors, f"admission accepted {case}"
    assert any(path == field or path.startswith(field + ".") for path, _ in admission_errors), (
        admission_errors
    )

    problems = _validate(obj)
    assert problems, f"contentgen validate accepted {case}"
    assert [p for p in problems if p[0] == field], f"expected a problem at {field}, got {problems}"
    assert all(reason for _, reason in problems)


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_accepted_by_admission_and_validate(case: str, example) -> None:
    example_name, mutate = ACCEPTED[case]
    obj = example(example_name)
    mutate(obj)
    _, admission_errors = admit(crd(KINDS[_kind(example_name)]), obj)
    assert admission_errors == []
    assert _validate(obj) == []


def test_defaults_match_between_crd_and_models(example) -> None:
    """What the API server stores for a minimal spec is what the models default to."""
    for kind in KINDS.values():
        minimal = {
            "LoraTraining": {"owner": "u", "source": {"url": "s3://bkt/v.mp4"}, "triggerWord": "t"},
            "ImageGeneration": {"owner": "u", "prompt": "p"},
            "Transcription": {"owner": "u", "source": {"url": "s3://bkt/a.mp3"}},
            "LoraEvaluation": {"owner": "u", "loraRef": {"name": "a"}},
            "VideoGeneration": {"owner": "u", "prompt": "p"},
        }[kind.kind]
        obj = {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": kind.kind,
            "metadata": {"name": "x"},
            "spec": minimal,
        }
        stored, errors = admit(crd(kind), obj)
        assert errors == []
        from_models = kind.spec.model_validate(minimal).wire()
        # The models also carry empty optional values (tags: [], description: ""), which the
        # CRD leaves unset; everything the CRD does set must agree.
        for key, value in stored["spec"].items():
            assert from_models[key] == value, key
        assert set(from_models) - set(stored["spec"]) <= {
            "tags",
            "description",
            "negativePrompt",
            "loras",
            "queueName",
        }


def test_owner_is_immutable_at_admission(example) -> None:
    kind = KINDS["LoraTraining"]
    old = example("LoraTraining")
    new = example("LoraTraining")
    new["spec"]["owner"] = "someone-else"
    _, errors = admit(crd(kind), new, old=old)
    assert [path for path, _ in errors] == ["spec.owner"]
    _, errors = admit(crd(kind), example("LoraTraining"), old=old)
    assert errors == []


def test_local_runs_accept_local_sources(example) -> None:
    obj = example("LoraTraining")
    obj["spec"]["source"]["url"] = "./videos/sample.mp4"
    assert _validate(obj)  # the cluster never fetches local paths
    outcome = validate_document(Document("x.yaml", 1, obj), local=True)
    assert outcome.problems == ()
    obj["spec"]["source"]["url"] = "file:///tmp/sample.mp4"
    assert validate_document(Document("x.yaml", 1, obj), local=True).problems == ()
    obj["spec"]["source"]["url"] = "ftp://h/x.mp4"  # still not a local path
    assert validate_document(Document("x.yaml", 1, obj), local=True).problems


@pytest.mark.parametrize(
    ("kind", "settings"),
    [
        ("ImageGeneration", {"memoryPlan": "int8", "denoising": "pool"}),
        ("ImageGeneration", {"memoryPlan": "nf4", "denoising": "job"}),
        ("LoraTraining", {"training": {"memoryPlan": "int8", "loraTargets": "attention", "guidance": 3.5}}),
        (
            "LoraTraining",
            {"training": {"batchSize": 2}, "resources": {"gpus": 2, "nodes": 2, "backend": "jobset"}},
        ),
    ],
)
def test_an_offline_run_of_a_cluster_spec_drops_what_only_the_cluster_reads(
    kind: str, settings: dict[str, Any], example
) -> None:
    """`contentgen run --offline` and `contentgen api --offline` run a provider-cluster spec on the
    offline provider (api/run.py offline_spec): without the settings only provider cluster reads,
    which the rules refuse beside any other provider (the contract test's finding: a `denoising:
    pool` request refused as invalid by an offline API)."""
    obj = example(kind)
    obj["spec"]["provider"] = "cluster"
    for field, value in settings.items():
        obj["spec"][field] = {**obj["spec"].get(field, {}), **value} if isinstance(value, dict) else value
    assert validate_document(Document("x.yaml", 1, obj)).problems == ()
    ran = {**obj, "spec": offline_spec(kind, obj["spec"])}
    assert ran["spec"]["provider"] == "offline"
    assert validate_document(Document("x.yaml", 1, ran)).problems == ()
