"""docs/likeness.md#gates' Flux health check, as written there, evaluated by a CEL implementation
(cel-python) on the statuses the operator's decisions write: in progress while the run goes, current
once the version is good, failed at once on every other outcome (poor, no faces, a failed run), and
neither for a new generation until its own run ends. (The Argo CD Lua check beside it reads the same
condition; no Lua runs here.)"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import celpy
import pytest
import yaml

from contentgen.api import Likeness, RunFailure
from contentgen.controller.reconcile import World, decide
from tests.conftest import ROOT
from tests.controller.test_reconcile import NOW, apply, job, lora_result, resource


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
    return "current" if found["current"] else "failed" if found["failed"] else "in progress"


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
