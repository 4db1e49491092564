"""Where a run of several GPUs goes (pure): the GPUs on each node and the nodes a LoraTraining's
spec.resources asks for, what runs its pods (a Job on one node; a JobSet, or a Kubeflow Trainer
TrainJob, on several), and the refusal in one line of what the cluster's chart says no node, or no
installed controller, can give (docs/cluster-training.md#several-gpus)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contentgen.api.base_models import one_gpu

from .job_defaults import GpuJob
from .settings import OperatorSettings

JOB, JOBSET, TRAINJOB = "job", "jobset", "trainjob"


@dataclass(frozen=True)
class Placement:
    """A run's GPUs: `gpus` on each of `nodes` pods, run by `backend`."""

    gpus: int = 1
    nodes: int = 1
    backend: str = JOB
    processes_per_gpu: bool = True  # a training's: a process on each GPU (torchrun); else one in all

    @property
    def total(self) -> int:
        """The GPUs it holds (what its GPU-seconds are × )."""
        return self.gpus * self.nodes

    @property
    def processes(self) -> bool:
        """Whether its worker runs under torchrun (more than one training process)."""
        return self.processes_per_gpu and self.total > 1


@dataclass(frozen=True)
class Refused:
    reason: str  # TooManyGpus, BackendUnavailable
    message: str


def asked(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """The spec's resources ({} where it has none: another kind, or left out)."""
    resources = spec.get("resources")
    return resources if isinstance(resources, Mapping) else {}


def placement(spec: Mapping[str, Any], gpu: GpuJob, settings: OperatorSettings) -> Placement | Refused:
    """Where a run of provider cluster asking `spec.resources` goes, or why it cannot."""
    resources = asked(spec)
    gpus = int(resources.get("gpus") or (1 if one_gpu(spec) else gpu.count))
    nodes = int(resources.get("nodes") or 1)
    wanted = str(resources.get("backend") or "auto")
    training = settings.gpu_training
    backend = wanted if wanted != "auto" else (JOB if nodes == 1 else training.backend)
    per_node = training.gpus_per_node
    if per_node and gpus > per_node:
        more = f", with resources.nodes for more (up to {training.max_nodes or 'any number of'} nodes)"
        return Refused(
            "TooManyGpus",
            f"resources.gpus {gpus}: no GPU node of this cluster holds more than {per_node} "
            f"{gpu.resource_name} (the chart's gpu.training.gpusPerNode): ask for at most {per_node} on each "
            f"node{more}",
        )
    if training.max_nodes and nodes > training.max_nodes:
        return Refused(
            "TooManyGpus",
            f"resources.nodes {nodes}: this cluster gives a training at most {training.max_nodes} GPU "
            f"nodes (the chart's gpu.training.maxNodes): ask for at most {training.max_nodes}, or more GPUs "
            "on each",
        )
    if backend not in training.backends:
        runs = ", ".join(training.backends)
        return Refused(
            "BackendUnavailable",
            f"resources.backend {backend}: this cluster runs no {_controller(backend)} (the chart's "
            f"gpu.training.backends: {runs}): use one of those, or ask the platform team to install it",
        )
    return Placement(gpus, nodes, backend)


def _controller(backend: str) -> str:
    return {JOBSET: "JobSet", TRAINJOB: "Kubeflow Trainer", JOB: "Jobs"}.get(backend, backend)
