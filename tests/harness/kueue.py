"""Kueue's Workloads as the operator reads them: the real Kueue's (v0.19.2, on the local cluster),
recorded by tests/kube/test_kueue_states.py into tests/controller/kueue_workloads.json, one per
state (`recorded`), and a started resource (tests/controller)."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from contentgen.controller.decide import World, decide
from tests.harness.controller import NOW, apply, resource

RECORDING = Path(__file__).resolve().parents[1] / "controller" / "kueue_workloads.json"


@functools.cache
def _recording() -> dict[str, dict[str, Any]]:
    return json.loads(RECORDING.read_text())  # type: ignore[no-any-return]


def states() -> list[str]:
    return sorted(_recording())


def recorded(state: str) -> dict[str, Any]:
    """A copy of the Workload the real Kueue wrote in `state` (test_kueue_states.py says each)."""
    return copy.deepcopy(_recording()[state])


def job_uid(workload: dict[str, Any]) -> str:
    """The uid of the Job the Workload was made for (its controller owner)."""
    (owner,) = [r for r in workload["metadata"]["ownerReferences"] if r.get("controller")]
    return str(owner["uid"])


def condition(workload: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in workload["status"]["conditions"] if c["type"] == kind)


def overlay(
    workload: dict[str, Any], *conditions: tuple[str, str, str, str], **status: Any
) -> dict[str, Any]:
    """A recorded Workload with conditions (type, status, reason, message) set as Kueue's source
    writes them, and `status`'s fields, for the states only a cluster with more than Kueue shows
    (an admission check's controller, a framework that fails to start)."""
    out = copy.deepcopy(workload)
    kept = [c for c in out["status"].get("conditions") or [] if c["type"] not in {k for k, *_ in conditions}]
    for kind, state, reason, message in conditions:
        kept.append(
            {
                "type": kind,
                "status": state,
                "reason": reason,
                "message": message,
                "lastTransitionTime": "2026-11-21T11:59:00Z",
                "observedGeneration": 1,
            }
        )
    out["status"] = {**out["status"], "conditions": kept, **status}
    return out


def started() -> Any:
    res = resource("ImageGeneration", provider="cluster")
    return apply(res, decide(res, World(now=NOW)))
