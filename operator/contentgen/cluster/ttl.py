"""The TTL-after-finished controller: a finished Job (Complete or Failed) with
`spec.ttlSecondsAfterFinished` is deleted that many seconds after it finished (the
lastTransitionTime of its finished condition), with background propagation so the garbage
collector removes its pods. As upstream, the Job is read fresh from the API before the delete,
and the delete carries its resourceVersion as a precondition (an edited Job is looked at again).
"""

from __future__ import annotations

import time
from typing import Any

from .errors import ApiError
from .jobpolicy import epoch, is_finished
from .loop import Controller
from .store import Change

JOBS = ("batch", "jobs")


def expires_at(job: dict[str, Any]) -> float | None:
    """When the Job is due for deletion (seconds since the epoch), or None if it never is."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    finished = is_finished(job)
    if ttl is None or not finished or job["metadata"].get("deletionTimestamp"):
        return None
    cond = next(
        c
        for c in (job.get("status") or {}).get("conditions") or []
        if c.get("type") == finished and c.get("status") == "True"
    )
    at = epoch(cond.get("lastTransitionTime"))
    return None if at is None else at + float(ttl)


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished-controller"
    watches = (JOBS,)

    def observe(self, change: Change) -> None:
        if change.type != "DELETED" and expires_at(change.obj) is not None:
            self.enqueue((change.obj["metadata"]["namespace"], change.obj["metadata"]["name"]))

    def resync(self) -> None:
        with self.cp.store.lock:
            for job in self.cp.store.items(JOBS):
                if expires_at(job) is not None:
                    self.enqueue((job["metadata"]["namespace"], job["metadata"]["name"]))

    def sync(self, key: tuple[str, str]) -> None:
        ns, name = key
        job = self.read(*JOBS, ns, name)
        if job is None or (at := expires_at(job)) is None:
            return
        if time.time() < at:
            self.enqueue(key, at - time.time())
            return
        try:
            fresh = self.call("get", self.type(*JOBS), ns, name).body
        except ApiError as exc:
            if exc.code == 404:
                return
            raise
        if (at := expires_at(fresh)) is None:
            return
        if time.time() < at:
            self.enqueue(key, at - time.time())
            return
        options = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Background",
            "preconditions": {"resourceVersion": fresh["metadata"]["resourceVersion"]},
        }
        self.gone_ok("delete", self.type(*JOBS), ns, name, options)
