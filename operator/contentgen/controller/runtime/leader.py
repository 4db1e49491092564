"""One leader among operator replicas, by a coordination.k8s.io/v1 Lease, with client-go's
leaderelection guarantees: acquire the Lease when it is free or expired, renew it every
`retry_period`, and stop leading `renew_deadline` after the start of the last renew that
succeeded (on the monotonic clock), even while a Lease request is still hanging: a watchdog thread
calls `on_lost` (the process exits) at that moment, not when the request returns. Every Lease
request has its own short timeout and no retries (main.py), so one try ends well within the
deadline. Another replica takes the Lease only `lease_duration` after it last saw it change, and
`lease_duration` > `renew_deadline`, so the old leader has stopped before the new one starts.

Expiry is judged by when this replica last saw the Lease change, not by the holder's clock; the
Lease's acquireTime and renewTime are wall-clock times, for people and tools. A replica that
stops cleanly releases the Lease (once) so the next one takes over at once; after a crash, the
restarted replica (same identity: the pod name) takes it back at once, and a new pod waits at
most `lease_duration`.

`decide` is the pure part (what to write, given the Lease as read and when it last changed);
`LeaderElector` is the loop around two injected calls (read, write). `may_act` is what the rest of
the operator asks before each write (its API writes, Events, catalog writes): whether this process
can still prove its lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("contentgen.operator.leader")

LeaseBody = dict[str, Any]


def _micro_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Timing:
    """client-go's defaults. `request_timeout` bounds one Lease request (read or write); a try
    makes at most two, so it ends well within `renew_deadline`."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    request_timeout: float = 3.0

    def __post_init__(self) -> None:
        # client-go's own checks: a standby must not take over before the leader has given up
        if self.lease_duration <= self.renew_deadline:
            raise ValueError("leader election: lease_duration must be longer than renew_deadline")
        if self.renew_deadline <= 1.2 * self.retry_period:
            raise ValueError("leader election: renew_deadline must be longer than 1.2 x retry_period")
        if 2 * self.request_timeout >= self.renew_deadline:
            raise ValueError("leader election: request_timeout must be under half of renew_deadline")


def decide(
    lease: LeaseBody | None,
    identity: str,
    now: float,
    observed_at: float,
    timing: Timing,
    name: str,
    namespace: str,
    wall: float,
) -> LeaseBody | None:
    """The Lease to write to hold leadership, or None when another holder's Lease is still valid.
    `now` and `observed_at` (when this replica first saw the Lease as it is now) are on this
    replica's monotonic clock; `wall` is the time written into the Lease (acquireTime, renewTime)."""
    stamp = _micro_time(wall)
    if lease is None:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "holderIdentity": identity,
                "leaseDurationSeconds": int(timing.lease_duration),
                "acquireTime": stamp,
                "renewTime": stamp,
                "leaseTransitions": 0,
            },
        }
    spec = dict(lease.get("spec") or {})
    holder = spec.get("holderIdentity") or ""
    duration = float(spec.get("leaseDurationSeconds") or timing.lease_duration)
    if holder and holder != identity and now < observed_at + duration:
        return None
    updated = {**lease, "spec": dict(spec)}
    if holder != identity:
        updated["spec"]["acquireTime"] = stamp
        updated["spec"]["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
    updated["spec"]["holderIdentity"] = identity
    updated["spec"]["leaseDurationSeconds"] = int(timing.lease_duration)
    updated["spec"]["renewTime"] = stamp
    return updated


def released(lease: LeaseBody, wall: float) -> LeaseBody:
    """What a leader writes when it stops cleanly: no holder, so the next replica need not wait."""
    spec = dict(lease.get("spec") or {})
    spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=_micro_time(wall))
    return {**lease, "spec": spec}


def expired(renewed_at: float, now: float, timing: Timing) -> bool:
    """Whether a leader whose last successful renew started at `renewed_at` must have stopped."""
    return now - renewed_at >= timing.renew_deadline


class LeaderElector:
    """`read()` returns the Lease or None; `write(lease, create)` creates or updates it (an update
    carries the resourceVersion read, so two replicas cannot both win) and raises on conflict.
    Both must give up within `timing.request_timeout` (main.py builds them so)."""

    def __init__(
        self,
        identity: str,
        read: Callable[[], LeaseBody | None],
        write: Callable[[LeaseBody, bool], LeaseBody],
        *,
        name: str,
        namespace: str,
        timing: Timing = Timing(),
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        observer: Callable[[bool], None] = lambda answered: None,
    ) -> None:
        self.identity, self.read, self.write = identity, read, write
        self.observer = observer  # told of every try, and whether the API server answered (health)
        self.name, self.namespace, self.timing = name, namespace, timing
        self.clock, self.wall = clock, wall
        self._seen: tuple[str, float] | None = None  # (resourceVersion, when first seen)
        self._lease: LeaseBody | None = None
        self._renewed_at = float("-inf")  # when the last successful try started (monotonic)
        self._lock = threading.Lock()  # _renewed_at, _lease and `leading` change together
        self.leading = threading.Event()
        self.stopped = threading.Event()

    def holds(self) -> bool:
        """Whether this replica can prove its lease now: it leads and its last successful renew
        started less than renew_deadline ago."""
        with self._lock:
            return self.leading.is_set() and not expired(self._renewed_at, self.clock(), self.timing)

    @property
    def term(self) -> int:
        """The Lease's transitions when this replica last wrote it: grows with every new leader
        (webhook deliveries' claims name it)."""
        with self._lock:
            lease = self._lease
        return int(((lease or {}).get("spec") or {}).get("leaseTransitions") or 0)

    def try_acquire_or_renew(self) -> bool:
        started = self.clock()
        try:
            lease = self.read()
        except Exception as exc:  # the API server is away: not a reason to claim anything
            log.warning("reading lease %s/%s failed: %s", self.namespace, self.name, exc)
            self.observer(False)
            return False
        self.observer(True)
        now = self.clock()
        if lease is not None:
            version = str(lease["metadata"].get("resourceVersion", ""))
            if self._seen is None or self._seen[0] != version:
                self._seen = (version, now)
        observed_at = self._seen[1] if self._seen else now
        wanted = decide(
            lease, self.identity, now, observed_at, self.timing, self.name, self.namespace, self.wall()
        )
        if wanted is None:
            return False
        try:
            written = self.write(wanted, lease is None)
        except Exception as exc:  # a conflict (someone else wrote first) or a timeout
            log.info("lease %s/%s not taken: %s", self.namespace, self.name, exc)
            return False
        with self._lock:
            self._lease = written
            self._renewed_at = max(self._renewed_at, started)
        self._seen = (str(written["metadata"].get("resourceVersion", "")), self.clock())
        return True

    def acquire(self, stop: threading.Event) -> bool:
        """Block until this replica leads (True) or `stop` is set (False)."""
        while not stop.is_set():
            if self.try_acquire_or_renew():
                log.info("became the leader as %s (lease %s/%s)", self.identity, self.namespace, self.name)
                self.leading.set()
                return True
            stop.wait(self.timing.retry_period)
        return False

    def keep(self, stop: threading.Event, on_lost: Callable[[], None]) -> None:
        """Renew every retry_period until `stop` (then release) or until renew_deadline has passed
        since the start of the last successful renew: then `on_lost`, called by a watchdog at that
        moment even if a renew is still waiting for its answer. `on_lost` should end the process:
        a replica that cannot prove its lease must not act."""
        lost = threading.Event()
        watchdog = threading.Thread(
            target=self._watch, args=(stop, lost, on_lost), name="lease-watchdog", daemon=True
        )
        watchdog.start()
        while not stop.wait(self.timing.retry_period) and not lost.is_set():
            self.try_acquire_or_renew()
        if not lost.is_set():
            self.release()

    def _watch(self, stop: threading.Event, lost: threading.Event, on_lost: Callable[[], None]) -> None:
        while not stop.is_set():
            with self._lock:
                left = self._renewed_at + self.timing.renew_deadline - self.clock()
                if left <= 0:
                    self.leading.clear()
                    self._lease = None  # not ours to release any more
                    lost.set()
            if lost.is_set():
                log.error(
                    "lost the lease %s/%s: not renewed for %.0f s",
                    self.namespace,
                    self.name,
                    self.timing.renew_deadline,
                )
                on_lost()
                return
            stop.wait(min(left, self.timing.retry_period / 4))

    def release(self) -> None:
        """Give the Lease up (once: a second call does nothing), if this replica holds it."""
        with self._lock:
            lease, self._lease = self._lease, None
            self.leading.clear()
        if lease is None or lease.get("spec", {}).get("holderIdentity") != self.identity:
            return
        try:
            self.write(released(lease, self.wall()), False)
            log.info("released the lease %s/%s", self.namespace, self.name)
        except Exception as exc:
            log.warning("could not release the lease: %s", exc)


# The elector of this process, when leader election is on (main.py sets it before kopf starts).
current: LeaderElector | None = None


def may_act() -> bool:
    """Whether this process may write (API writes, Events, catalog writes): always without leader
    election, else only while it can prove its lease."""
    return current is None or current.holds()
