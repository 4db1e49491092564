"""A person's stop of a LoraTraining's run, in a cluster (docs/cluster-training.md#stopping-early):
the annotation `contentgen.io/stop: keep-best`, which the run's worker reads from its status
patches' answers and follows at its next step boundary (pipeline/live.py). The operator only says
what becomes of it (pure):

- another value is refused: a Warning Event `StopRefused` and `status.stopProblem`, as a bad
  `promoted-checkpoints` is; nothing is stopped;
- once no run goes (the status Succeeded or Failed), the annotation is removed, so that it never
  stops a later run: silently where the run it stopped has ended (its version's `stopped`, or
  Failed `StoppedBeforeCheckpoint`, say so, with `TrainingStopped`'s Event), with a Warning
  `StopRefused` where there was nothing to stop;
- a version made by a training that stopped early (a plateau, a budget, a person) is said with a
  Normal Event `TrainingStopped`: at which step, why, and what it saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contentgen.api import Phase
from contentgen.api.common import CommonStatus
from contentgen.api.lora import KEEP_BEST, STOP_ANNOTATION, STOP_VALUES, LoraTrainingStatus
from contentgen.api.versions import version_entry

ENDED = (Phase.SUCCEEDED.value, Phase.FAILED.value)


@dataclass(frozen=True)
class Followed:
    """What the operator does with the annotation now: the Events, and whether it goes."""

    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    remove: bool = False


def followed(status: dict[str, Any], was: CommonStatus, annotations: Mapping[str, str]) -> Followed:
    """The stop annotation against the status about to be written (`status`, whose stopProblem this
    sets or clears) and the one before (`was`)."""
    value = annotations.get(STOP_ANNOTATION)
    problem = ""
    if value is not None and value not in STOP_VALUES:
        problem = (
            f"annotation {STOP_ANNOTATION}: {value[:80]!r} is not a stop this operator knows: write "
            f"{KEEP_BEST} (stop the run at its next step and keep its best checkpoint so far), or remove it"
        )
    events: list[tuple[str, str, str]] = []
    if problem != (was.stop_problem if isinstance(was, LoraTrainingStatus) else ""):
        if problem:
            events.append(("Warning", "StopRefused", problem))
            status["stopProblem"] = problem
        else:
            status.pop("stopProblem", None)
    if value != KEEP_BEST or status.get("phase") not in ENDED:
        return Followed(events)
    if not _stopped_by_it(status):
        events.append(
            (
                "Warning",
                "StopRefused",
                f"annotation {STOP_ANNOTATION}={KEEP_BEST}: no run was going to stop (the latest ended "
                f"{status.get('phase')}); it is removed, so that it stops no later run",
            )
        )
    return Followed(events, remove=True)


def _stopped_by_it(status: dict[str, Any]) -> bool:
    """Whether the run that ended was a person's stop: its version says so, or it failed for want of
    a checkpoint to keep."""
    reason = next((c.get("reason") for c in status.get("conditions") or [] if c.get("type") == "Ready"), "")
    if status.get("phase") == Phase.FAILED.value:
        return reason == "StoppedBeforeCheckpoint"
    newest = version_entry(status, status.get("latestVersion")) or {}
    return (newest.get("stopped") or {}).get("how") == "asked"


def stopped_event(decided: CommonStatus) -> str:
    """What the newest version's early stop says ("" where every step ran, or the kind trains
    nothing): the `TrainingStopped` Event's message."""
    if not isinstance(decided, LoraTrainingStatus):
        return ""
    newest = next((v for v in decided.versions if v.version == decided.latest_version), None)
    stop = newest.stopped if newest is not None else None
    if newest is None or stop is None:
        return ""
    saved = f"{stop.steps_saved} steps not run"
    if stop.gpu_seconds_saved is not None:
        saved += f", {stop.gpu_seconds_saved:.0f} GPU-seconds"
    if stop.saved_usd is not None:
        saved += f", ${stop.saved_usd:.2f}"
    model = (
        f"step {newest.chosen_step}'s checkpoint"
        if newest.chosen_step is not None
        else "its newest checkpoint"
    )
    return (
        f"version {newest.version} stopped after step {stop.step} of {stop.planned_steps} ({stop.how}: "
        f"{stop.why}); its model is {model}; saved {saved}"
    )[:1024]
