"""Admission of new Jobs per namespace (the concurrency limit, first come first served) and
the backoff of resources that wait (for a LoRA, for credentials)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class NamespaceQueue:
    limit: int
    # namespace -> {uid: creation time (sortable)} of resources waiting for a slot
    waiting: dict[str, dict[str, str]] = field(default_factory=dict)
    # Jobs created but not yet seen by the Job index (it lags our own writes).
    started: dict[str, set[str]] = field(default_factory=dict)

    def may_start(self, namespace: str, uid: str, created: str, running: set[str]) -> bool:
        """Whether `uid` may start a Job now, given the uids with unfinished Jobs in the namespace."""
        busy = running | self.started.get(namespace, set())
        free = self.limit - len(busy - {uid})
        if free <= 0:
            return False
        # First come first served by (creationTimestamp, uid): a total order. Timestamps have
        # one-second resolution, so resources applied together tie on time; counting ties as
        # ahead of each other on both sides would leave all of them waiting for ever.
        me = (created, uid)
        rank = sum(1 for u, t in self.waiting.get(namespace, {}).items() if u != uid and (t, u) < me)
        return rank < free

    def wait(self, namespace: str, uid: str, created: str) -> None:
        self.waiting.setdefault(namespace, {})[uid] = created

    def start(self, namespace: str, uid: str) -> None:
        self.waiting.get(namespace, {}).pop(uid, None)
        self.started.setdefault(namespace, set()).add(uid)

    def seen(self, namespace: str, running: set[str]) -> None:
        """The Job index caught up: forget started uids it now shows (or that have finished)."""
        self.started[namespace] = self.started.get(namespace, set()) - running

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

    def failed(self, uid: str, now: float) -> float:
        n = self.attempts.get(uid, 0)
        delay = float(min(self.base * 2.0**n, self.cap))
        self.attempts[uid] = n + 1
        self.next_at[uid] = now + delay
        return delay

    def reset(self, uid: str) -> None:
        self.attempts.pop(uid, None)
        self.next_at.pop(uid, None)
