"""The operator's work queue, after controller-runtime's: events only add a resource's key; a
fixed number of workers reconcile keys from the latest state in the indexes.

- A key waits in the queue once, however many events add it before a worker takes it.
- A key being reconciled is not handed to a second worker; added meanwhile, it is queued again
  when the first is done, so the change that came in between is not missed.

So a burst of thousands of events holds a set of keys, not thousands of bodies and handler
stacks, and a resource's events that arrive together cost one reconcile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable


class WorkQueue:
    def __init__(self) -> None:
        self._ready: asyncio.Queue[Hashable] = asyncio.Queue()
        self._queued: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._dirty: set[Hashable] = set()

    def add(self, key: Hashable) -> None:
        if key in self._processing:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.put_nowait(key)

    async def get(self) -> Hashable:
        key = await self._ready.get()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: Hashable) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return len(self._queued)

    @property
    def processing(self) -> int:
        return len(self._processing)
