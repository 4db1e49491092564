"""docs/likeness.md#gates' Flux and Argo CD health checks, as written there, evaluated on the
statuses the operator's decisions write: Flux's CEL by a CEL implementation (cel-python), Argo CD's
Lua by Lua 5.1 (lupa; Argo CD runs gopher-lua, a Lua 5.1), the object handed to it as Argo CD hands
it, a table made from the resource's JSON. In progress (Progressing) while the run goes, current
(Healthy) once the version is good, failed (Degraded, with the condition's message) at once on every
other outcome (poor, no faces, a failed run), and neither for a new generation until its own run
ends. The conditions' messages, and a LoraEvaluation's status message, say the reasons the one-line
summary prints, cut where they are many."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import celpy
import lupa.lua51
import pytest
import yaml

from contentgen.api import EvaluationVersion, Likeness, RunFailure, RunResult
from contentgen.api.run import REASONS_LIMIT
from contentgen.controller.decide import World, decide
from contentgen.tables import likeness_summary
from tests.conftest import ROOT
from tests.harness.controller import NOW, apply, job, lora_result, resource, trained
from tests.harness.controller import evaluation as lora_evaluation


def flux_check() -> dict[str, str]:
    """The healthCheckExprs entry the docs show for a LoraTraining."""
    page = (ROOT / "docs" / "likeness.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", page, re.S) if "healthCheckExprs" in b)
    [check] = yaml.safe_load(block)["spec"]["healthCheckExprs"]
    assert (check["apiVersion"], check["kind"]) == ("contentgen.io/v1alpha1", "LoraTraining")
    return {k: check[k] for k in ("current", "failed")}


def health(status: dict[str, Any], generation: int) -> str:
    """What Flux makes of the object: current, failed, or in progress (neither)."""
    env = celpy.Environment()
    obj = celpy.json_to_cel({"status": status, "metadata": {"generation": generation}})
    found = {name: bool(env.program(env.compile(expr)).evaluate(obj)) for name, expr in flux_check().items()}
    assert not (found["current"] and found["failed"])
    verdict = "current" if found["current"] else "failed" if found["failed"] else "in progress"
    assert argo(status, generation)[0] == ARGO[verdict]  # the two checks agree on every status
    return verdict


ARGO = {"current": "Healthy", "failed": "Degraded", "in progress": "Progressing"}


def argo_check() -> str:
    """The Lua health check the docs show in argocd-cm for a LoraTraining."""
    page = (ROOT / "docs" / "likeness.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", page, re.S) if "argocd" in b or "hs = " in b)
    data = yaml.safe_load(block)["data"]
    return str(data["resource.customizations.health.contentgen.io_LoraTraining"])


def argo(status: dict[str, Any], generation: int) -> tuple[str, str]:
    """What Argo CD makes of the object: its health status and message."""
    lua = lupa.lua51.LuaRuntime(unpack_returned_tuples=True)
    # the resource as the API server serves it: JSON (timestamps as strings)
    resource = json.loads(json.dumps({"status": status, "metadata": {"generation": generation}}, default=str))

    def table(value: Any) -> Any:
        if isinstance(value, dict):
            return lua.table_from({k: table(v) for k, v in value.items()})
        if isinstance(value, list):
            return lua.table_from([table(v) for v in value])  # a sequence, from 1 as ipairs reads it
        return value

    lua.globals().obj = table(resource)
    hs = lua.execute(argo_check())
    assert hs["status"] in ARGO.values(), hs["status"]
    return str(hs["status"]), str(hs["message"])


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [("good", "current"), ("poor", "failed"), ("no-faces", "failed"), ("skipped", "failed")],
)
def test_the_flux_check_resolves_on_every_verdict(verdict: str, expected: str) -> None:
    res = apply(resource(), decide(resource(), World(now=NOW)))
    assert health(res.status, 1) == "in progress"
    made = lora_result(1, 1)
    assert made.lora is not None
    made.lora.likeness = Likeness(verdict=verdict, reasons=["why"])  # type: ignore[arg-type]
    done = decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=made))
    assert health(done.status, 1) == expected
    if expected == "failed":  # Argo CD shows why, in the condition's words
        assert argo(done.status, 1)[1] == message_of(done.status, "LikenessEvaluated")


def test_the_flux_check_fails_on_a_failed_run_and_waits_for_a_new_generation() -> None:
    res = apply(resource(), decide(resource(), World(now=NOW)))
    good = lora_result(1, 1)
    assert good.lora is not None
    good.lora.likeness = Likeness(verdict="good", median=0.7)
    res = apply(res, decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=good)))
    assert health(res.status, 1) == "current"
    assert health(res.status, 2) == "in progress"  # a spec edit the operator has not seen yet
    res = replace(res, generation=2)
    res = apply(res, decide(res, World(now=NOW, jobs=(job(complete=True),))))
    assert health(res.status, 2) == "in progress"
    failed = decide(
        res,
        World(
            now=NOW,
            jobs=(job(complete=True), job(2, version=2, failed_reason="PodFailurePolicy")),
            outcome=RunFailure(reason="InvalidInput", message="bad"),
        ),
    )
    assert health(failed.status, 2) == "failed"


GOOD_REASONS = [
    "the generated faces' median similarity 0.68 is at or over the threshold 0.31: they look like "
    "the subject",
    "the LoRA raises it by +0.56 over the base model alone",
    "in 0% of the two-person images the other person looks like the subject",
    "0 of 6 faces are copies of a training image (the closest 0.71, copies from 0.79)",
]
POOR_REASONS = [
    "the generated faces' median similarity 0.10 is under the threshold 0.31: they do not look "
    "like the subject",
    "the LoRA moved the faces toward another person: they look like each other (median similarity "
    "1.00, 0.07 without the LoRA) but not like the subject",
]


def message_of(status: dict[str, Any], type_: str) -> str:
    return str(next(c for c in status["conditions"] if c["type"] == type_)["message"])


@pytest.mark.parametrize(("verdict", "reasons"), [("good", GOOD_REASONS), ("poor", POOR_REASONS)])
def test_the_conditions_say_the_summarys_reasons(verdict: str, reasons: list[str]) -> None:
    """`LikenessPoor` (False on a good version too) and `LikenessEvaluated` carry the reasons that
    `contentgen assets` prints after the verdict, not only "looks like the person"."""
    res = apply(resource(), decide(resource(), World(now=NOW)))
    made = lora_result(1, 1)
    assert made.lora is not None
    report = {"verdict": verdict, "reasons": reasons, "median": 0.5}
    made.lora.likeness = Likeness.model_validate(report)
    status = decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=made)).status
    said = "; ".join(reasons)
    assert said in likeness_summary(status["likeness"])
    for type_ in ("LikenessPoor", "LikenessEvaluated"):
        assert said in message_of(status, type_), type_
    if verdict == "good":
        assert message_of(status, "LikenessPoor") == f"version 1 looks like the person ({said})"


def test_reasons_in_a_message_are_bounded() -> None:
    """Many long reasons are cut, so that the condition's message stays short; all of them stay in
    status.likeness.reasons."""
    res = apply(resource(), decide(resource(), World(now=NOW)))
    made = lora_result(1, 1)
    assert made.lora is not None
    many = [f"reason {n}: " + "x" * 150 for n in range(10)]
    made.lora.likeness = Likeness(verdict="good", reasons=many, median=0.5)
    status = decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=made)).status
    message = message_of(status, "LikenessPoor")
    assert message.startswith(f"version 1 looks like the person ({many[0]}; {many[1]}")
    assert message.endswith("…)")
    assert len(message) <= len("version 1 looks like the person ()") + REASONS_LIMIT
    assert status["likeness"]["reasons"] == many


@pytest.mark.parametrize(
    ("verdict", "median", "reasons", "said"),
    [
        ("poor", 0.1, POOR_REASONS, "poor, median 0.100; " + "; ".join(POOR_REASONS)),
        ("good", 0.68, GOOD_REASONS, "good, median 0.680; " + "; ".join(GOOD_REASONS)),
        ("no-faces", None, ["no face in any of the 12 generated images: nothing to compare"], None),
    ],
)
def test_a_loraevaluations_message_says_why(
    verdict: str, median: float | None, reasons: list[str], said: str | None
) -> None:
    """The LoraEvaluation's status message gives its verdict's reasons as the summary does."""
    res = lora_evaluation()
    started = decide(res, World(now=NOW, loras={"avatar": trained("fal")}))
    assert started.job is not None and started.job.lora is not None
    report = Likeness(verdict=verdict, reasons=reasons, median=median)  # type: ignore[arg-type]
    outcome = RunResult(
        kind="LoraEvaluation",
        provider="fal",
        generation=1,
        version=1,
        usage=[],
        evaluation=EvaluationVersion(
            version=1, created_at=NOW, lora=started.job.lora, evaluation=2, likeness=report
        ),
        evaluation_record={"evaluation": 2, "version": 3},
    )
    running = apply(res, started)
    ended = World(now=NOW, loras={}, jobs=(job(complete=True, succeeded=1),), outcome=outcome)
    done = decide(running, ended)
    expected = said or f"{verdict} ({reasons[0]})"
    head = "evaluated version 3 of avatar again as its evaluation e2"
    assert done.status["message"] == f"{head}: {expected}"
    assert "; ".join(reasons) in likeness_summary(done.status["likeness"])
