"""Reading the Kueue Workload of a Job Kueue holds suspended (kueue.py says what it means): one
list in the Job's namespace, selected by Kueue's `kueue.x-k8s.io/job-uid` label, each time the
operator looks at the resource: its Job's events (Kueue suspending or resuming it), and the
recheck while it waits, at most every RECHECK_SECONDS.

No watch: Kueue's Workloads carry none of the Job's labels (only those Kueue's `labelKeysToCopy`
names, none by default), so no label selector limits a watch to ours, and a watch of them all
would carry every Workload in the namespaces watched, pod templates and all, and every status
write Kueue's scheduler makes to them (docs/cluster-gpus.md has the measurement).

Where Kueue is not installed (no such resource: 404) or the operator may not read Workloads (403:
the chart's `kueue.readWorkloads` is off), the message names the queue as it does without
Kueue's words: said once in the log, and asked again only after the resync interval (Kueue
installed, or the right granted, meanwhile).
"""

from __future__ import annotations

import logging
import time

from .kube import KubeError
from .kueue import VERSIONS, Workload, workload_of
from .observe import JobState
from .state import Operator

log = logging.getLogger("contentgen.operator")

RECHECK_SECONDS = 60.0  # the longest a held Job's resource waits for its Workload to be read again


def may_read(op: Operator) -> bool:
    """Whether a look now would read Workloads (they are readable, as far as known, or it is time
    to ask again)."""
    access = op.kueue
    return op.settings.read_kueue_workloads and (
        not access.unavailable or time.monotonic() >= access.retry_at
    )


async def read_workload(op: Operator, job: JobState) -> tuple[bool, Workload | None]:
    """(whether Kueue's Workloads were read, the Job's Workload: None when Kueue has made none)."""
    if not job.job_uid or not may_read(op):
        return False, None
    access = op.kueue
    for version in sorted(VERSIONS, key=lambda v: v != access.version):  # the one that answered first
        try:
            items = await op.kube.workloads(job.namespace, version, job.job_uid)
        except KubeError as exc:
            if exc.status == 404:  # not this version: another, or Kueue is not installed
                continue
            if exc.status == 403:
                _unavailable(
                    op,
                    "the operator may not list Kueue's Workloads (403): Queued messages name the queue "
                    "without Kueue's reason (the chart's kueue.readWorkloads grants it)",
                )
                return False, None
            raise
        access.version, access.unavailable = version, ""
        return True, workload_of(items, job.job_uid)
    _unavailable(
        op,
        f"Kueue's Workloads are not served (no workloads.kueue.x-k8s.io {' or '.join(VERSIONS)}: Kueue is "
        "not installed): Queued messages name the queue without Kueue's reason",
    )
    return False, None


def _unavailable(op: Operator, why: str) -> None:
    access = op.kueue
    access.unavailable, access.retry_at = why, time.monotonic() + op.settings.resync_interval_seconds
    if why not in access.said:
        access.said.add(why)
        log.warning("%s", why)
