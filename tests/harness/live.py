"""A LoRA training under way as the catalog records it from its status while the worker reports
between steps (status.training: the step, the loss, each checkpoint's likeness as it is scored),
for the live view's tests (the web UI's LoRA page, `contentgen assets get -w`, the stream)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from contentgen.api import format_time
from contentgen.catalog import ResourceState, catalog_document
from tests.catalog.factory import T0, lora_doc

STEPS = 1000
CHECKPOINT_EVERY = 250


def checkpoint(
    uid: str,
    step: int,
    verdict: str,
    median: float | None,
    *,
    chosen: bool = False,
    folder: str = "",
    clip_frames: int = 0,
) -> dict[str, Any]:
    """One scored checkpoint as the worker reports it (api/lora CheckpointLikeness, on the wire);
    its files under `folder` (the version's, as a URI ending in /)."""
    folder = folder or f"file:///store/loras/alice/{uid}/v2/"
    point: dict[str, Any] = {
        "step": step,
        "modelUri": f"{folder}checkpoints/step-{step:06d}.safetensors",
        "verdict": verdict,
        "gridUri": f"{folder}likeness/step-{step:06d}/likeness-grid.jpg",
        "reportUri": f"{folder}likeness/step-{step:06d}/likeness.json",
        "reasons": [f"step {step} as measured"],
    }
    if median is not None:
        point["median"] = median
    if chosen:
        point["chosen"] = True
    if clip_frames:  # a video LoRA's: each picture a clip's frames
        point["clipFrames"] = clip_frames
    return point


def training(
    uid: str,
    step: int,
    scored: list[tuple[int, str, float | None]],
    *,
    steps: int = STEPS,
    at: datetime,
    seconds_per_step: float = 1.5,
    stop_asked: str = "",
    stop: dict[str, Any] | None = None,
    folder: str = "",
    clip_frames: int = 0,
) -> dict[str, Any]:
    """status.training of version 2 at `step`, its checkpoints `scored` ((step, verdict, median)),
    the best so far the one with the highest median."""
    measured = [s for s in scored if s[2] is not None]
    best = max(measured, key=lambda s: s[2] or 0.0)[0] if measured else None
    loss = [{"step": s, "loss": round(0.9 * 0.996**s + 0.1, 4)} for s in range(10, step + 1, 10)][-64:]
    left = (steps - step) * seconds_per_step
    report: dict[str, Any] = {
        "version": 2,
        "step": step,
        "steps": steps,
        "firstStep": 0,
        "secondsPerStep": seconds_per_step,
        "etaSeconds": left,
        "loss": loss,
        "checkpoints": [
            checkpoint(uid, s, v, m, chosen=s == best, folder=folder, clip_frames=clip_frames)
            for s, v, m in scored
        ],
        "updatedAt": format_time(at),
    }
    if best is not None:
        report["bestStep"] = best
    if stop_asked:
        report["stopAsked"] = stop_asked
    if stop is not None:
        report["stop"] = stop
    return report


def running(
    uid: str,
    name: str,
    report: dict[str, Any] | None,
    *,
    previous: dict[str, Any] | None = None,
    at: datetime | None = None,
    progress: int = 50,
    owner: str = "alice",
) -> dict[str, Any]:
    """`owner`'s LoraTraining `name` (version 1 made) training version 2, its status's training
    `report` (None: not started yet), as the operator writes the record."""
    base = previous or lora_doc(uid, name=name, versions=1, owner=owner)
    moment = at or T0 + timedelta(hours=1)
    status: dict[str, Any] = {
        "phase": "Running",
        "progress": progress,
        "stage": "train",
        "runVersion": 2,
        "observedGeneration": 2,
        "latestVersion": 1,
        "startedAt": format_time(T0 + timedelta(minutes=50)),
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "Running", "message": "training",
             "lastTransitionTime": format_time(T0)},
        ],
    }  # fmt: skip
    if report is not None:
        status["training"] = report
    state = ResourceState(
        kind="LoraTraining",
        name=name,
        namespace="default",
        uid=uid,
        generation=2,
        spec={**base["spec"], "training": {"steps": STEPS, "checkpointEvery": CHECKPOINT_EVERY}},
        status=status,
        created_at=T0,
    )
    return catalog_document(state, now=moment, origin="operator", previous=base)
