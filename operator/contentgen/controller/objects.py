"""The Kubernetes objects the controller reads (its resources, Jobs, Pods, Kueue Workloads) as
typed models of the fields it reads, parsed where they enter (pure).

The API server validated what it hands over; reading is as lenient as the wire: a field left out
or null reads as its zero, a word or a count is read from whatever scalar carries it (as
`str(x or "")` and `int(x or 0)` read it), and fields not declared here are ignored. Timestamps
stay the RFC 3339 strings the API server sends: the callers compare and show them as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator
from pydantic.alias_generators import to_camel


def _text(value: Any) -> str:
    return str(value) if value else ""


def _count(value: Any) -> int:
    return int(value or 0)


Text = Annotated[str, BeforeValidator(_text)]
Count = Annotated[int, BeforeValidator(_count)]
Flag = Annotated[bool, BeforeValidator(bool)]


class KubeModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_absent(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value is not None}
        return data

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Self:
        return cls.model_validate(raw)


class OwnerReference(KubeModel):
    uid: Text = ""
    controller: Flag = False


class Meta(KubeModel):
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


class Condition(KubeModel):
    """A condition of any object's status, as written: `status` is "True", "False" or "Unknown"."""

    type: Text = ""
    status: Text = ""
    reason: Text = ""
    message: Text = ""
    last_transition_time: str | None = None

    @property
    def true(self) -> bool:
        return self.status == "True"


def condition(conditions: tuple[Condition, ...], kind: str) -> Condition:
    """The first condition of type `kind`; an empty one where there is none."""
    return next((c for c in conditions if c.type == kind), Condition())


class CustomResource(KubeModel):
    """One of the operator's resources: metadata typed; spec and status as written (the status is
    read by its kind's model, controller/status.py, and written back whole)."""

    api_version: Text = ""
    kind: Text = ""
    metadata: Meta = Meta()
    spec: dict[str, Any] = {}
    status: dict[str, Any] = {}


# Pods and Jobs: the worker's container, its end and why a pod does not start


class EnvVar(KubeModel):
    name: Text = ""
    value: Text = ""


class Resources(KubeModel):
    limits: dict[str, Text] = {}


class Container(KubeModel):
    name: Text = ""
    env: tuple[EnvVar, ...] = ()
    resources: Resources = Resources()


class PodSpec(KubeModel):
    node_name: Text = ""
    readiness_gates: tuple[Any, ...] = ()
    containers: tuple[Container, ...] = ()

    def container(self, name: str) -> Container | None:
        return next((c for c in self.containers if c.name == name), None)


class Waiting(KubeModel):
    reason: Text = ""
    message: Text = ""


class Terminated(KubeModel):
    reason: Text = ""
    message: str | None = None  # the termination message; None where the container left none
    finished_at: Text = ""


class ContainerState(KubeModel):
    waiting: Waiting = Waiting()
    terminated: Terminated | None = None


class ContainerStatus(KubeModel):
    name: Text = ""
    state: ContainerState = ContainerState()


class PodStatus(KubeModel):
    phase: Text = ""
    conditions: tuple[Condition, ...] = ()
    container_statuses: tuple[ContainerStatus, ...] = ()


class Pod(KubeModel):
    metadata: Meta = Meta()
    spec: PodSpec = PodSpec()
    status: PodStatus = PodStatus()


class PodTemplate(KubeModel):
    spec: PodSpec = PodSpec()


class JobSpec(KubeModel):
    suspend: Flag = False
    template: PodTemplate = PodTemplate()


class JobStatus(KubeModel):
    active: Count = 0
    ready: Count = 0
    succeeded: Count = 0
    failed: Count = 0
    start_time: str | None = None
    completion_time: str | None = None
    conditions: tuple[Condition, ...] = ()


class Job(KubeModel):
    metadata: Meta = Meta()
    spec: JobSpec = JobSpec()
    status: JobStatus = JobStatus()


# Kueue's Workload (controller/kueue.py says what Kueue writes in it)


class AdmissionCheck(KubeModel):
    name: Text = ""
    state: Text = ""  # Pending | Ready | Retry | Rejected
    message: Text = ""


class Admission(KubeModel):
    cluster_queue: Text = ""  # where quota is reserved


class RequeueState(KubeModel):
    requeue_at: str | None = None
    count: Count = 0


class WorkloadSpec(KubeModel):
    active: Any = None  # deactivated only by an explicit false


class WorkloadStatus(KubeModel):
    conditions: tuple[Condition, ...] = ()
    admission_checks: tuple[AdmissionCheck, ...] = ()
    admission: Admission = Admission()
    requeue_state: RequeueState = RequeueState()


class Workload(KubeModel):
    metadata: Meta = Meta()
    spec: WorkloadSpec = WorkloadSpec()
    status: WorkloadStatus = WorkloadStatus()
