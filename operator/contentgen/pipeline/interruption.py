"""A laptop's run stopped by Ctrl-C or SIGTERM (`contentgen run`): its record ends at once,
`Interrupted`, saying where the run was and what it keeps, and the next `contentgen run` of the same
spec resumes it as the same version (pipeline/local_run.py): a training from its newest stored
checkpoint, with that checkpoint's score, its earlier steps not trained again.

`interruption` says it in words (pure); `kept_checkpoints` reads what a version's training stored
whole (a LoRA and the state a training goes on from); `record_interrupted` writes the record."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from contentgen.api import SpecSnapshot, format_time
from contentgen.catalog.document import INTERRUPTED, catalog_document
from contentgen.catalog.resource import ResourceState
from contentgen.pricing import PriceTable
from contentgen.store import ObjectStore, keys

_STATE = re.compile(r"step-(\d+)\.(?:state\.json|pt)$")  # offline's simulated state, the cluster's


def kept_checkpoints(store: ObjectStore, owner: str, uid: str, version: int) -> list[int]:
    """The steps whose training state version `version`'s training stored, oldest first: where a
    resumed run goes on from (its newest)."""
    folder = keys.lora_version(owner, uid, version) + "checkpoints/"
    found = (_STATE.search(info.key) for info in store.list(folder))
    return sorted({int(match.group(1)) for match in found if match})


def scored_checkpoint(store: ObjectStore, owner: str, uid: str, version: int, step: int) -> dict[str, Any]:
    """Checkpoint `step`'s score as the watch stored it ({step, verdict, median}); {} where none is."""
    key = keys.lora_version(owner, uid, version) + f"likeness/step-{step:06d}/likeness.json"
    if not store.exists(key):
        return {}
    report = json.loads(store.get_bytes(key))
    return {"step": step, "verdict": report.get("verdict"), "median": report.get("median")}


def interruption(
    how: str,
    run: dict[str, Any],
    training: dict[str, Any] | None,
    kept: list[int],
    stored_score: dict[str, Any] | None = None,
) -> str:
    """Where an interrupted run was and what it keeps, in one sentence: `how` names the signal
    ("Ctrl-C", "SIGTERM"); `run` is its latest run as last recorded (stage, progress), `training`
    its training as last reported (step, steps, scored checkpoints), `kept` the steps stored, and
    `stored_score` the newest one's score where it was stored before it was reported."""
    version = run.get("version")
    again = f"the same `contentgen run` resumes it as v{version}"
    if training and training.get("steps"):
        step = max(int(training.get("step") or 0), *kept) if kept else int(training.get("step") or 0)
        where = f"at step {step} of {training['steps']} (train)"
        if not kept:
            return f"interrupted by {how} {where}, before its first checkpoint: nothing is kept; {again}"
        newest = kept[-1]
        scored = {int(p["step"]): p for p in training.get("checkpoints") or [] if p.get("step")}
        point = scored.get(newest) or stored_score or None
        score = ""
        if point is not None:
            median = "" if point.get("median") is None else f", median {float(point['median']):.2f}"
            score = f" (scored {point.get('verdict')}{median})"
        stored = f"checkpoint {newest}{score} is stored"
        if len(kept) > 1:
            stored = f"checkpoints {', '.join(map(str, kept[:-1]))} and {stored}"
        going_on = f"{again} from step {newest}, not training its steps again"
        return f"interrupted by {how} {where}: {stored}; {going_on}"
    where = f"in stage {run.get('stage') or 'its start'} ({run.get('progress') or 0} %)"
    return f"interrupted by {how} {where}; {again}, adopting what it paid for"


def record_interrupted(
    catalog: Any,
    snapshot: SpecSnapshot,
    started: datetime,
    at: datetime,
    how: str,
    training: dict[str, Any] | None,
    store: ObjectStore,
    prices: PriceTable,
) -> str:
    """The run's record ended Interrupted (its stage and percent as last recorded, its training as
    last reported), its cost left at the estimate (the resumed run settles it, once); the message."""
    from .local_run import ORIGIN, run_status

    owner, uid, version = snapshot.owner, snapshot.uid, snapshot.version
    training = dict(training) if training is not None else None
    kept = kept_checkpoints(store, owner, uid, version) if training else []
    newest = scored_checkpoint(store, owner, uid, version, kept[-1]) if kept else {}
    said: list[str] = []

    def change(previous: dict[str, Any] | None) -> dict[str, Any]:
        run = dict((previous or {}).get("latestRun") or {})
        if int(run.get("version") or 0) != snapshot.version:
            run = {"version": snapshot.version}
        message = interruption(how, run, training, kept, newest)
        said.append(message)
        if training is not None:  # the step it reached: the newest checkpoint's, stored as it was
            training["step"] = max(int(training.get("step") or 0), *kept) if kept else training.get("step")
        status = run_status(snapshot, started, previous, prices)
        status.update(
            phase=INTERRUPTED,
            progress=int(run.get("progress") or 0),
            stage=str(run.get("stage") or ""),
            message=message,
            completedAt=format_time(at),
            conditions=[{"type": "Ready", "status": "False", "reason": INTERRUPTED, "message": message}],
        )
        if training is not None:
            status["training"] = training
        created = (previous or {}).get("createdAt") or started
        state = ResourceState.of_snapshot(snapshot, status, created, {})
        return catalog_document(state, now=at, origin=ORIGIN, previous=previous, revive=True)

    catalog.modify(snapshot.uid, change)
    return said[-1] if said else interruption(how, {"version": version}, training, kept, newest)
