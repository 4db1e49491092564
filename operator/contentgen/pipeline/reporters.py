"""Where progress goes: a bar on a terminal, plain lines otherwise, the resource's status in
the cluster. Each reporter throttles itself; the pipeline reports as often as it likes."""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from contentgen.tables import checkpoint_words, training_words

log = logging.getLogger(__name__)

REDRAW_SECONDS = 0.1  # a training's words on the bar change at most this often (a step can be 1 ms)


class ConsoleProgress:
    """A one-line bar when `stream` is a terminal; otherwise a line per stage and per 10 %. A
    training's reports (`training`, its status.training as the watch reports it) show on the bar
    while it trains (step, loss, time left), and each checkpoint's score as a line of its own as it
    lands, on a terminal or not."""

    def __init__(
        self,
        stream: TextIO | None = None,
        tty: bool | None = None,
        width: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream, self.clock, self.drawn = stream or sys.stderr, clock, float("-inf")
        self.tty = self.stream.isatty() if tty is None else tty
        self.width = width or shutil.get_terminal_size((100, 24)).columns
        self.stage = ""
        self.shown = -100.0
        self.message = ""  # what the bar says after its percent
        self.said = ""  # the training's words, while it trains
        self.seen: set[int] = set()  # the checkpoints said
        self.asked = ""

    def __call__(self, stage: str, percent: float, message: str = "") -> None:
        step = 1 if self.tty else 10
        if stage == self.stage and percent - self.shown < step and not (self.tty and percent >= 100):
            return  # nothing drawn, so `shown` stays: small steps add up to the next draw
        if stage != self.stage:
            self.said = ""
        self.stage, self.shown, self.message = stage, percent, message
        if self.tty:
            self._draw()
        else:
            self.stream.write(f"{stage} {percent:.0f}%{' ' + message if message else ''}\n")
        self.stream.flush()

    def training(self, run: dict[str, Any]) -> None:
        """A training's report: new checkpoints' scores and a stop asked as lines, the rest on the
        bar (a terminal's only)."""
        for point in run.get("checkpoints") or []:
            if point.get("step") not in self.seen:
                self.seen.add(point.get("step"))
                self._line(f"  {checkpoint_words(point)}")
        if run.get("stopAsked") and run["stopAsked"] != self.asked:
            self.asked = run["stopAsked"]
            self._line(f"  stop asked ({self.asked}): it stops at its next step, keeping its best checkpoint")
        said = training_words(run)
        if self.tty and said != self.said and self.clock() - self.drawn >= REDRAW_SECONDS:
            self.said = said
            self._draw()
            self.stream.flush()

    def _draw(self) -> None:
        filled = int(self.shown / 5)
        bar = "#" * filled + "." * (20 - filled)
        words = self.said or self.message
        line = f"{self.stage:<14} [{bar}] {self.shown:5.1f}% {words}"[: max(20, self.width - 1)]
        self.stream.write(f"\r{line:<{max(20, self.width - 1)}}")
        self.drawn = self.clock()

    def _line(self, text: str) -> None:
        """A line of its own, above the bar on a terminal."""
        if self.tty and self.stage:
            self.stream.write(f"\r{' ' * max(20, self.width - 1)}\r{text}\n")
            self._draw()
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.stage:
            self.stream.write("\n")
            self.stream.flush()


class Throttled:
    """Passes progress on when the stage changes, or at most every `interval` seconds."""

    def __init__(
        self,
        sink: Callable[[str, int], None],
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink, self.interval, self.clock = sink, interval, clock
        self.last_stage, self.last_percent, self.last_time = "", -1, float("-inf")

    def __call__(self, stage: str, percent: float, message: str = "") -> None:
        value = int(percent)
        now = self.clock()
        if stage == self.last_stage and (value == self.last_percent or now - self.last_time < self.interval):
            return
        self.last_stage, self.last_percent, self.last_time = stage, value, now
        try:
            self.sink(stage, value)
        except Exception as exc:  # progress is best effort; the run goes on
            log.warning("could not report progress: %s", exc)


class Changes:
    """Passes a warm pool's (state, position) on when it changes (cli/worker.py: status.pool)."""

    def __init__(self, sink: Callable[[str, int], None]) -> None:
        self.sink, self.last = sink, ("", 0)

    def __call__(self, state: str, position: int) -> None:
        if (state, position) == self.last:
            return
        self.last = (state, position)
        try:
            self.sink(state, position)
        except Exception as exc:  # best effort, as progress is; the run goes on
            log.warning("could not report the pool's place: %s", exc)


class FanOut:
    """One Progress that reports to several."""

    def __init__(self, *reporters: Any) -> None:
        self.reporters = reporters

    def __call__(self, stage: str, percent: float, message: str = "") -> None:
        for reporter in self.reporters:
            reporter(stage, percent, message)
