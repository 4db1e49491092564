"""What stopping a LoRA training now, or training on from one of its versions, asks of its record
(docs/cluster-training.md#stopping-early, #continuing-a-training): pure functions over a catalog
record, which the HTTP API's routes (httpapi/routes/training.py) and `contentgen assets stop` and
`continue` share, so that both say the same in the same words.

- `stop_plan`: the training under way (the record's latestRun.training, as its worker last
  reported it) and the checkpoint a stop keeps: the best scored so far, or none (the run then ends
  Failed, StoppedBeforeCheckpoint). On a laptop a run its record shows Running that no process
  holds (killed) is not stopped (`unheld` says why): nothing would read the stop.
- `continued_spec`: the record's spec going on from version N for `steps` more steps
  (spec.training.continueFrom), refused where the version kept no training state to go on from.
- `ask_local_stop` and `local_stop_asked`: on a laptop a stop is asked of a run through a file in
  its work folder, `{work dir}/{uid}/stop-v{version}` (JSON: stop, by, at), which the HTTP API of
  this machine (`contentgen api --local`) and `contentgen assets stop` write and the run's trainer
  reads between steps, as a cluster's worker reads its resource's contentgen.io/stop: one channel
  for a run of the API's process and a `contentgen run` in another terminal. Named by the version,
  so that a stop asked of one run never stops the next.

Refusals are NotNow (nothing to stop) and NotContinuable, their message starting with the field
they are about (`version:`), as pipeline/likeness/promote.NotPromotable's do."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from contentgen.api.lora import KEEP_BEST, STOP_ANNOTATION
from contentgen.api.providers import provider_entry
from contentgen.catalog.kinds import makes_loras
from contentgen.catalog.migrate import upgrade
from contentgen.errors import InvalidInput


class NotALora(InvalidInput):
    """The record is not a LoraTraining's: nothing to stop or go on from."""


class NotNow(InvalidInput):
    """No training of the record is under way to stop."""


class NotContinuable(InvalidInput):
    """The version cannot be gone on from; the message says why (`version: ...`)."""


@dataclass(frozen=True)
class Kept:
    """The checkpoint a stop keeps as the version's model."""

    step: int
    verdict: str
    median: float | None

    def wire(self) -> dict[str, Any]:
        return {"step": self.step, "verdict": self.verdict, "median": self.median}


@dataclass(frozen=True)
class StopPlan:
    version: int  # the version the stopped run makes
    step: int  # the last step trained, as last reported
    steps: int  # where it would have ended
    keeps: Kept | None  # None: nothing scored yet
    message: str


def lora_record(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` in the current shape, or NotALora."""
    doc = upgrade(doc)
    if not makes_loras(doc.get("kind")):
        raise NotALora(
            f"{doc.get('name')!r} is a {doc.get('kind')}: only a LoraTraining's training stops or goes on"
        )
    return doc


def kept(training: dict[str, Any]) -> Kept | None:
    """The checkpoint a stop keeps: the worker's best so far (`bestStep`), among those it scored."""
    best = training.get("bestStep")
    point = next((p for p in training.get("checkpoints") or [] if p.get("step") == best), None)
    if point is None:
        return None
    return Kept(int(point["step"]), str(point.get("verdict") or ""), point.get("median"))


def stop_plan(doc: dict[str, Any]) -> StopPlan:
    """What stopping `doc`'s training now keeps, in words; NotNow where none runs."""
    doc = lora_record(doc)
    run = doc.get("latestRun") or {}
    name, version = f"{doc['namespace']}/{doc['name']}", int(run.get("version") or 0)
    if run.get("phase") != "Running":
        hint = {
            "Pending": ": cancel a run that waits instead (contentgen's cancel, or delete the resource)",
            "Interrupted": f" (the same `contentgen run` resumes v{version})",
        }.get(str(run.get("phase")), "")
        raise NotNow(
            f"{name}: its latest run (v{version}) is {run.get('phase')}; there is no training under way to "
            f"stop{hint}"
        )
    training = run.get("training") or {}
    step, steps = int(training.get("step") or 0), int(training.get("steps") or 0)
    keeps = kept(training)
    if keeps is None:
        message = (
            f"no checkpoint of v{version} has been scored yet (step {step} of {steps}): stopping now ends "
            "the run Failed (StoppedBeforeCheckpoint), with nothing to keep; the steps it ran are billed"
        )
    else:
        median = "" if keeps.median is None else f", median {keeps.median:.2f}"
        message = (
            f"stops v{version} at its next step (step {step} of {steps} so far) and keeps checkpoint "
            f"{keeps.step} ({keeps.verdict}{median}), the best scored so far, as its model; billed for the "
            f"steps it ran, {max(steps - step, 0)} steps not run"
        )
    return StopPlan(version, step, steps, keeps, message)


def unheld(doc: dict[str, Any], plan: StopPlan) -> str:
    """Why a laptop's run that its record shows Running cannot be stopped: no process on this
    machine holds it (pipeline/local_run.RunLock); nothing is asked or changed."""
    return (
        f"{doc['namespace']}/{doc['name']}: its record shows v{plan.version} Running (step {plan.step} of "
        f"{plan.steps}), but no process on this machine runs it (it was killed, or the machine went "
        "down): there is nothing to stop, and nothing was changed; the same `contentgen run` resumes it "
        "from its newest stored checkpoint"
    )


def stop_command(doc: dict[str, Any]) -> str:
    """The kubectl command that stops the record's LoraTraining in a cluster."""
    return (
        f"kubectl annotate -n {doc.get('namespace')} loratraining/{doc.get('name')} "
        f"{STOP_ANNOTATION}={KEEP_BEST} --overwrite"
    )


def continued_spec(doc: dict[str, Any], version: int, steps: int, step: int | None = None) -> dict[str, Any]:
    """The record's spec going on from `version` (from its checkpoint `step`, where given) for
    `steps` more steps; NotContinuable for a version it does not have (`version:`) or one that kept
    no training state."""
    doc = lora_record(doc)
    continuable(doc, version)
    spec = dict(doc.get("spec") or {})
    going_on: dict[str, Any] = {"version": version}
    if step is not None:
        going_on["step"] = step
    spec["training"] = {**(spec.get("training") or {}), "continueFrom": going_on, "steps": steps}
    return spec


def continuable(doc: dict[str, Any], version: int) -> None:
    """NotContinuable where the record (a LoRA's, current shape) has no version `version` or it kept
    no training state: said before anything runs (a continue, a `contentgen run` of a spec whose
    training.continueFrom names it)."""
    entry = next((v for v in doc.get("versions") or [] if int(v.get("version") or 0) == version), None)
    if entry is None:
        have = ", ".join(f"v{v['version']}" for v in doc.get("versions") or []) or "none"
        raise NotContinuable(f"version: {doc['name']} has no usable version {version} (usable: {have})")
    if not entry.get("stateUri"):
        raise NotContinuable(_stateless(doc, entry))


def _stateless(doc: dict[str, Any], entry: dict[str, Any]) -> str:
    """Why a version without a training state cannot be gone on from, and what to do instead: go on
    from a version that kept one, or train a new one."""
    trained_by = str(entry.get("provider") or doc.get("provider") or "")
    why = (
        f"its trainer, {trained_by}, keeps none: provider cluster keeps one with each version, offline "
        "simulates it"
        if not provider_entry(trained_by).trains_live
        else "its training stored none"
    )
    kept = [int(v["version"]) for v in doc.get("versions") or [] if v.get("stateUri")]
    instead = f"go on from v{kept[-1]}, which kept one" if kept else "train a new version (`contentgen run`)"
    version = f"v{entry['version']} of {doc['name']}"
    return f"version: {version} kept no training state to go on from ({why}); {instead}"


def continue_message(doc: dict[str, Any], version: int, steps: int, usd: float) -> str:
    """What going on from `version` does and is estimated to cost, in one line."""
    return (
        f"trains {doc['namespace']}/{doc['name']} on from v{version} for {steps} more steps, as a new "
        f"version (v{version} stays as it is); estimated ${usd:.4f}"
    )


def continue_command(doc: dict[str, Any], version: int, steps: int) -> str:
    """The kubectl command that sets the record's LoraTraining going on from `version`."""
    patch = f'{{"spec": {{"training": {{"continueFrom": {{"version": {version}}}, "steps": {steps}}}}}}}'
    return f"kubectl patch -n {doc.get('namespace')} loratraining/{doc.get('name')} --type merge -p '{patch}'"


def stop_file(work_dir: Path, uid: str, version: int) -> Path:
    """Where a laptop's run of version `version` of `uid` finds a stop asked of it."""
    return Path(work_dir) / uid / f"stop-v{version}"


def ask_local_stop(work_dir: Path, uid: str, version: int, *, by: str, at: datetime) -> Path:
    """Ask the laptop's run of version `version` of `uid` to stop and keep its best checkpoint: its
    stop file, written whole (a reader never sees half of it); asking again changes nothing."""
    path = stop_file(work_dir, uid, version)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps({"stop": KEEP_BEST, "by": by, "at": at.isoformat()}))
    partial.replace(path)
    return path


def local_stop_asked(work_dir: Path, uid: str, version: int) -> dict[str, Any] | None:
    """The stop asked of the laptop's run of version `version` of `uid` ({stop, by, at}), or None."""
    try:
        asked = json.loads(stop_file(work_dir, uid, version).read_text())
    except (OSError, ValueError):
        return None
    return asked if isinstance(asked, dict) and asked.get("stop") == KEEP_BEST else None
