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
from contentgen.api.kinds.lora_evaluation import KIND as LORA_EVALUATION
from contentgen.api.providers import placeholders
from contentgen.errors import PermanentError
from contentgen.providers import image_generator

from .context import RunContext
from .likeness import reevaluate
from .likeness.plan import Plan
from .progress import Stages

BY = LORA_EVALUATION.kind  # the record's `by`: who asked for it

# the stages in order, and each one's share of the run's progress
STAGES = Stages(("prepare", 5), ("evaluate", 95))


def run_lora_evaluation(ctx: RunContext) -> RunResult:
    spec = _spec(ctx)
    lora = _lora(ctx)
    goal = _target(ctx, spec, lora)
    # this run of this resource, whichever pod runs it
    claimant = f"{ctx.snapshot.uid}/v{ctx.snapshot.version}"
    record = _finished(ctx, goal, claimant)
    if record is None:
        record = _evaluate(ctx, goal, claimant)
    else:  # an earlier attempt stored it and stopped before handing it over: its bill is this run's
        ctx.usage = _usage(record)
    return result(ctx.snapshot.kind, ctx.provider, record, lora, ctx.snapshot.version)


def _spec(ctx: RunContext) -> LoraEvaluationSpec:
    spec = ctx.snapshot.parsed_spec(local=ctx.local)
    assert isinstance(spec, LoraEvaluationSpec)
    return spec


def _lora(ctx: RunContext) -> EvaluatedLora:
    """The LoRA version to evaluate, as the snapshot resolved spec.loraRef."""
    if ctx.snapshot.lora is None:
        raise PermanentError(
            "the spec snapshot names no LoRA version to evaluate: snapshots are made by the operator or "
            "`contentgen run`, which resolve spec.loraRef",
            reason="InvalidSpec",
        )
    return ctx.snapshot.lora


def _target(ctx: RunContext, spec: LoraEvaluationSpec, lora: EvaluatedLora) -> reevaluate.Target:
    return reevaluate.Target(
        uid=lora.uid,
        owner=spec.owner,
        namespace=ctx.snapshot.namespace,
        name=lora.name,
        version=lora.version,
        trigger_word=lora.trigger_word,
        model_uri=lora.model_uri,
        dataset_uri=lora.dataset_uri,
        provider=ctx.provider,
        plan=Plan(spec.evaluation.prompt_set, tuple(spec.evaluation.seeds)),
    )


def _finished(ctx: RunContext, goal: reevaluate.Target, claimant: str) -> dict[str, Any] | None:
    """The record of the evaluation this run claimed and stored already, if it did."""
    with ctx.stage(STAGES, "prepare"):
        return reevaluate.finished_claim(ctx.store, goal, claimant)


def _evaluate(ctx: RunContext, goal: reevaluate.Target, claimant: str) -> dict[str, Any]:
    """The evaluation, its number claimed beside the version, each picture paid once: its record."""
    snap = ctx.snapshot
    number = reevaluate.claim(ctx.store, goal, claimant)
    billed: list[UsageLine] = []
    resource = {"kind": snap.kind, "namespace": snap.namespace, "name": snap.name, "uid": snap.uid}
    with ctx.stage(STAGES, "evaluate") as span, ctx.paying(billed):
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
    return record


def _usage(record: dict[str, Any]) -> list[UsageLine]:
    """What a stored evaluation's record says it was billed."""
    return [UsageLine.model_validate_json(json.dumps(line)) for line in record.get("usage") or []]


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
