"""A LoraTraining's base model (api/base_models.py): what each provider trains, refused at admission
by the real kube-apiserver and by `contentgen validate` alike, in one line naming the field; and
the table's pure decisions (the trainer a run uses, the dataset's media, what loads a LoRA, Wan
2.2's experts)."""

from __future__ import annotations

from typing import Any

import pytest

from contentgen.api import KINDS
from contentgen.api.base_models import (
    BASE_MODELS,
    FAL_TRAINERS,
    WAN_FRAMES,
    boundary_of,
    expert_ranges,
    lora_fits,
    media_of,
    misfit,
    trainer_of,
)
from contentgen.api.crd import crd
from contentgen.api.lora import DEFAULT_TRAINING_MODEL
from contentgen.api.manifests import Document
from contentgen.api.validation import validate_document
from tests.admission import admit


def training(**spec: Any) -> dict[str, Any]:
    base = {"owner": "demo-user", "source": {"url": "https://e.example/v.mp4"}, "triggerWord": "dmavatar"}
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "LoraTraining",
        "metadata": {"name": "x"},
        "spec": {**base, **spec},
    }


REJECTED: dict[str, tuple[dict[str, Any], str, str]] = {
    "a Wan model fal has no trainer for": (
        {"training": {"baseModel": "wan-2.1-t2v-1.3b"}},
        "spec.training.baseModel",
        "training.baseModel wan-2.1-t2v-1.3b is trained on provider cluster (or offline",
    ),
    "a FLUX trainer for a Wan model": (
        {"training": {"baseModel": "wan-2.2-t2v-a14b", "model": "fal-ai/flux-lora-portrait-trainer"}},
        "spec.training.model",
        "use one of fal's trainers for it (fal-ai/wan-22-trainer/t2v-a14b, fal-ai/wan-22-image-trainer)",
    ),
    "another Wan model's trainer": (
        {"training": {"baseModel": "wan-2.1-i2v-14b", "model": "fal-ai/wan-22-trainer/t2v-a14b"}},
        "spec.training.model",
        "fal-ai/wan-trainer",
    ),
    "a Wan trainer for FLUX.1": (
        {"training": {"model": "fal-ai/wan-trainer"}},
        "spec.training.model",
        "makes no FLUX.1 LoRA",
    ),
    "a Z-Image trainer for FLUX.1": (
        {"training": {"model": "fal-ai/z-image-turbo-trainer-v2"}},
        "spec.training.model",
        "makes no FLUX.1 LoRA",
    ),
    "Qwen-Image's trainer for Z-Image": (
        {"training": {"baseModel": "z-image-turbo", "model": "fal-ai/qwen-image-2512-trainer-v2"}},
        "spec.training.model",
        "fal-ai/z-image-turbo-trainer-v2",
    ),
    "FLUX.2 [klein] on fal, which trains none here": (
        {"training": {"baseModel": "flux.2-klein-4b"}},
        "spec.training.baseModel",
        "or a baseModel fal trains (flux.1, z-image-turbo, qwen-image-2512) (docs/cluster-training.md#fam",
    ),
    "LTX-2 on fal, which trains none here": (
        {"provider": "fal", "training": {"baseModel": "ltx-2"}},
        "spec.training.baseModel",
        "or a baseModel fal trains (wan-2.1-i2v-14b, wan-2.2-t2v-a14b, wan-2.2-i2v-a14b) (docs/lora-datasets",
    ),
    "clips for a picture family": (
        {"dataset": {"media": "clips"}, "training": {"baseModel": "qwen-image-2512"}},
        "spec.dataset.media",
        "needs a video training.baseModel",
    ),
    "clips for FLUX.1": (
        {"dataset": {"media": "clips"}},
        "spec.dataset.media",
        "a FLUX.1 LoRA learns from stills",
    ),
    "clips for the stills-only trainer": (
        {
            "dataset": {"media": "clips"},
            "training": {"baseModel": "wan-2.2-t2v-a14b", "model": "fal-ai/wan-22-image-trainer"},
        },
        "spec.dataset.media",
        "fal-ai/wan-22-image-trainer learns from stills only",
    ),
    "stills for the clips-only model": (
        {"dataset": {"media": "stills"}, "training": {"baseModel": "wan-2.2-i2v-a14b"}},
        "spec.dataset.media",
        "learns from clips only",
    ),
    "steps under the trainers' minimum": (
        {"training": {"baseModel": "wan-2.1-i2v-14b", "steps": 99}},
        "spec.training.steps",
        "",
    ),
    "clip frames off Wan's frame rule": (
        {"training": {"baseModel": "wan-2.1-i2v-14b"}, "dataset": {"clips": {"frames": 32}}},
        "spec.dataset.clips.frames",
        "4k+1",
    ),
    "clips longer than Wan makes": (
        {"training": {"baseModel": "wan-2.1-i2v-14b"}, "dataset": {"clips": {"frames": 85}}},
        "spec.dataset.clips.frames",
        "",
    ),
}

ACCEPTED: dict[str, dict[str, Any]] = {
    "FLUX.1 as before": {},
    "Wan 2.1 I2V on fal, its trainer by default": {"training": {"baseModel": "wan-2.1-i2v-14b"}},
    "Wan 2.2 T2V with the stills-only trainer": {
        "training": {"baseModel": "wan-2.2-t2v-a14b", "model": "fal-ai/wan-22-image-trainer"},
        "dataset": {"media": "stills"},
    },
    "Wan 2.2 I2V with clips": {"training": {"baseModel": "wan-2.2-i2v-a14b"}, "dataset": {"media": "clips"}},
    "any Wan model offline": {"provider": "offline", "training": {"baseModel": "wan-2.1-t2v-1.3b"}},
    "every Wan model on the cluster's Wan trainer": {
        "provider": "cluster",
        "training": {"baseModel": "wan-2.2-t2v-a14b", "memoryPlan": "int8"},
    },
    "the Wan model fal has no trainer for, on the cluster": {
        "provider": "cluster",
        "training": {"baseModel": "wan-2.1-t2v-1.3b"},
    },
    "a Wan model, stills asked for": {
        "training": {"baseModel": "wan-2.1-i2v-14b"},
        "dataset": {"media": "stills"},
    },
    "Z-Image-Turbo on fal, its trainer by default": {"training": {"baseModel": "z-image-turbo"}},
    "Qwen-Image-2512 on fal": {"training": {"baseModel": "qwen-image-2512", "steps": 2000}},
    "every newer picture family on the cluster": {
        "provider": "cluster",
        "training": {"baseModel": "flux.2-klein-9b", "rank": 32},
    },
    "Z-Image base on the cluster": {"provider": "cluster", "training": {"baseModel": "z-image-base"}},
    "LTX-2 offline": {"provider": "offline", "training": {"baseModel": "ltx-2"}},
    "LTX-2 over two GPUs": {
        "provider": "cluster",
        "training": {"baseModel": "ltx-2"},
        "resources": {"gpus": 2},
    },
    "81-frame clips": {"training": {"baseModel": "wan-2.2-t2v-a14b"}, "dataset": {"clips": {"frames": 81}}},
}


def _validated(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p.path, p.reason) for p in validate_document(Document("t.yaml", 1, obj)).problems]


@pytest.mark.parametrize("case", list(REJECTED))
def test_a_combination_no_provider_offers_is_refused_on_its_field(case: str) -> None:
    spec, field, words = REJECTED[case]
    obj = training(**spec)
    _, errors = admit(crd(KINDS["LoraTraining"]), obj)
    assert [message for path, message in errors if path == field], errors
    assert words in " ".join(message for _, message in errors)
    problems = _validated(obj)
    assert [reason for path, reason in problems if path == field], problems
    assert all("\n" not in reason for _, reason in problems)


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_what_a_provider_offers_is_admitted(case: str) -> None:
    obj = training(**ACCEPTED[case])
    stored, errors = admit(crd(KINDS["LoraTraining"]), obj)
    assert errors == []
    assert _validated(obj) == []
    assert stored["spec"]["training"]["baseModel"] == ACCEPTED[case].get("training", {}).get(
        "baseModel", "flux.1"
    )


def test_the_trainer_a_run_uses() -> None:
    default = DEFAULT_TRAINING_MODEL
    # left at FLUX's default: the base model's first trainer; named: that one; off fal: none
    assert trainer_of("wan-2.2-t2v-a14b", "fal", default, default).app == "fal-ai/wan-22-trainer/t2v-a14b"
    assert trainer_of("wan-2.2-t2v-a14b", "fal", "fal-ai/wan-22-image-trainer", default).app == (
        "fal-ai/wan-22-image-trainer"
    )
    assert trainer_of("flux.1", "fal", default, default).app == default
    assert trainer_of("flux.1", "fal", "fal-ai/some-new-trainer", default) is None
    assert trainer_of("wan-2.1-i2v-14b", "offline", default, default) is None
    # every trainer is one base model's, each documented with a source
    assert set(FAL_TRAINERS) == {t.app for m in BASE_MODELS.values() for t in m.fal_trainers}
    assert all(t.source.startswith("https://fal.ai/") for _, t in FAL_TRAINERS.values())


def test_what_the_dataset_gives_the_trainer() -> None:
    wan22, image = BASE_MODELS["wan-2.2-t2v-a14b"].fal_trainers
    i2v = BASE_MODELS["wan-2.2-i2v-a14b"].fal_trainers[0]
    assert media_of("flux.1", "auto", None) == (True, False)
    assert media_of("wan-2.2-t2v-a14b", "auto", wan22) == (True, True)
    assert media_of("wan-2.2-t2v-a14b", "stills", wan22) == (True, False)  # the person asks
    assert media_of("wan-2.2-t2v-a14b", "auto", image) == (True, False)  # the trainer asks
    assert media_of("wan-2.2-i2v-a14b", "auto", i2v) == (False, True)
    assert media_of("wan-2.1-t2v-1.3b", "clips", None) == (False, True)  # offline, clips only


def test_what_loads_a_lora() -> None:
    assert lora_fits("wan-2.2-t2v-a14b", "wan-2.2-t2v")
    assert lora_fits("wan-2.2-t2v-a14b", "wan-2.2-a14b-t2v")  # the cluster's, a pair into both experts
    assert not lora_fits("wan-2.2-t2v-a14b", "wan-1.3b-t2v")
    assert lora_fits("wan-2.1-t2v-1.3b", "wan-1.3b-t2v")
    assert not lora_fits("wan-2.1-t2v-1.3b", "wan-14b-i2v")  # another width
    assert lora_fits("flux.1", "flux-lora") and not lora_fits("flux.1", "wan-2.2-t2v")
    assert lora_fits("", "flux-lora")  # a version from before the field: FLUX.1
    assert lora_fits("z-image-turbo", "z-image-turbo") and lora_fits("z-image-base", "z-image-turbo")
    assert not lora_fits("z-image-turbo", "flux-lora") and not lora_fits("flux.1", "z-image-turbo")
    assert not lora_fits("flux.2-klein-4b", "flux.2-klein-9b")  # another width
    said = misfit("qwen-image-2512", "flux-lora", "loraRef 'q' version 1")
    assert "is a Qwen-Image-2512 LoRA" in said and "use model qwen-image-2512, or train one" in said
    assert "training.baseModel flux.1" in said and "animate" not in said


def test_wan_22_experts_and_the_frame_rule() -> None:
    assert expert_ranges(0.875) == {"high": (875.0, 1000.0), "low": (0.0, 875.0)}
    assert expert_ranges(0.9)["low"] == (0.0, 900.0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        expert_ranges(1.0)
    # the staged model's config says, else the table
    assert boundary_of({"boundary_ratio": 0.8}, "wan-2.2-t2v-a14b") == 0.8
    assert boundary_of({}, "wan-2.2-t2v-a14b") == 0.875
    assert boundary_of({}, "wan-2.2-i2v-a14b") == 0.9
    with pytest.raises(ValueError, match="no experts"):
        boundary_of({}, "wan-2.1-t2v-1.3b")
    assert [WAN_FRAMES.frames(n) for n in (1, 5, 32, 33, 36, 100)] == [5, 5, 33, 33, 37, 81]
