"""LoraEvaluation: a stored LoRA version evaluated again, without training it again, through the
re-evaluation (likeness/reevaluate.py): its number claimed beside the version (one per run of the
resource: a retried pod resumes it, a finished one is handed over again, never made twice), each
picture paid once (its provider checkpoint under the resource's own `temp/{uid}/`, which its
deletion cancels), the baseline shared. The outputs are the LoRA version's
(loras/{owner}/{uid}/v{n}/likeness/e{k}/); the result carries the evaluation's record, which the
operator (or `contentgen run`) writes into the LoRA version's likeness history."""

from __future__ import annotations

import json
from typing import Any

from contentgen.api import (
    EvaluatedLora,
    EvaluationVersion,
    Likeness,
    LoraEvaluationSpec,
    RunResult,
    UsageLine,
    now,
)
from contentgen.api.providers import placeholders
from contentgen.errors import PermanentError
from contentgen.providers import image_generator

from .context import RunContext
from .likeness import reevaluate
from .likeness.plan import Plan

BY = "LoraEvaluation"  # the record's `by`: who asked for it


def run_lora_evaluation(ctx: RunContext) -> RunResult:
    snap = ctx.snapshot
    spec = snap.parsed_spec(local=ctx.local)
    assert isinstance(spec, LoraEvaluationSpec)
    lora = snap.lora
    if lora is None:
        raise PermanentError(
            "the spec snapshot names no LoRA version to evaluate: snapshots are made by the operator or "
            "`contentgen run`, which resolve spec.loraRef",
            reason="InvalidSpec",
        )
    goal = reevaluate.Target(
        uid=lora.uid,
        owner=spec.owner,
        namespace=snap.namespace,
        name=lora.name,
        version=lora.version,
        trigger_word=lora.trigger_word,
        model_uri=lora.model_uri,
        dataset_uri=lora.dataset_uri,
        provider=ctx.provider,
        plan=Plan(spec.evaluation.prompt_set, tuple(spec.evaluation.seeds)),
    )
    claimant = f"{snap.uid}/v{snap.version}"  # this run of this resource, whichever pod runs it
    with ctx.stage("prepare", 0, 5):
        record = reevaluate.finished_claim(ctx.store, goal, claimant)
    if record is None:
        number = reevaluate.claim(ctx.store, goal, claimant)
        billed: list[UsageLine] = []
        resource = {"kind": snap.kind, "namespace": snap.namespace, "name": snap.name, "uid": snap.uid}
        with ctx.stage("evaluate", 5, 100) as span, ctx.paying(billed):
            record = reevaluate.run(
                image_generator(ctx.provider),
                ctx.store,
                goal,
                number,
                ctx.scratch("evaluation"),
                span,
                billed,
                presign_seconds=ctx.settings.presign_seconds,
                prices=ctx.settings.prices,
                by=BY,
                at=now(),
                checkpoints=snap.uid,
                resource=resource,
                stamp=lambda lines: ctx.priced_usage(lines) or [],
            )
        ctx.usage = billed
    else:  # an earlier attempt stored it and stopped before handing it over: its bill is this run's
        ctx.usage = [UsageLine.model_validate_json(json.dumps(line)) for line in record.get("usage") or []]
    return result(snap.kind, ctx.provider, record, lora, snap.version)


def result(kind: str, provider: str, record: dict[str, Any], lora: EvaluatedLora, version: int) -> RunResult:
    """The run's result: the evaluation as the resource's version, and its record for the LoRA's."""
    uris = [a["uri"] for a in record.get("artifacts") or []]
    written = next((u for u in uris if u.endswith("/" + reevaluate.RECORD_FILE)), "")
    evaluation = EvaluationVersion(
        version=version,
        provider=provider,
        placeholder=placeholders(provider),
        created_at=now(),
        lora=lora,
        evaluation=int(record["evaluation"]),
        likeness=Likeness.model_validate_json(json.dumps(record["likeness"])),
        record_uri=written,
    )
    return RunResult(
        kind=kind,
        provider=provider,
        placeholder=placeholders(provider),
        evaluation=evaluation,
        evaluation_record=record,
    )
