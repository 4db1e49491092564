"""A run across nodes (pure): the Job a run would be (jobs.py) made into the JobSet of its
nodes, or into a Kubeflow Trainer TrainJob through its torch-distributed runtime, and their status
read as a Job's is (observe.JobState), so that every decision reads them alike.

JobSet (jobset.x-k8s.io/v1alpha2, v0.12): one replicated job `node` of N pods (an Indexed Job:
pod k is torchrun's node k, `NAME-node-0-K.NAME` by JobSet's headless Service), each with the
Job's pod; a pod that fails fails its Job (backoffLimit 0), and the failure policy restarts the
whole group (every pod again, the run resumed from its last checkpoint) up to the kind's backoff
limit, except a worker's permanent failure (exit 2, the Job's podFailurePolicy), which ends it;
the success policy: every pod done. Kueue queues it as one Workload (its queue-name label), all
pods at once.

TrainJob (trainer.kubeflow.org/v1alpha1, Kubeflow Trainer v2.3): the worker image, its command
and environment, N nodes of G processes and each node's resources; the rest of the Job's pod (its
labels, account, security, volumes, placement) patched onto the runtime's `node` job
(runtimePatches, the operator's own entry). Trainer sets the PET_* variables torchrun reads.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from contentgen.api.reading import Condition, Count, Flag, Reading

from .naming import LABEL_UID
from .objects import EnvVar, JobSpec, Meta
from .observe import JobState, since
from .placement import JOBSET, TRAINJOB, Placement
from .settings import OperatorSettings

JOBSET_API, TRAINJOB_API = "jobset.x-k8s.io/v1alpha2", "trainer.kubeflow.org/v1alpha1"
NODE = "node"  # the replicated job, as Trainer's torch runtime names its own
MANAGER = "contentgen.io/operator"  # the operator's entry among a TrainJob's runtimePatches
REQUIRED_TOPOLOGY = "kueue.x-k8s.io/podset-required-topology"  # Kueue's TAS: all the pod set in one
# Where each is served, as the operator creates, lists, watches and deletes it
PATHS = {
    JOBSET: ("/apis/jobset.x-k8s.io/v1alpha2", "jobsets"),
    TRAINJOB: ("/apis/trainer.kubeflow.org/v1alpha1", "trainjobs"),
}
KINDS = {JOBSET: "JobSet", TRAINJOB: "TrainJob"}


def across_nodes(job: dict[str, Any], placed: Placement, settings: OperatorSettings) -> dict[str, Any]:
    """The run's object for `placed`: the Job itself, or its JobSet or TrainJob, their pods asking
    Kueue's topology-aware scheduling for one domain of the chart's level (gpu.training.topology)."""
    if placed.nodes > 1 and (level := settings.gpu_training.topology):
        job = copy.deepcopy(job)
        pod = job["spec"]["template"]["metadata"]
        pod["annotations"] = {**pod.get("annotations", {}), REQUIRED_TOPOLOGY: level}
    if placed.backend == JOBSET:
        return jobset(job, placed)
    if placed.backend == TRAINJOB:
        return trainjob(job, placed, settings)
    return job


def jobset(job: dict[str, Any], placed: Placement) -> dict[str, Any]:
    """The JobSet of a run's `placed.nodes` pods, each the Job's pod."""
    spec = copy.deepcopy(job["spec"])
    limit = spec.pop("backoffLimit")
    ttl = spec.pop("ttlSecondsAfterFinished")
    pod = spec["template"]["spec"]
    pod["containers"][0]["ports"] = [{"name": "torchrun", "containerPort": _port(pod)}]
    spec.update(
        {
            "parallelism": placed.nodes,
            "completions": placed.nodes,
            "completionMode": "Indexed",
            "backoffLimit": 0,
        }
    )
    return {
        "apiVersion": JOBSET_API,
        "kind": "JobSet",
        "metadata": job["metadata"],
        "spec": {
            "failurePolicy": {
                "maxRestarts": limit,
                # a worker's permanent failure (exit 2) ends the run; any other restarts the group
                "rules": [
                    {"name": "permanent", "action": "FailJobSet", "onJobFailureReasons": ["PodFailurePolicy"]}
                ],
            },
            "successPolicy": {"operator": "All", "targetReplicatedJobs": [NODE]},
            "network": {"enableDNSHostnames": True, "publishNotReadyAddresses": True},
            "ttlSecondsAfterFinished": ttl,
            "replicatedJobs": [{"name": NODE, "replicas": 1, "template": {"spec": spec}}],
        },
    }


def trainjob(job: dict[str, Any], placed: Placement, settings: OperatorSettings) -> dict[str, Any]:
    """The TrainJob of a run: Trainer's torch-distributed runtime with the Job's worker."""
    pod = job["spec"]["template"]["spec"]
    worker = pod["containers"][0]
    patched_pod = {
        key: pod[key]
        for key in (
            "serviceAccountName",
            "imagePullSecrets",
            "securityContext",
            "volumes",
            "nodeSelector",
            "affinity",
            "tolerations",
            # not terminationGracePeriodSeconds: Trainer v2.3 sets it on the JobSet it makes, then
            # leaves it out of its update once Kueue admits the TrainJob, which JobSet refuses
            # (immutable; found on the real ones): the pods keep Kubernetes' 30 s
        )
        if pod.get(key)
    }
    patched_pod["containers"] = [
        {"name": NODE, "volumeMounts": worker["volumeMounts"], "securityContext": worker["securityContext"]}
    ]
    return {
        "apiVersion": TRAINJOB_API,
        "kind": "TrainJob",
        "metadata": job["metadata"],
        "spec": {
            "runtimeRef": {
                "name": settings.gpu_training.runtime,
                "apiGroup": "trainer.kubeflow.org",
                "kind": "ClusterTrainingRuntime",
            },
            "activeDeadlineSeconds": job["spec"]["activeDeadlineSeconds"],
            "trainer": {
                "image": worker["image"],
                "command": ["contentgen"],
                "args": worker["args"],
                "env": worker["env"],
                "numNodes": placed.nodes,
                "numProcPerNode": placed.gpus,
                "resourcesPerNode": worker["resources"],
            },
            "runtimePatches": [
                {
                    "manager": MANAGER,
                    "trainingRuntimeSpec": {
                        "template": {
                            "spec": {
                                "replicatedJobs": [
                                    {
                                        "name": NODE,
                                        "template": {
                                            "spec": {
                                                "template": {
                                                    "metadata": job["spec"]["template"]["metadata"],
                                                    "spec": patched_pod,
                                                }
                                            }
                                        },
                                    }
                                ]
                            }
                        }
                    },
                }
            ],
        },
    }


def _port(pod: Mapping[str, Any]) -> int:
    env = {e["name"]: e.get("value") for e in pod["containers"][0].get("env") or []}
    return int(env.get("PET_MASTER_PORT") or 29400)


# --- their status, read as a Job's ------------------------------------------------------------------


class _Counts(Reading):
    ready: Count = 0
    succeeded: Count = 0
    failed: Count = 0
    active: Count = 0


class _Status(Reading):
    conditions: tuple[Condition, ...] = ()
    replicated_jobs_status: tuple[_Counts, ...] = ()  # a JobSet's
    jobs_status: tuple[_Counts, ...] = ()  # a TrainJob's
    restarts: Count = 0  # a JobSet's group restarts


class _JobTemplate(Reading):
    spec: JobSpec = JobSpec()


class _Replicated(Reading):
    template: _JobTemplate = _JobTemplate()


class _Trainer(Reading):
    env: tuple[EnvVar, ...] = ()


class _Spec(Reading):
    suspend: Flag = False
    replicated_jobs: tuple[_Replicated, ...] = ()  # a JobSet's
    trainer: _Trainer = _Trainer()  # a TrainJob's


class _Object(Reading):
    metadata: Meta = Meta()
    spec: _Spec = _Spec()
    status: _Status = _Status()


def run_state(raw: Mapping[str, Any], backend: str) -> JobState | None:
    """A JobSet's or a TrainJob's state as a Job's (None for one this operator did not make):
    active, ready, succeeded and failed summed over its jobs; complete at its Completed (JobSet)
    or Complete (TrainJob) condition; failed at its Failed condition, with its reason."""
    obj = _Object.of(raw)
    meta, status = obj.metadata, obj.status
    if LABEL_UID not in meta.labels:
        return None
    true = {c.type: c for c in status.conditions if c.true}
    done = true.get("Completed") or true.get("Complete")
    failed = true.get("Failed")
    counts = status.replicated_jobs_status or status.jobs_status
    total = {k: sum(getattr(c, k) for c in counts) for k in ("active", "ready", "succeeded", "failed")}
    return replace(
        JobState.of_meta(meta),
        active=total["active"],
        ready=total["ready"],
        succeeded=total["succeeded"],
        failed=total["failed"],
        complete=done is not None,
        failed_reason=(failed.reason or "Failed") if failed is not None else "",
        failed_message=failed.message if failed is not None else "",
        start_time=meta.creation_timestamp or None,
        completion_time=since(done),
        finished_at=since(done) or since(failed),
        suspended=obj.spec.suspend,
        snapshot=_spec_of(obj),
        what=KINDS[backend],
        restarts=status.restarts,
    )


def _spec_of(obj: _Object) -> str:
    """The run's SpecSnapshot as its worker gets it (CONTENTGEN_SPEC)."""
    envs = [
        *obj.spec.trainer.env,
        *(
            e
            for r in obj.spec.replicated_jobs
            for c in r.template.spec.template.spec.containers
            for e in c.env
        ),
    ]
    return next((e.value for e in envs if e.name == "CONTENTGEN_SPEC"), "")
