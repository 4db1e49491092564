"""The controller's typed reading of Kubernetes objects (controller/objects.py): lenient as the
wire is, so a field left out, null or of another scalar type reads as before, and what is not
declared is ignored."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contentgen.api.reading import Condition, condition
from contentgen.controller.objects import CustomResource, Job, Pod, Workload
from contentgen.controller.pods import pod_state


def test_nulls_and_missing_fields_read_as_zeros() -> None:
    pod = Pod.of({"metadata": None, "spec": {"containers": None}, "status": {"conditions": None}})
    assert (pod.metadata.name, pod.spec.containers, pod.status.conditions) == ("", (), ())
    job = Job.of({"status": {"active": None, "succeeded": "2", "startTime": None}})
    assert (job.status.active, job.status.succeeded, job.status.start_time) == (0, 2, None)
    assert Workload.of({}).spec.active is None  # not said: active (only an explicit false deactivates)


def test_what_is_not_declared_is_ignored_and_scalars_are_read_as_words() -> None:
    raw = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"job-name": "j"}, "managedFields": [{"x": 1}]},
        "status": {"hostIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": True}]},
    }
    pod = Pod.of(raw)
    assert pod.metadata.labels == {"job-name": "j"}
    assert condition(pod.status.conditions, "Ready").status == "True"  # a JSON true read as the word
    assert condition(pod.status.conditions, "PodScheduled") == Condition()


def test_the_models_are_frozen_and_the_status_dict_is_a_copy() -> None:
    body = {"metadata": {"name": "a", "uid": "u"}, "spec": {"owner": "alice"}, "status": {"phase": "Running"}}
    resource = CustomResource.of(body)
    with pytest.raises(ValidationError):
        resource.metadata.name = "b"  # type: ignore[misc]
    resource.status["phase"] = "Failed"
    assert body["status"]["phase"] == "Running"  # the informer's body is never changed


def test_a_pod_of_no_job_is_not_read() -> None:
    assert pod_state({"metadata": {"name": "p", "labels": {"app": "x"}}}) is None
