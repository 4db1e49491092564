"""`contentgen assets get -w | stop | continue` (issue 67): a LoRA training followed as it goes,
stopped now keeping its best checkpoint so far, and trained on from a version
(docs/likeness.md#watching-stopping-and-continuing-a-training).

- `get REF -w` reads the catalog every --every seconds and prints what is new: the run's stage,
  step, loss and time left, each checkpoint as it is scored (its verdict, median and grid), a stop
  asked, and the end (exit 0 when the run succeeded, 1 otherwise). `-o json`: one JSON object per
  change.
- `stop REF` and `continue REF --steps N` say first what they keep or run (pipeline/
  training_controls.py, the HTTP API's words). A laptop's training stops through its run's stop
  file and goes on as a local run here, as `contentgen run` of the changed manifest; a cluster's is
  the LoraTraining's, and the command says the kubectl that does it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from contentgen.api.kinds.lora_training import KIND as LORA_TRAINING
from contentgen.api.versions import version_entry
from contentgen.catalog import Catalog, to_record
from contentgen.cli.flags import int_at_least
from contentgen.cli.main import CommandError
from contentgen.errors import InvalidInput
from contentgen.pipeline import training_controls as controls
from contentgen.tables import checkpoint_words, stop_words, training_words

AddArgs = Callable[[argparse.ArgumentParser], None]
Action = Callable[[argparse.Namespace, Catalog, str], int]
Find = Callable[[Catalog, argparse.Namespace], dict[str, Any]]
ENDED = ("Succeeded", "Failed", "Cancelled", "Interrupted")
_sleep = time.sleep  # between looks at the catalog (a test's clock replaces it)


def add_watch(get: argparse.ArgumentParser) -> None:
    get.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="follow its latest run until it ends: each change in one line (a training's step, loss, time "
        "left and each checkpoint as it is scored); exit 0 when it succeeded, 1 otherwise",
    )
    get.add_argument(
        "--every",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="with -w: how often the catalog is read (default 1)",
    )


def add_actions(sub: Any, add_ref: AddArgs, add_common: AddArgs) -> None:
    stop = sub.add_parser(
        "stop",
        help="stop a LoRA training now, keeping its best checkpoint so far",
        description="Stop the training under way at its next step and keep its best-scoring checkpoint so "
        "far as the version's model, billed for the steps it ran (a stop before any checkpoint was scored "
        "ends the run Failed). It says first what it keeps; it stops with --yes or a y at the terminal. A "
        "cluster's training is stopped by its LoraTraining's annotation: the command says which kubectl "
        "does it.",
    )
    add_ref(stop)
    stop.add_argument("--yes", action="store_true", help="stop without asking")
    add_common(stop)

    more = sub.add_parser(
        "continue",
        help="train a LoRA on from a version, for more steps, as a new version",
        description="Go on training from a version (its LoRA and optimizer state as its training left them) "
        "for --steps more steps, as a new version whose lineage names it; the version stays as it is. It "
        "says first what it runs and its estimate; it runs here, as `contentgen run` of the changed "
        "manifest does, with --yes or a y at the terminal where the estimate is more than nothing. A "
        "cluster's LoraTraining is changed with kubectl: the command says how.",
    )
    add_ref(more)
    more.add_argument("--steps", type=int_at_least(1), required=True, metavar="N", help="how many steps more")
    more.add_argument(
        "--from-version", type=int_at_least(1), metavar="N", help="the version (default: the newest)"
    )
    more.add_argument(
        "--from-step", type=int_at_least(1), metavar="STEP", help="one of its stored checkpoints"
    )
    more.add_argument("--yes", action="store_true", help="pay the estimate without asking")
    add_common(more)


# --- watch ----------------------------------------------------------------------------------------


def watch(catalog: Catalog, doc: dict[str, Any], output: str, every: float) -> int:
    """Print what is new of the record `doc` until its latest run ends; 0 when it succeeded."""
    before: dict[str, Any] | None = None
    uid = str(doc["_id"])
    while True:
        record = to_record(doc).wire()
        for line in (_json_lines if output == "json" else news)(before, record):
            print(line, flush=True)
        before = record
        phase = record["latestRun"]["phase"]
        if phase in ENDED or record["status"] == "Deleted":
            return 0 if phase == "Succeeded" else 1
        _sleep(every)
        found = catalog.get(uid)
        if found is None:
            raise CommandError(f"the record {uid} is gone")
        doc = found


def _json_lines(before: dict[str, Any] | None, record: dict[str, Any]) -> list[str]:
    shown = ("id", "name", "namespace", "status", "latestVersion", "latestRun")
    now = {k: record.get(k) for k in shown}
    if before is not None and {k: before.get(k) for k in shown} == now:
        return []
    return [json.dumps(now, separators=(",", ":"))]


def news(before: dict[str, Any] | None, record: dict[str, Any]) -> list[str]:
    """What is new in `record` since `before` (None: the first look), a line each (pure)."""
    run, was = record["latestRun"], (before or {}).get("latestRun") or {}
    lines = []
    if _run_line(run) != _run_line(was) or before is None:
        lines.append(_run_line(run))
    training, had = run.get("training") or {}, was.get("training") or {}
    seen = {p.get("step") for p in had.get("checkpoints") or []}
    for point in training.get("checkpoints") or []:
        if point.get("step") not in seen:
            lines.append(_checkpoint_line(point))
    if training.get("stopAsked") and not had.get("stopAsked"):
        lines.append(f"  stop asked ({training['stopAsked']}): it stops at its next step, keeping its best")
    if run["phase"] in ENDED and was.get("phase") != run["phase"]:
        lines += _end_lines(record, run)
    return lines


def _run_line(run: dict[str, Any]) -> str:
    if not run:
        return ""
    head = f"v{run.get('version')} {run.get('phase')}"
    if run.get("phase") not in ("Pending", "Running"):
        return head
    where = f"{head} {run.get('stage') or '-'} {run.get('progress', 0)}%"
    said = training_words(run.get("training") or {})
    if not said:
        return where + (f" ({run['reason']}: {run.get('message')})" if run.get("phase") == "Pending" else "")
    return f"{where}: {said}"


def _checkpoint_line(point: dict[str, Any]) -> str:
    grid = f"; grid {point['gridUri']}" if point.get("gridUri") else ""
    return f"  {checkpoint_words(point)}{grid}"


def _end_lines(record: dict[str, Any], run: dict[str, Any]) -> list[str]:
    version = version_entry(record, run.get("version"))
    if version is None:
        why = (run.get("error") or {}).get("message") or run.get("message")
        return [f"v{run.get('version')} {run['phase']}: {why}"]
    lines = [f"v{version['version']} made: its model {version.get('modelUri')}"]
    going_on = version.get("continuedFrom") or {}
    if going_on:
        lines.append(f"  continued from v{going_on.get('version')}, after its step {going_on.get('step')}")
    stopped = version.get("stopped") or {}
    if stopped:
        lines.append(f"  {stop_words(stopped)}")
    return lines


# --- stop and continue ----------------------------------------------------------------------------


def _stop(
    args: argparse.Namespace, catalog: Catalog, output: str, find: Find, confirmed: Callable[[str], bool]
) -> int:
    doc = find(catalog, args)
    try:
        plan = controls.stop_plan(doc)
    except InvalidInput as exc:
        raise CommandError(str(exc)) from None
    if doc.get("origin") != "local":
        raise CommandError(f"{plan.message}; it runs in a cluster: {controls.stop_command(doc)}")
    from contentgen.pipeline.local_run import RunLock

    if not RunLock(_work_dir(), str(doc["_id"])).held():
        raise CommandError(controls.unheld(doc, plan))
    if not (args.yes or confirmed(f"{plan.message}. Stop it?")):
        print(f"{plan.message}; not stopped (--yes stops it)", file=sys.stderr)
        return 1
    import getpass

    from contentgen.api import now

    asked = controls.ask_local_stop(
        _work_dir(), str(doc["_id"]), plan.version, by=f"cli:{getpass.getuser()}", at=now()
    )
    if output == "json":
        print(
            json.dumps(
                {"id": doc["_id"], "version": plan.version, "asked": str(asked), "message": plan.message}
            )
        )
    else:
        print(f"{plan.message}: asked ({asked})")
    return 0


def _continue(
    args: argparse.Namespace, catalog: Catalog, output: str, find: Find, confirmed: Callable[[str], bool]
) -> int:
    from contentgen.pipeline.settings import PipelineSettings
    from contentgen.pricing import estimated

    doc = find(catalog, args)
    number = args.from_version or int(doc.get("latestVersion") or 0)
    try:
        spec = controls.continued_spec(doc, number, args.steps, args.from_step)
    except InvalidInput as exc:
        text = str(exc)
        raise CommandError(f"--from-{text}" if text.startswith("version:") else text) from None
    if doc.get("origin") != "local":
        command = controls.continue_command(doc, number, args.steps)
        raise CommandError(f"{doc['namespace']}/{doc['name']} runs in a cluster: {command}")
    cost = estimated(LORA_TRAINING.kind, spec, PipelineSettings().prices, None)
    print(controls.continue_message(doc, number, args.steps, cost.estimated_usd), file=sys.stderr)
    if cost.estimated_usd > 0 and not (args.yes or confirmed("Pay the estimate and train?")):
        print("nothing was run or paid (--yes runs it)", file=sys.stderr)
        return 1
    return _run_here(doc, spec, args)


def _run_here(doc: dict[str, Any], spec: dict[str, Any], args: argparse.Namespace) -> int:
    """`contentgen run` of the record's resource with `spec`: its next version, recorded."""
    from contentgen.api import API_VERSION
    from contentgen.api.providers import provider_entry
    from contentgen.cli import run as local_run

    manifest = {
        "apiVersion": API_VERSION,
        "kind": doc["kind"],
        "metadata": {"name": doc["name"], "namespace": doc["namespace"]},
        "spec": spec,
    }
    with tempfile.TemporaryDirectory(prefix="contentgen-continue-") as folder:
        path = Path(folder) / "loratraining.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        asked = argparse.Namespace(
            manifest=str(path),
            # a version the offline provider made goes on as `contentgen run --offline` ran it
            offline=provider_entry(str(spec.get("provider") or "")).placeholders,
            store=args.store,
            catalog=args.catalog,
            source=None,
            result=None,
            work_dir=None,
        )
        return local_run.run(asked)


def _work_dir() -> Path:
    from contentgen.pipeline.settings import PipelineSettings

    return Path(PipelineSettings().work_dir)


def actions(find: Find, confirmed: Callable[[str], bool]) -> dict[str, Action]:
    """The actions of this module, with assets' record lookup and terminal confirmation."""
    return {
        "stop": lambda args, catalog, output: _stop(args, catalog, output, find, confirmed),
        "continue": lambda args, catalog, output: _continue(args, catalog, output, find, confirmed),
    }
