"""What runs a resource's generation, made and deleted: a Job (kube.py), or across nodes a JobSet
or a TrainJob (jobsets.py), each by the same rules: created once under its deterministic name (one
of that name that is not this resource's is never touched: JobNameTaken), deleted with its pods
(foreground: its pods first)."""

from __future__ import annotations

from typing import Any

from .jobsets import KINDS, PATHS, run_state
from .kube import Kube
from .observe import JobState, job_state

BACKENDS = {kind: backend for backend, kind in KINDS.items()}  # JobSet -> jobset, ...


async def create(kube: Kube, manifest: dict[str, Any]) -> bool:
    """Create the run's object; False when this resource's of that name exists already."""
    backend = BACKENDS.get(str(manifest["kind"]))
    if backend is None:
        return await kube.create_job(manifest)
    prefix, plural = PATHS[backend]
    return await kube.create_named(
        f"{prefix}/namespaces/{manifest['metadata']['namespace']}/{plural}", manifest
    )


async def delete(kube: Kube, job: JobState, *, propagation: str = "Background") -> None:
    """Delete the run's object and its pods (Foreground: its pods first)."""
    backend = BACKENDS.get(job.what)
    if backend is None:
        await kube.delete_job(job.namespace, job.name, propagation=propagation)
        return
    prefix, plural = PATHS[backend]
    await kube.delete_object(f"{prefix}/namespaces/{job.namespace}/{plural}/{job.name}", propagation)


def state_of(manifest: dict[str, Any]) -> JobState | None:
    """What the watch will show of the object `manifest` makes, as a Job's state."""
    backend = BACKENDS.get(str(manifest["kind"]))
    return job_state(manifest) if backend is None else run_state(manifest, backend)


def pods_job(job: JobState) -> str:
    """The Job whose FailedCreate Events say why a run's pods were not made: the run's own Job, or
    a JobSet's (or TrainJob's) first node's."""
    return job.name if job.what == "Job" else f"{job.name}-node-0"
