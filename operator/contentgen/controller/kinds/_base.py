"""What the controller knows of one kind, declared once in the kind's own module of this package."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..job_defaults import GpuJob, KindDefaults

# (namespace, name) -> {uid: kind name}: the runs waiting for the resource of that name
Waiters = dict[tuple[str, str], dict[str, str]]
# lora_problem(spec): why the kind's model cannot load one of the spec's LoRAs (None: it can)
LoraProblem = Callable[[Mapping[str, Any]], str | None]


def _loads_any(_: Mapping[str, Any]) -> str | None:
    return None


@dataclass(frozen=True)
class ControllerKind:
    kind: str
    # waiters(op): the runs waiting for a resource of this kind, by its name (another kind's
    # reference names it): woken when it changes, is made or goes. None: no reference names it.
    waiters: Callable[[Any], Waiters] | None = None  # given the Operator (state.py)
    # kopf's index of its resources by (namespace, name), beside the one by uid ("" for none)
    by_name: str = ""
    # checkpoints people promote (its annotation) are mirrored into status.versions, with Events
    promotions: bool = False
    # the evaluations people choose as versions' verdicts (its annotation) are mirrored into
    # status.versions, with Events
    verdicts: bool = False
    # the LikenessPoor condition says the newest version's likeness
    likeness: bool = False
    # a person's stop of its run (its annotation, controller/stops.py) is followed and said
    stops: bool = False
    # a status from before runVersion numbered its versions (latestVersion + 1 was the next)
    numbered_before_run_version: bool = False
    # said before its references are waited for (LoraIncompatible)
    lora_problem: LoraProblem = _loads_any
    # how its Jobs run (resources, deadline, retries, work volume), and those of provider cluster on
    # the cluster's GPUs: the operator's settings override them per kind (the chart's jobs, gpu.jobs)
    job: KindDefaults = field(default_factory=KindDefaults)
    gpu_job: GpuJob = field(default_factory=GpuJob)
