"""Where progress goes: a bar on a terminal, plain lines otherwise, the resource's status in
the cluster. Each reporter throttles itself; the pipeline reports as often as it likes."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

log = logging.getLogger(__name__)


class ConsoleProgress:
    """A one-line bar when `stream` is a terminal; otherwise a line per stage and per 10 %."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.stage = ""
        self.shown = -100.0

    def __call__(self, stage: str, percent: float, message: str = "") -> None:
        step = 1 if self.tty else 10
        if stage == self.stage and percent - self.shown < step and not (self.tty and percent >= 100):
            return  # nothing drawn, so `shown` stays: small steps add up to the next draw
        if self.tty:
            filled = int(percent / 5)
            bar = "#" * filled + "." * (20 - filled)
            self.stream.write(f"\r{stage:<16} [{bar}] {percent:5.1f}% {message[:40]:<40}")
        else:
            self.stream.write(f"{stage} {percent:.0f}%{' ' + message if message else ''}\n")
        self.stream.flush()
        self.stage, self.shown = stage, percent

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
