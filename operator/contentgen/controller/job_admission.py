"""Admission of new Jobs per namespace (the concurrency limit, first come first served) and
the backoff of resources that wait (for a LoRA, for credentials)."""

from __future__ import annotations

import heapq
from collections.abc import Collection
from dataclasses import dataclass, field


@dataclass
class NamespaceQueue:
    limit: int
    # namespace -> {uid: creation time (sortable)} of resources waiting for a slot
    waiting: dict[str, dict[str, str]] = field(default_factory=dict)
    # Jobs created but not yet seen by the Job index (it lags our own writes).
    started: dict[str, set[str]] = field(default_factory=dict)

    def may_start(self, namespace: str, uid: str, created: str, running: Collection[str]) -> bool:
        """Whether `uid` may start a Job now, given the uids with unfinished Jobs in the namespace.
        Costs what the Jobs in flight cost, not what every resource in the namespace does: it runs
        for every decision, and a namespace may hold thousands."""
        free = self.free(namespace, running, uid)
        if free <= 0:
            return False
        waiting = self.waiting.get(namespace, {})
        if len(waiting) - (uid in waiting) < free:
            return True  # every resource waiting, and this one, fits
        # First come first served by (creationTimestamp, uid): a total order. Timestamps have
        # one-second resolution, so resources applied together tie on time; counting ties as
        # ahead of each other on both sides would leave all of them waiting for ever.
        me = (created, uid)
        rank = sum(1 for u, t in waiting.items() if u != uid and (t, u) < me)
        return rank < free

    def free(self, namespace: str, running: Collection[str], uid: str = "") -> int:
        """Slots free in the namespace, not counting `uid`'s own Job."""
        pending = [u for u in self.started.get(namespace, ()) if u not in running]
        busy = len(running) + len(pending) - (uid in running or uid in pending)
        return self.limit - busy

    def first_waiting(self, namespace: str, count: int) -> list[str]:
        """The `count` resources first in line (creationTimestamp, uid)."""
        waiting = self.waiting.get(namespace, {})
        return [u for t, u in heapq.nsmallest(max(0, count), ((t, u) for u, t in waiting.items()))]

    def wait(self, namespace: str, uid: str, created: str) -> None:
        self.waiting.setdefault(namespace, {})[uid] = created

    def start(self, namespace: str, uid: str) -> None:
        self.waiting.get(namespace, {}).pop(uid, None)
        self.started.setdefault(namespace, set()).add(uid)

    def seen(self, namespace: str, running: Collection[str]) -> None:
        """The Job index caught up: forget started uids it now shows (or that have finished)."""
        started = self.started.get(namespace)
        if started:
            self.started[namespace] = {u for u in started if u not in running}

    def forget(self, namespace: str, uid: str) -> None:
        self.waiting.get(namespace, {}).pop(uid, None)
        self.started.get(namespace, set()).discard(uid)

    def length(self) -> int:
        return sum(len(v) for v in self.waiting.values())


@dataclass
class Backoff:
    """Exponential backoff per resource: base, 2×base, 4×base ... up to `cap` seconds."""

    base: float
    cap: float = 300.0
    attempts: dict[str, int] = field(default_factory=dict)
    next_at: dict[str, float] = field(default_factory=dict)

    def due(self, uid: str, now: float) -> bool:
        return now >= self.next_at.get(uid, 0.0)

    def failed(self, uid: str, now: float, cap: float | None = None) -> float:
        """The next look at `uid`, after the delay for its attempts so far (at most `cap`, when
        given, rather than the backoff's own)."""
        n = self.attempts.get(uid, 0)
        delay = float(min(self.base * 2.0**n, self.cap if cap is None else cap))
        self.attempts[uid] = n + 1
        self.next_at[uid] = now + delay
        return delay

    def recheck_at(self, uid: str, when: float) -> None:
        """Look again at `when` (the safety net's clock), without counting a failure."""
        self.next_at[uid] = when

    def no_later_than(self, uid: str, when: float) -> None:
        """Look again at `when` at the latest, without counting a failure."""
        self.next_at[uid] = min(self.next_at.get(uid, when), when)

    def reset(self, uid: str) -> None:
        self.attempts.pop(uid, None)
        self.next_at.pop(uid, None)
