"""A training's live channel: where its worker reports the run under way between steps (its step,
loss, checkpoints' likeness as each is scored: `status.training`, api/lora/status.py TrainingRun),
and where it learns that a person asked it to stop and keep its best checkpoint so far.

- **In a cluster** (`KubeLive`): the report is a JSON patch of the resource's status subresource,
  the only thing the worker may write, and the patch's answer is the whole resource, its
  annotations with it: a stop asked (`contentgen.io/stop: keep-best`, api/lora/stopping.py) is read
  there (the worker reports after every step, at most every few seconds, and at once at each
  checkpoint: a stop is seen within a report). The worker may not read its resource (its Role
  patches the status subresource, nothing more), and needs to: nothing else is asked.
- **On a laptop** (`LocalLive`, `contentgen run`): the report goes into the catalog record's
  latest run (`latestRun.training`), which the HTTP API, the web UI and `contentgen assets get -w`
  read, and to the run's terminal (its step, loss, time left, each checkpoint's score); a stop is
  asked of the run with its stop file (`{CONTENTGEN_WORK_DIR}/{uid}/stop-v{version}`,
  pipeline/training_controls.py: `contentgen assets stop` and a laptop's API write it), read here
  at most once a second. Named by the version, a stop asked of one run never stops the next.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from contentgen.api import Kind, SpecSnapshot, now
from contentgen.api.lora import STOP_ANNOTATION, TrainingRun

log = logging.getLogger(__name__)


class Live(Protocol):
    def report(self, training: TrainingRun, *, now_: bool = False) -> None:
        """The run under way (at most every few seconds; `now_`: a checkpoint scored or a stop,
        reported at once)."""

    def stop_asked(self) -> tuple[str, str] | None:
        """A stop asked of the run: (its value, who asked, "" where not known); None."""


class NoLive:
    """No channel: a run nobody watches and nobody can stop (tests, the API's own evaluations)."""

    def report(self, training: TrainingRun, *, now_: bool = False) -> None:
        return None

    def stop_asked(self) -> tuple[str, str] | None:
        return None


class _Throttle:
    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval, self.clock, self.last = interval, clock, float("-inf")

    def due(self, now_: bool = False) -> bool:
        moment = self.clock()
        if not now_ and moment - self.last < self.interval:
            return False
        self.last = moment
        return True


class Statuses(Protocol):
    """What KubeLive needs of the worker's status client (pipeline/kube_status.py)."""

    def patch_training(
        self, kind: Kind, namespace: str, name: str, job_name: str, training: dict[str, Any], uid: str = ""
    ) -> dict[str, str] | None: ...


class KubeLive:
    """The cluster's channel: status.training patched, the stop annotation read from the answer."""

    def __init__(
        self,
        kube: Statuses,
        kind: Kind,
        snapshot: SpecSnapshot,
        job_name: str,
        *,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube, self.kind, self.snapshot, self.job_name = kube, kind, snapshot, job_name
        self.reports = _Throttle(interval, clock)
        self.annotations: dict[str, str] = {}

    def report(self, training: TrainingRun, *, now_: bool = False) -> None:
        if not self.reports.due(now_):
            return
        snapshot = self.snapshot
        try:
            seen = self.kube.patch_training(
                self.kind, snapshot.namespace, snapshot.name, self.job_name, training.wire(), snapshot.uid
            )
        except Exception as exc:  # the live view is best effort; the run goes on
            log.warning("could not report the training's progress: %s", exc)
            return
        if seen is not None:
            self.annotations = seen

    def stop_asked(self) -> tuple[str, str] | None:
        value = self.annotations.get(STOP_ANNOTATION)
        return (value, "") if value else None


class LocalLive:
    """A laptop's channel (`contentgen run`): the catalog record's latest run, the stop file.
    `work_root`: CONTENTGEN_WORK_DIR."""

    def __init__(
        self,
        catalog: Any,
        snapshot: SpecSnapshot,
        work_root: Path,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        shown: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.catalog, self.snapshot, self.work_root = catalog, snapshot, work_root
        self.reports, self.reads = _Throttle(interval, clock), _Throttle(interval, clock)
        self.asked: tuple[str, str] | None = None
        self.latest: dict[str, Any] | None = None  # the newest report (wire), written or not
        self.shown = shown  # the terminal's (reporters.ConsoleProgress.training): every report

    def report(self, training: TrainingRun, *, now_: bool = False) -> None:
        self.latest = training.wire()
        if self.shown is not None:
            self.shown(self.latest)
        if self.catalog is None or not self.reports.due(now_):
            return
        from contentgen.catalog.document import with_training

        version, wired = self.snapshot.version, self.latest

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            return None if doc is None else with_training(doc, version=version, training=wired, now=now())

        try:
            self.catalog.modify(self.snapshot.uid, change)
        except Exception as exc:  # best effort, as the catalog's progress is
            log.warning("could not report the training's progress to the catalog: %s", exc)

    def stop_asked(self) -> tuple[str, str] | None:
        if self.reads.due():
            from .training_controls import local_stop_asked

            asked = local_stop_asked(self.work_root, self.snapshot.uid, self.snapshot.version)
            self.asked = (str(asked["stop"]), str(asked.get("by") or "")) if asked is not None else None
        return self.asked
