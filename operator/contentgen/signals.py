"""SIGTERM handled for a stretch of code, the previous handler put back after (the worker, a local
run and the distributed launcher each stop their own way)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any]


@contextmanager
def on_sigterm(handler: Handler) -> Iterator[None]:
    """`handler` takes SIGTERM while the block runs (in the main thread, where Python runs signal
    handlers); the handler before it takes it again after, however the block ends."""
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
