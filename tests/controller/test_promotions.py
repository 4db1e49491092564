"""A checkpoint a person promotes in a cluster (docs/likeness.md#choosing-a-checkpoint-yourself):
the LoraTraining's annotation contentgen.io/promoted-checkpoints, {"version": step}. A loraRef to the
version resolves to that checkpoint's LoRA (observe.lora_state), the status's version shows the
promotion with the automatic choice kept, an Event says each change once, and an annotation naming
a step that was not scored (or that is not JSON) is said in a Warning and promotionProblem while
the rest holds."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from contentgen.api import Likeness
from contentgen.api.lora import PROMOTED_ANNOTATION, CheckpointLikeness
from contentgen.controller.decide import World, decide
from contentgen.controller.observe import lora_state
from tests.harness.controller import LORA_REF, NOW, UID, apply, job, lora_result, resource

CHECKPOINT = "s3://bkt/loras/alice/{uid}/v1/checkpoints/step-{step:06d}.safetensors"


def trained() -> Any:
    """A LoraTraining whose version 1 scored checkpoints 250, 500 and 750 (750 chosen)."""
    res = apply(resource(), decide(resource(), World(now=NOW)))
    made = lora_result(1, 1)
    assert made.lora is not None
    curve = [
        CheckpointLikeness(
            step=s, model_uri=CHECKPOINT.format(uid=UID, step=s), verdict="good", chosen=s == 750
        )
        for s in (250, 500, 750)
    ]
    made.lora.likeness = Likeness(verdict="good", median=0.6, checkpoints=curve, chosen_step=750)
    return apply(res, decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=made)))


def annotated(res: Any, value: str) -> Any:
    return replace(res, annotations={PROMOTED_ANNOTATION: value})


def body(res: Any) -> dict[str, Any]:
    meta = {"name": "demo", "uid": UID, "annotations": dict(res.annotations)}
    return {"metadata": meta, "spec": res.spec, "status": res.status}


def test_a_promoted_checkpoint_is_what_a_lora_ref_gets_and_the_status_says_so() -> None:
    res = trained()
    own = res.status["versions"][0]["modelUri"]
    assert lora_state(body(res)).latest_model_uri == own
    res = annotated(res, json.dumps({"1": 500}))
    d = decide(res, World(now=NOW))
    [version] = d.status["versions"]
    assert version["modelUri"] == own  # what the run made stays
    assert version["promotion"] == {
        "step": 500,
        "modelUri": CHECKPOINT.format(uid=UID, step=500),
        "automaticStep": 750,
    }
    assert [(e.type, e.reason) for e in d.events] == [("Normal", "CheckpointPromoted")]
    assert "version 1: its model is step 500's LoRA (the automatic choice: step 750)" in d.events[0].message
    res = apply(res, d)
    assert decide(res, World(now=NOW)).events == []  # said once
    state = lora_state(body(res))
    assert state.latest_model_uri == CHECKPOINT.format(uid=UID, step=500)
    assert dict(state.model_uris)[1] == CHECKPOINT.format(uid=UID, step=500)

    # an ImageGeneration with a loraRef to it gets the checkpoint's LoRA
    image = resource("ImageGeneration", model="flux-lora", loras=LORA_REF)
    made = decide(image, World(now=NOW, loras={"style": replace(state, name="style")}))
    assert made.job is not None and made.job.loras[0].uri == CHECKPOINT.format(uid=UID, step=500)

    # the annotation removed: back to the automatic choice, said once
    back = decide(replace(res, annotations={}), World(now=NOW))
    assert "promotion" not in back.status["versions"][0]
    assert [e.message for e in back.events] == ["version 1: back to its automatic choice"]


def test_an_annotation_that_cannot_be_followed_is_said_and_the_rest_holds() -> None:
    res = annotated(trained(), json.dumps({"1": 400, "7": 500}))
    d = decide(res, World(now=NOW))
    assert "promotion" not in d.status["versions"][0]
    problem = d.status["promotionProblem"]
    assert "version 1 has no scored checkpoint 400 (scored: 250, 500, 750)" in problem
    assert "version 7 is not listed in the status" in problem
    assert [(e.type, e.reason) for e in d.events] == [("Warning", "PromotionRefused")]
    res = apply(res, d)
    assert decide(res, World(now=NOW)).events == []
    broken = decide(annotated(res, "500"), World(now=NOW))
    assert "is not a JSON object of version to step" in broken.status["promotionProblem"]
    fixed = decide(annotated(res, json.dumps({"1": 250})), World(now=NOW))
    assert "promotionProblem" not in fixed.status and fixed.status["versions"][0]["promotion"]["step"] == 250


def test_an_entry_naming_who_chose_is_kept_in_the_status() -> None:
    """The HTTP API's entry (issue 36): {"step", "by", "at", "note"}; the operator keeps who chose,
    when and why in status.versions[].promotion (as a laptop's promotion records them), and a
    loraRef resolves as with a plain step. A malformed entry is said as any."""
    entry = {"step": 500, "by": "alice", "at": "2026-11-24T16:00:00Z", "note": "sharper eyes"}
    res = annotated(trained(), json.dumps({"1": entry}))
    d = decide(res, World(now=NOW))
    assert d.status["versions"][0]["promotion"] == {
        "step": 500,
        "modelUri": CHECKPOINT.format(uid=UID, step=500),
        "automaticStep": 750,
        "by": "alice",
        "at": "2026-11-24T16:00:00Z",
        "note": "sharper eyes",
    }
    assert [(e.type, e.reason) for e in d.events] == [("Normal", "CheckpointPromoted")]
    assert lora_state(body(apply(res, d))).latest_model_uri == CHECKPOINT.format(uid=UID, step=500)
    for bad in ({"1": {"by": "alice"}}, {"1": True}, {"1": 500.5}):
        refused = decide(annotated(trained(), json.dumps(bad)), World(now=NOW))
        assert "is not a JSON object of version to step" in refused.status["promotionProblem"]
        assert "promotion" not in refused.status["versions"][0]
