"""RBAC as the API server enforces it, with the chart's rendered roles: what the operator and
the worker may do, the 403s for what they may not, OwnerReferencesPermissionEnforcement, and
escalation prevention."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from contentgen.cluster.apiserver import User
from contentgen.cluster.errors import ApiError
from contentgen.cluster.rbac import service_account_user
from contentgen.cluster.server import ADMIN, LocalControlPlane
from tests.cluster.api_fixtures import Api, chart_rbac, control_plane, lora, refused

CG = "contentgen.io"
OPERATOR = service_account_user("contentgen", "contentgen-operator")
WORKER = service_account_user("team", "contentgen-worker")


@pytest.fixture
def local(tmp_path: Path) -> LocalControlPlane:
    local = control_plane(tmp_path)
    Api(local.plane).create(
        "", "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    )
    return local


def operator_job(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "demo-1",
            "ownerReferences": [
                {
                    "apiVersion": "contentgen.io/v1alpha1",
                    "kind": "LoraTraining",
                    "name": owner["metadata"]["name"],
                    "uid": owner["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "worker", "image": "w:1"}]}
            },
        },
    }


def test_the_operator_may_do_its_work_and_nothing_more(local: LocalControlPlane) -> None:
    admin, operator = Api(local.plane), Api(local.plane).as_user(OPERATOR)
    admin.create(CG, "loratrainings", lora(), "team")
    listed = operator.call("list", CG, "loratrainings", "team").body
    assert [i["metadata"]["name"] for i in listed["items"]] == ["demo"]
    refused(lambda: operator.get(CG, "loratrainings", "team", "demo"), 403)  # it reads from its watch
    operator.patch(CG, "loratrainings", "team", "demo", {"status": {"phase": "Pending"}}, sub="status")
    error = refused(lambda: operator.delete(CG, "loratrainings", "team", "demo"), 403)
    assert error.message == (
        'loratrainings.contentgen.io "demo" is forbidden: '
        'User "system:serviceaccount:contentgen:contentgen-operator" '
        'cannot delete resource "loratrainings" in API group "contentgen.io" in the namespace "team"'
    )
    error = refused(lambda: operator.call("list", "", "secrets", "team"), 403)
    assert error.message.endswith('cannot list resource "secrets" in API group "" in the namespace "team"')


def test_jobs_owned_with_block_owner_deletion_pass_owner_reference_enforcement(
    local: LocalControlPlane,
) -> None:
    """OwnerReferencesPermissionEnforcement (OpenShift, hardened clusters): the chart grants
    `update` on <plural>/finalizers, so the operator's Jobs are admitted."""
    admin, operator = Api(local.plane), Api(local.plane).as_user(OPERATOR)
    owner = admin.create(CG, "loratrainings", lora(), "team")
    created = operator.create("batch", "jobs", operator_job(owner), "team")
    assert created["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True


def test_without_the_finalizers_grant_the_job_is_forbidden(tmp_path: Path) -> None:
    """The check that would have caught the missing grant."""
    local = control_plane(tmp_path, rbac=False)
    rbac = copy.deepcopy(chart_rbac())
    role = next(
        d for d in rbac if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "contentgen-operator"
    )
    role["rules"] = [
        r for r in role["rules"] if not any(x.endswith("/finalizers") for x in r.get("resources", []))
    ]
    local.apply_all(rbac)
    admin, operator = Api(local.plane), Api(local.plane).as_user(OPERATOR)
    admin.create("", "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    owner = admin.create(CG, "loratrainings", lora(), "team")
    error = refused(lambda: operator.create("batch", "jobs", operator_job(owner), "team"), 403)
    assert error.message == (
        'jobs.batch "demo-1" is forbidden: cannot set blockOwnerDeletion if an ownerReference refers to a '
        "resource you can't set finalizers on: , <nil>"
    )


def test_the_worker_may_only_patch_status_in_its_namespace(local: LocalControlPlane) -> None:
    admin, operator = Api(local.plane), Api(local.plane).as_user(OPERATOR)
    admin.create(CG, "loratrainings", lora(), "team")
    # the operator gives the worker its ServiceAccount and binding (cluster-wide install)
    operator.create(
        "",
        "serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "contentgen-worker"}},
        "team",
    )
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "contentgen-worker"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "contentgen-worker",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "contentgen-worker", "namespace": "team"}],
    }
    worker = Api(local.plane).as_user(WORKER)
    patch = [{"op": "add", "path": "/status", "value": {"progress": 5, "stage": "fetch"}}]
    refused(lambda: worker.patch(CG, "loratrainings", "team", "demo", patch, kind="json", sub="status"), 403)
    operator.create("rbac.authorization.k8s.io", "rolebindings", binding, "team")  # takes effect at once
    worker.patch(CG, "loratrainings", "team", "demo", patch, kind="json", sub="status")
    refused(lambda: worker.get(CG, "loratrainings", "team", "demo"), 403)
    refused(lambda: worker.patch(CG, "loratrainings", "team", "demo", {"spec": {"tags": ["x"]}}), 403)
    admin.create("", "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    admin.create(CG, "loratrainings", lora(), "other")
    refused(lambda: worker.patch(CG, "loratrainings", "other", "demo", patch, kind="json", sub="status"), 403)
    admin.delete("rbac.authorization.k8s.io", "rolebindings", "team", "contentgen-worker")  # so does this
    refused(lambda: worker.patch(CG, "loratrainings", "team", "demo", patch, kind="json", sub="status"), 403)


def test_nobody_grants_what_they_do_not_hold(local: LocalControlPlane) -> None:
    """Escalation prevention: the operator may bind the worker's ClusterRole only because it
    holds its permissions; binding cluster-admin is refused."""
    operator = Api(local.plane).as_user(OPERATOR)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "contentgen-worker"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "contentgen-worker", "namespace": "team"}],
    }
    error = refused(
        lambda: operator.create("rbac.authorization.k8s.io", "rolebindings", binding, "team"), 403
    )
    assert "is attempting to grant RBAC permissions not currently held" in error.message


def test_service_account_admission(local: LocalControlPlane) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"serviceAccountName": "missing", "containers": [{"name": "c", "image": "i:1"}]},
    }
    error = refused(lambda: Api(local.plane).create("", "pods", pod, "team"), 403)
    assert error.message == (
        'pods "p" is forbidden: error looking up service account team/missing: '
        'serviceaccount "missing" not found'
    )


def test_impersonation_needs_the_impersonate_verb(local: LocalControlPlane) -> None:
    class Headers(dict[str, str]):
        def get_all(self, name: str) -> list[str]:
            return [self[name]] if name in self else []

    as_operator = Headers({"Impersonate-User": OPERATOR.name})
    assert local.authenticator.impersonate(ADMIN, as_operator) == OPERATOR
    nobody = User("eve", ("system:authenticated",))
    with pytest.raises(ApiError) as info:
        local.authenticator.impersonate(nobody, as_operator)
    assert info.value.code == 403


def test_decisions_are_kept_within_bounds_and_all_go_to_the_audit_log() -> None:
    import io
    import json

    from contentgen.cluster.apiserver import ControlPlane, Request

    plane = ControlPlane(decisions_kept=100)
    plane.audit = io.StringIO()
    configmaps = plane.type_of("", "configmaps")
    for i in range(300):
        plane.handle(Request(ADMIN, "list", configmaps, f"ns-{i}"))
    kept = plane.decisions
    assert len(kept) == 100 and plane.decisions_made == 300
    assert [d.namespace for d in kept] == [f"ns-{i}" for i in range(200, 300)]  # the latest
    lines = [json.loads(line) for line in plane.audit.getvalue().splitlines()]
    assert len(lines) == 300 and lines[0]["namespace"] == "ns-0" and lines[0]["verb"] == "list"
    assert lines[-1] == {
        "user": "kubernetes-admin",
        "verb": "list",
        "group": "",
        "resource": "configmaps",
        "namespace": "ns-299",
        "name": "",
        "allowed": True,
    }
