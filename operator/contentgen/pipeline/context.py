"""Everything one run needs, handed to the per-kind flows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contentgen.api import SpecSnapshot, StageTiming
from contentgen.store import ObjectStore

from .fetch import Fetched, fetch
from .progress import Progress, Span, SubProgress
from .settings import PipelineSettings


class StoreCheckpoint:
    """A provider checkpoint kept as a small JSON object in the store (temp/{uid}/checkpoints/)."""

    def __init__(self, store: ObjectStore, key: str) -> None:
        self.store, self.key = store, key

    def load(self) -> dict[str, Any]:
        if not self.store.exists(self.key):
            return {}
        data: dict[str, Any] = json.loads(self.store.get_bytes(self.key))
        return data

    def save(self, data: dict[str, Any]) -> None:
        self.store.put_bytes(self.key, json.dumps(data, sort_keys=True).encode(), "application/json")


@dataclass
class RunContext:
    snapshot: SpecSnapshot
    store: ObjectStore
    settings: PipelineSettings
    work_dir: Path
    progress: Progress
    local: bool = False  # `contentgen run`: local sources allowed
    provider: str = ""  # the provider to use (the spec's, or offline when forced)
    timings: list[StageTiming] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str, start: float, end: float) -> Iterator[Span]:
        """Time a stage and map its 0-100 onto [start, end] of the run's progress."""
        span = Span(self.progress, name, start, end)
        span(0)
        began = time.monotonic()
        try:
            yield span
        finally:
            self.timings.append(StageTiming(name=name, seconds=round(time.monotonic() - began, 3)))
        span(100)

    def fetch_source(self, url: str, progress: SubProgress) -> Fetched:
        """Fetch a spec's source into the work directory, within the settings' limits."""
        return fetch(
            url,
            self.scratch("source"),
            max_bytes=self.settings.max_download_bytes,
            allow_private=self.settings.allow_private_sources,
            local=self.local,
            timeout=self.settings.http_timeout_seconds,
            progress=progress,
        )

    def scratch(self, name: str) -> Path:
        path = self.work_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path
