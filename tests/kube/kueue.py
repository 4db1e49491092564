"""Kueue's part in the cluster tests, played by the test: its webhook suspending a Job that names a
queue (a MutatingAdmissionPolicy), its Workload API (a CRD of our own, structural, with the
fields the operator reads, written from Kueue's Go types in apis/kueue/v1beta2/workload_types.go,
release v0.19.2), and the Workload its job reconciler makes for a Job, with the conditions its
scheduler writes."""

from __future__ import annotations

import hashlib
from typing import Any

from localcluster.client import ApiError
from tests.kube.harness import Cluster, wait_for

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
SUSPEND_POLICY = "kueue-suspends-queued-jobs"
WORKLOADS = "/apis/kueue.x-k8s.io/v1beta2/namespaces/{namespace}/workloads"
# The scheduler's words when a ClusterQueue has no GPU left (flavorassigner: Assignment.Message).
NO_GPU_LEFT = (
    "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor "
    "default-flavor, 1 more needed"
)


def suspend_like_kueue(c: Cluster) -> None:
    """Kueue's webhook suspends a Job that names a queue when it is created (jobframework's
    ApplyDefaultForSuspend); here a MutatingAdmissionPolicy does the same."""
    group = "/apis/admissionregistration.k8s.io/v1"
    rules = [{"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["jobs"]}]
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": SUSPEND_POLICY},
        "spec": {
            "matchConstraints": {"resourceRules": rules},
            "matchConditions": [
                {
                    "name": "names-a-queue",
                    "expression": f"has(object.metadata.labels) && '{QUEUE_LABEL}' in object.metadata.labels",
                }
            ],
            "failurePolicy": "Fail",
            "reinvocationPolicy": "Never",
            "mutations": [
                {
                    "patchType": "ApplyConfiguration",
                    "applyConfiguration": {"expression": "Object{spec: Object.spec{suspend: true}}"},
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": SUSPEND_POLICY},
        "spec": {"policyName": SUSPEND_POLICY},
    }
    for path, obj in (
        (f"{group}/mutatingadmissionpolicies", policy),
        (f"{group}/mutatingadmissionpolicybindings", binding),
    ):
        try:
            c.admin.create(path, obj)
        except ApiError as exc:
            if exc.code != 409:  # made by an earlier test on this cluster
                raise
    probe = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "probe", "labels": {QUEUE_LABEL: "probe"}},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "contentgen-worker"}],
                }
            }
        },
    }

    def in_force() -> bool:  # the API server loads a new policy a moment after it is created
        made = c.admin.request(
            "POST", "/apis/batch/v1/namespaces/default/jobs", body=probe, params={"dryRun": "All"}
        )
        return bool(made["spec"].get("suspend"))

    wait_for(in_force, 60, "the suspending policy in force")


def _string(**extra: Any) -> dict[str, Any]:
    return {"type": "string", **extra}


def _int32(**extra: Any) -> dict[str, Any]:
    return {"type": "integer", "format": "int32", **extra}


def _list_map(key: str, most: int, required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """A list of objects keyed by `key` (+listType=map in Kueue's types)."""
    return {
        "type": "array",
        "maxItems": most,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": [key],
        "items": {"type": "object", "required": required, "properties": properties},
    }


# metav1.Condition, as every CRD controller-gen makes states it
CONDITION = {
    "type": _string(maxLength=316),
    "status": _string(enum=["True", "False", "Unknown"]),
    "reason": _string(maxLength=1024),
    "message": _string(maxLength=32768),
    "lastTransitionTime": _string(format="date-time"),
    "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
}

WORKLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": _string(),
        "kind": _string(),
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "queueName": _string(maxLength=253),
                "active": {"type": "boolean", "default": True},
                "priority": _int32(),
                "podSets": _list_map(
                    "name",
                    18,
                    ["name"],
                    {
                        "name": _string(maxLength=63),
                        "count": _int32(minimum=0, default=1),
                        # a PodTemplateSpec: not read by the operator
                        "template": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                ),
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "conditions": _list_map(
                    "type", 16, ["type", "status", "lastTransitionTime", "reason", "message"], CONDITION
                ),
                "admission": {
                    "type": "object",
                    "required": ["clusterQueue", "podSetAssignments"],
                    "properties": {
                        "clusterQueue": _string(maxLength=253),
                        "podSetAssignments": _list_map(
                            "name",
                            18,
                            ["name"],
                            {
                                "name": _string(maxLength=63),
                                "flavors": {"type": "object", "additionalProperties": _string()},
                                "count": _int32(minimum=0),
                            },
                        ),
                    },
                },
                "requeueState": {
                    "type": "object",
                    "properties": {"count": _int32(minimum=0), "requeueAt": _string(format="date-time")},
                },
                "admissionChecks": _list_map(
                    "name",
                    8,
                    ["name", "state", "lastTransitionTime", "message"],
                    {
                        "name": _string(maxLength=316),
                        "state": _string(enum=["Pending", "Ready", "Retry", "Rejected"]),
                        "message": _string(maxLength=32768),
                        "lastTransitionTime": _string(format="date-time"),
                    },
                ),
            },
        },
    },
}

WORKLOAD_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "workloads.kueue.x-k8s.io"},
    "spec": {
        "group": "kueue.x-k8s.io",
        "scope": "Namespaced",
        "names": {
            "kind": "Workload",
            "listKind": "WorkloadList",
            "plural": "workloads",
            "singular": "workload",
            "shortNames": ["kwl"],
        },
        "versions": [
            {
                "name": "v1beta2",  # Kueue's storage version since 0.16
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": WORKLOAD_SCHEMA},
            }
        ],
    },
}


def install_workloads(c: Cluster) -> None:
    """Kueue's Workload API, served once the CRD is Established."""
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    try:
        c.admin.create(crds, WORKLOAD_CRD)
    except ApiError as exc:
        if exc.code != 409:
            raise

    def established() -> bool:
        crd = c.admin.get(f"{crds}/{WORKLOAD_CRD['metadata']['name']}")
        return any(
            x["type"] == "Established" and x["status"] == "True"
            for x in (crd.get("status") or {}).get("conditions") or []
        )

    wait_for(established, 60, "Kueue's Workload CRD established")


def workload_name(job: dict[str, Any]) -> str:
    """The name Kueue gives a batch/v1 Job's Workload: `job-{name}-` and 5 hex digits of a SHA-1
    of the Job's kind, group, name and uid (jobframework.GetWorkloadNameForOwnerWithGVK)."""
    meta = job["metadata"]
    digest = hashlib.sha1(f"Job\nbatch\n{meta['name']}\n{meta['uid']}".encode()).hexdigest()
    return f"job-{meta['name']}"[:247] + f"-{digest[:5]}"


def make_workload(c: Cluster, job: dict[str, Any]) -> dict[str, Any]:
    """The Workload Kueue's job reconciler makes for `job` (jobframework.ConstructWorkload): in the
    Job's namespace, controlled by the Job, labelled with its uid, no status yet."""
    meta = job["metadata"]
    workload = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Workload",
        "metadata": {
            "name": workload_name(job),
            "labels": {"kueue.x-k8s.io/job-uid": meta["uid"]},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "queueName": meta["labels"][QUEUE_LABEL],
            "podSets": [{"name": "main", "count": 1, "template": job["spec"]["template"]}],
        },
    }
    made: dict[str, Any] = c.admin.create(WORKLOADS.format(namespace=meta["namespace"]), workload)
    return made


def set_conditions(
    c: Cluster, workload: dict[str, Any], *conditions: tuple[str, str, str, str], **status: Any
) -> None:
    """Kueue writing the Workload's status: (type, status, reason, message) each, and `status`'s
    other fields (admission, requeueState)."""
    meta = workload["metadata"]
    written = [
        {
            "type": kind,
            "status": state,
            "reason": reason,
            "message": message,
            "lastTransitionTime": "2026-11-21T12:00:00Z",
            "observedGeneration": 1,
        }
        for kind, state, reason, message in conditions
    ]
    path = WORKLOADS.format(namespace=meta["namespace"]) + f"/{meta['name']}/status"
    c.admin.patch(path, {"status": {"conditions": written, **status}})
