"""One leader among operator replicas, by a coordination.k8s.io/v1 Lease, as client-go's
leaderelection does it: acquire the Lease when it is free or expired, renew it every
`retry_period`, and give up (the process exits and is restarted) when it could not be renewed
for `renew_deadline`. Expiry is judged by when this replica last saw the Lease change, not by
the holder's clock. A replica that stops cleanly releases the Lease so the next one takes over
at once; after a crash, the restarted replica (same identity: the pod name) takes it back at once,
and a new pod waits at most `lease_duration`.

`decide` is the pure part (what to write, given the Lease as read and when it last changed);
`LeaderElector` is the loop around two injected calls (read, write).
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
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def decide(
    lease: LeaseBody | None,
    identity: str,
    now: float,
    observed_at: float,
    timing: Timing,
    name: str,
    namespace: str,
) -> LeaseBody | None:
    """The Lease to write to hold leadership, or None when another holder's Lease is still valid.
    `observed_at` is when this replica first saw the Lease as it is now (its own clock)."""
    spec_now = _micro_time(now)
    if lease is None:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "holderIdentity": identity,
                "leaseDurationSeconds": int(timing.lease_duration),
                "acquireTime": spec_now,
                "renewTime": spec_now,
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
        updated["spec"]["acquireTime"] = spec_now
        updated["spec"]["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
    updated["spec"]["holderIdentity"] = identity
    updated["spec"]["leaseDurationSeconds"] = int(timing.lease_duration)
    updated["spec"]["renewTime"] = spec_now
    return updated


def released(lease: LeaseBody) -> LeaseBody:
    """What a leader writes when it stops cleanly: no holder, so the next replica need not wait."""
    spec = dict(lease.get("spec") or {})
    spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=_micro_time(time.time()))
    return {**lease, "spec": spec}


class LeaderElector:
    """`read()` returns the Lease or None; `write(lease, create)` creates or updates it (an update
    carries the resourceVersion read, so two replicas cannot both win) and raises on conflict."""

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
        self.leading = threading.Event()
        self.stopped = threading.Event()

    def try_acquire_or_renew(self) -> bool:
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
        wanted = decide(lease, self.identity, now, observed_at, self.timing, self.name, self.namespace)
        if wanted is None:
            return False
        if wanted.get("spec", {}).get("renewTime"):
            wanted["spec"]["renewTime"] = _micro_time(self.wall())
        try:
            self._lease = self.write(wanted, lease is None)
        except Exception as exc:  # a conflict: someone else wrote first
            log.info("lease %s/%s not taken: %s", self.namespace, self.name, exc)
            return False
        self._seen = (str(self._lease["metadata"].get("resourceVersion", "")), now)
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
        """Renew until `stop` (then release) or until renewing failed for renew_deadline (then
        `on_lost`, which should end the process: a replica that lost the Lease must not act)."""
        last_renewed = self.clock()
        while not stop.wait(self.timing.retry_period):
            if self.try_acquire_or_renew():
                last_renewed = self.clock()
            elif self.clock() - last_renewed > self.timing.renew_deadline:
                log.error(
                    "lost the lease %s/%s: it could not be renewed for %.0f s",
                    self.namespace,
                    self.name,
                    self.timing.renew_deadline,
                )
                self.leading.clear()
                on_lost()
                return
        self.release()

    def release(self) -> None:
        if self._lease is None or self._lease.get("spec", {}).get("holderIdentity") != self.identity:
            return
        try:
            self.write(released(self._lease), False)
            log.info("released the lease %s/%s", self.namespace, self.name)
        except Exception as exc:
            log.warning("could not release the lease: %s", exc)
        self.leading.clear()
