"""What every in-process controller of the control plane shares: a thread that follows the
store's change log the way an informer follows a watch, a delaying work queue of keys (one sync
per key at a time, failed syncs retried with backoff), and requests made through
`ControlPlane.handle` under the controller's own identity, so every write passes the same
authorization and admission as any client's.

Controllers read current objects straight from the store (their "informer cache": always up to
date, so the Job controller needs no creation expectations) and never change what they read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from .errors import ApiError
from .resources import ResourceType
from .store import Change, Key, clone

if TYPE_CHECKING:
    from .apiserver import ControlPlane, Response, User

log = logging.getLogger(__name__)

MASTERS = "system:masters"


def controller_manager() -> User:
    from .apiserver import User

    return User("system:kube-controller-manager", (MASTERS,))


class Controller:
    """Subclasses set `name` and `watches` ((group, plural) keys; empty: every kind) and
    implement `observe` (enqueue keys for a change), `resync` (enqueue everything: at start,
    after a 410, every `resync_period` seconds) and `sync(key)`."""

    name = "controller"
    watches: tuple[Key, ...] = ()
    resync_period = 30.0
    retry_base, retry_cap = 0.05, 5.0

    def __init__(self, cp: ControlPlane, user: User | None = None) -> None:
        self.cp = cp
        self.user = user or controller_manager()
        self._queue: dict[Hashable, float] = {}  # key -> when it is due (time.monotonic())
        self._failures: dict[Hashable, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []  # sync failures that were not API conflicts (for tests and logs)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Controller:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self.cp.store.lock:
            self.cp.store.changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() or self.cp.store.closed

    # --- the work queue ------------------------------------------------------------------------

    def enqueue(self, key: Hashable, delay: float = 0.0) -> None:
        """Sync `key` after `delay` seconds (an earlier request wins, like AddAfter)."""
        due = time.monotonic() + max(0.0, delay)
        with self.cp.store.lock:
            if key not in self._queue or due < self._queue[key]:
                self._queue[key] = due
            self.cp.store.changed.notify_all()

    def _take_due(self) -> list[Hashable]:
        now = time.monotonic()
        due = [k for k, when in self._queue.items() if when <= now]
        for key in due:
            del self._queue[key]
        return due

    def _wait_time(self, next_resync: float) -> float:
        now = time.monotonic()
        soonest = min([*self._queue.values(), next_resync], default=next_resync)
        return max(0.005, min(0.5, soonest - now))

    # --- the loop ------------------------------------------------------------------------------

    def _run(self) -> None:
        store = self.cp.store
        with store.lock:
            since = store.rv
        self.resync()
        next_resync = time.monotonic() + self.resync_period
        while not self.stopping:
            with store.lock:
                try:
                    changes = store.changes_since(since)
                except ApiError:  # compacted away: start over from a full listing, like a relist
                    changes, since = [], store.rv
                    self.resync()
                if changes:
                    since = changes[-1].rv
                due = self._take_due()
                if not changes and not due:
                    store.changed.wait(self._wait_time(next_resync))
                    if time.monotonic() >= next_resync:
                        next_resync = time.monotonic() + self.resync_period
                        self.resync()
                    continue
            for change in changes:
                if not self.watches or change.key in self.watches:
                    self._guard(lambda c=change: self.observe(c), None)
            for key in due:
                if self.stopping:
                    return
                self._guard(lambda k=key: self.sync(k), key)

    def _guard(self, work: Any, key: Hashable | None) -> None:
        try:
            work()
            if key is not None:
                self._failures.pop(key, None)
        except ApiError as exc:
            if exc.code != 409:
                self._record(key, f"{exc.code} {exc.reason}: {exc.message}")
            self._retry(key)
        except Exception as exc:  # a controller keeps running, as a real one does
            log.exception("%s: sync of %r failed", self.name, key)
            self._record(key, f"{type(exc).__name__}: {exc}")
            self._retry(key)

    def _record(self, key: Hashable | None, text: str) -> None:
        self.errors.append(f"{key!r}: {text}")
        del self.errors[:-100]

    def _retry(self, key: Hashable | None) -> None:
        if key is None:
            return
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        self.enqueue(key, min(self.retry_cap, self.retry_base * 2 ** (failures - 1)))

    # --- hooks ---------------------------------------------------------------------------------

    def observe(self, change: Change) -> None:
        raise NotImplementedError

    def resync(self) -> None:
        raise NotImplementedError

    def sync(self, key: Any) -> None:
        raise NotImplementedError

    # --- reads (the informer cache) and requests (through the API) -----------------------------

    def type(self, group: str, plural: str) -> ResourceType:
        with self.cp.store.lock:  # the served types change when CRDs do, under this lock
            return self.cp.type_of(group, plural)

    def served(self) -> list[ResourceType]:
        with self.cp.store.lock:
            return list(self.cp.types.values())

    def read(self, group: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.cp.store.get((group, plural), namespace, name)

    def items(self, group: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Copies of the stored objects of a kind (in one namespace, or all)."""
        with self.cp.store.lock:
            return [clone(o) for o in self.cp.store.items((group, plural), namespace)]

    def call(
        self,
        verb: str,
        t: ResourceType,
        namespace: str = "",
        name: str = "",
        body: Any = None,
        *,
        subresource: str = "",
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Response:
        from .apiserver import Request

        return self.cp.handle(
            Request(
                self.user,
                verb,
                t,
                namespace,
                name,
                subresource,
                body,
                dict(query or {}),
                content_type,
                user_agent=f"{self.name}/v1.33.0",
            )
        )

    def gone_ok(
        self, verb: str, t: ResourceType, namespace: str, name: str, body: Any = None, **kw: Any
    ) -> bool:
        """A request whose 404 means there is nothing left to do. False on 404."""
        try:
            self.call(verb, t, namespace, name, body, **kw)
            return True
        except ApiError as exc:
            if exc.code == 404:
                return False
            raise
