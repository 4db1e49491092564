"""The Kubernetes objects the controller reads (its resources, Jobs, Pods, Kueue Workloads) as
typed models of the fields it reads, parsed where they enter (pure; read as api/reading.py
reads: leniently, undeclared fields ignored, timestamps the strings the API server sends)."""

from __future__ import annotations

from typing import Any

from contentgen.api.reading import Condition, Count, Flag, Reading, Text


class OwnerReference(Reading):
    uid: Text = ""
    controller: Flag = False


class Meta(Reading):
    name: Text = ""
    namespace: Text = ""
    uid: Text = ""
    generation: Count = 0
    resource_version: Text = ""
    creation_timestamp: Text = ""
    deletion_timestamp: Text = ""
    labels: dict[str, Text] = {}
    annotations: dict[str, Text] = {}
    owner_references: tuple[OwnerReference, ...] = ()


class CustomResource(Reading):
    """One of the operator's resources: metadata typed; spec and status as written (the status is
    read by its kind's model, controller/status.py, and written back whole)."""

    api_version: Text = ""
    kind: Text = ""
    metadata: Meta = Meta()
    spec: dict[str, Any] = {}
    status: dict[str, Any] = {}


# Pods and Jobs: the worker's container, its end and why a pod does not start


class EnvVar(Reading):
    name: Text = ""
    value: Text = ""


class Resources(Reading):
    limits: dict[str, Text] = {}


class Container(Reading):
    name: Text = ""
    env: tuple[EnvVar, ...] = ()
    resources: Resources = Resources()


class PodSpec(Reading):
    node_name: Text = ""
    readiness_gates: tuple[Any, ...] = ()
    containers: tuple[Container, ...] = ()

    def container(self, name: str) -> Container | None:
        return next((c for c in self.containers if c.name == name), None)


class Waiting(Reading):
    reason: Text = ""
    message: Text = ""


class Terminated(Reading):
    reason: Text = ""
    message: str | None = None  # the termination message; None where the container left none
    finished_at: Text = ""


class ContainerState(Reading):
    waiting: Waiting = Waiting()
    terminated: Terminated | None = None


class ContainerStatus(Reading):
    name: Text = ""
    state: ContainerState = ContainerState()


class PodStatus(Reading):
    phase: Text = ""
    conditions: tuple[Condition, ...] = ()
    container_statuses: tuple[ContainerStatus, ...] = ()


class Pod(Reading):
    metadata: Meta = Meta()
    spec: PodSpec = PodSpec()
    status: PodStatus = PodStatus()


class PodTemplate(Reading):
    spec: PodSpec = PodSpec()


class JobSpec(Reading):
    suspend: Flag = False
    template: PodTemplate = PodTemplate()


class JobStatus(Reading):
    active: Count = 0
    ready: Count = 0
    succeeded: Count = 0
    failed: Count = 0
    start_time: str | None = None
    completion_time: str | None = None
    conditions: tuple[Condition, ...] = ()


class Job(Reading):
    metadata: Meta = Meta()
    spec: JobSpec = JobSpec()
    status: JobStatus = JobStatus()


# Kueue's Workload (controller/kueue.py says what Kueue writes in it)


class AdmissionCheck(Reading):
    name: Text = ""
    state: Text = ""  # Pending | Ready | Retry | Rejected
    message: Text = ""


class Admission(Reading):
    cluster_queue: Text = ""  # where quota is reserved


class RequeueState(Reading):
    requeue_at: str | None = None
    count: Count = 0


class WorkloadSpec(Reading):
    active: Any = None  # deactivated only by an explicit false


class WorkloadStatus(Reading):
    conditions: tuple[Condition, ...] = ()
    admission_checks: tuple[AdmissionCheck, ...] = ()
    admission: Admission = Admission()
    requeue_state: RequeueState = RequeueState()


class Workload(Reading):
    metadata: Meta = Meta()
    spec: WorkloadSpec = WorkloadSpec()
    status: WorkloadStatus = WorkloadStatus()
