"""pods/binding and pods/eviction as kube-apiserver's pod registry does them
(pkg/registry/core/pod/storage/storage.go `BindingREST`, eviction.go `EvictionREST`): they change
or delete the pod named in the URL and answer 201 with a Status, never a new object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contentgen.cluster.apiserver import User
from contentgen.cluster.server import LocalControlPlane
from tests.cluster.api_fixtures import Api, control_plane, refused

SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


@pytest.fixture
def local(tmp_path: Path) -> LocalControlPlane:
    local = control_plane(tmp_path, install_crds=False, rbac=False)
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    Api(local.plane).create("", "serviceaccounts", account, "default")
    return local


@pytest.fixture
def api(local: LocalControlPlane) -> Api:
    return Api(local.plane)


def pod(name: str = "p", grace: int = 30) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": grace, "containers": [{"name": "c", "image": "i:1"}]},
    }


def binding(name: str = "p", node: str = "n1", **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, **metadata},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }


def eviction(name: str = "p", **delete_options: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}
    if delete_options:
        body["deleteOptions"] = delete_options
    return body


def bind(api: Api, body: dict[str, Any], name: str = "p") -> Any:
    return api.call("create", "", "pods", "default", name, body, sub="binding")


def evict(api: Api, body: dict[str, Any], name: str = "p", **kw: Any) -> Any:
    return api.call("create", "", "pods", "default", name, body, sub="eviction", **kw)


def pod_names(api: Api) -> list[str]:
    return [i["metadata"]["name"] for i in api.call("list", "", "pods", "default").body["items"]]


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in obj.get("status", {}).get("conditions") or [] if c["type"] == type_), None)


# --- pods/binding -----------------------------------------------------------------------------------


def test_a_binding_assigns_the_node_once(api: Api) -> None:
    created = api.create("", "pods", pod(), "default")
    response = bind(
        api, binding(annotations={"scheduler.example/decision": "x"}, uid=created["metadata"]["uid"])
    )
    assert (response.code, response.body) == (201, SUCCESS)
    bound = api.get("", "pods", "default", "p")
    assert bound["spec"]["nodeName"] == "n1"
    assert bound["metadata"]["annotations"] == {"scheduler.example/decision": "x"}
    scheduled = condition(bound, "PodScheduled")
    assert scheduled is not None and scheduled["status"] == "True" and scheduled["lastTransitionTime"]
    assert pod_names(api) == ["p"]  # nothing was made from the Binding
    error = refused(lambda: bind(api, binding(node="n2")), 409)
    assert (
        error.message
        == 'Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node "n1"'
    )
    assert api.get("", "pods", "default", "p")["spec"]["nodeName"] == "n1"


def test_a_binding_is_checked_before_it_is_applied(api: Api) -> None:
    api.create("", "pods", pod(), "default")
    error = refused(lambda: bind(api, binding(name="q")), 400)
    assert error.message == "name in URL does not match name in Binding object"
    no_target = binding()
    no_target["target"] = {"kind": "Node"}
    # ValidatePodBinding's aggregate error is not an API status: the real server answers 500
    error = refused(lambda: bind(api, no_target), 500)
    assert error.message == "target.name: Required value"
    assert "reason" not in error.status()
    error = refused(lambda: bind(api, binding(uid="not-the-uid")), 409)
    assert "Precondition failed: UID in precondition: not-the-uid" in error.message
    error = refused(lambda: bind(api, binding(name="missing"), name="missing"), 404)
    assert error.message == 'pods "missing" not found'
    assert "nodeName" not in api.get("", "pods", "default", "p")["spec"]


def test_a_deleting_pod_cannot_be_bound(api: Api) -> None:
    created = pod()
    created["metadata"]["finalizers"] = ["example.com/hold"]
    api.create("", "pods", created, "default")
    api.delete("", "pods", "default", "p")
    error = refused(lambda: bind(api, binding()), 409)
    assert error.message.endswith("pod p is being deleted, cannot be assigned to a host")


def test_spec_node_name_is_set_through_the_binding_only(api: Api) -> None:
    api.create("", "pods", pod(), "default")
    error = refused(lambda: api.patch("", "pods", "default", "p", {"spec": {"nodeName": "n1"}}), 422)
    assert "pod updates may not change fields other than" in error.message


# --- pods/eviction ----------------------------------------------------------------------------------


def test_an_eviction_deletes_a_running_pod_gracefully(api: Api) -> None:
    api.create("", "pods", pod(grace=30), "default")
    bind(api, binding())
    api.patch("", "pods", "default", "p", {"status": {"phase": "Running"}}, sub="status")
    response = evict(api, eviction())
    assert (response.code, response.body) == (201, SUCCESS)
    evicted = api.get("", "pods", "default", "p")  # still there: the node finishes the deletion
    assert evicted["metadata"]["deletionGracePeriodSeconds"] == 30
    assert evicted["metadata"]["deletionTimestamp"]
    target = condition(evicted, "DisruptionTarget")
    assert target is not None
    assert (target["status"], target["reason"], target["message"]) == (
        "True",
        "EvictionByEvictionAPI",
        "Eviction API: evicting",
    )
    assert pod_names(api) == ["p"]  # no Eviction object was stored as a pod


def test_an_eviction_follows_its_delete_options(api: Api) -> None:
    api.create("", "pods", pod(), "default")
    bind(api, binding())
    stale = refused(lambda: evict(api, eviction(preconditions={"resourceVersion": "1"})), 409)
    assert stale.message.startswith(
        'Operation cannot be fulfilled on Pod "p": the ResourceVersion in the precondition'
    )
    dry = evict(api, eviction(), query={"dryRun": "All"})
    assert dry.code == 201 and "deletionTimestamp" not in api.get("", "pods", "default", "p")["metadata"]
    assert condition(api.get("", "pods", "default", "p"), "DisruptionTarget") is None
    evict(api, eviction(gracePeriodSeconds=0))
    assert pod_names(api) == []


def test_an_unscheduled_pod_is_evicted_at_once(api: Api) -> None:
    api.create("", "pods", pod(), "default")
    error = refused(lambda: evict(api, eviction(name="q")), 400)
    assert error.message == "name in URL does not match name in Eviction object"
    assert evict(api, eviction()).code == 201
    assert pod_names(api) == []
    assert refused(lambda: evict(api, eviction()), 404).message == 'pods "p" not found'


def test_eviction_is_authorized_as_its_own_subresource(tmp_path: Path) -> None:
    """Evicting needs `create pods/eviction`, and nothing else: not `delete pods`."""
    local = control_plane(tmp_path, install_crds=False, rbac=True)
    admin = Api(local.plane)
    admin.create("", "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    admin.create("", "serviceaccounts", account, "team")
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "evictor"},
        "rules": [{"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]}],
    }
    admin.create("rbac.authorization.k8s.io", "roles", role, "team")
    role_binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "evictor"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "evictor"},
        "subjects": [{"kind": "User", "name": "drainer"}],
    }
    admin.create("rbac.authorization.k8s.io", "rolebindings", role_binding, "team")
    admin.create("", "pods", pod(), "team")
    drainer = admin.as_user(User("drainer", ("system:authenticated",)))
    refused(lambda: drainer.delete("", "pods", "team", "p"), 403)
    refused(lambda: drainer.call("create", "", "pods", "team", "p", binding(), sub="binding"), 403)
    assert drainer.call("create", "", "pods", "team", "p", eviction(), sub="eviction").code == 201
    assert admin.call("list", "", "pods", "team").body["items"] == []


def test_discovery_names_the_eviction_kind_group(local: LocalControlPlane) -> None:
    """kubectl drain evicts only when discovery lists pods/eviction with its group and version
    (policy/v1); otherwise it falls back to deleting."""
    from contentgen.cluster import openapi

    resources = openapi.resource_list(list(local.plane.types.values()), "", "v1")
    assert resources is not None
    by_name = {r["name"]: r for r in resources["resources"]}
    assert by_name["pods/eviction"] == {
        "name": "pods/eviction",
        "singularName": "",
        "namespaced": True,
        "group": "policy",
        "version": "v1",
        "kind": "Eviction",
        "verbs": ["create"],
    }
    assert by_name["pods/binding"]["kind"] == "Binding" and "group" not in by_name["pods/binding"]


# --- pods/log (the node's files relayed; kubectl logs itself is in tests/e2e) ----------------------


def two_containers(name: str = "p2") -> dict[str, Any]:
    body = pod(name)
    body["spec"]["containers"].append({"name": "d", "image": "i:1"})
    return body


def test_pod_log_errors_are_the_real_servers(api: Api, local: LocalControlPlane, tmp_path: Path) -> None:
    api.create("", "pods", pod(), "default")
    api.create("", "pods", two_containers(), "default")

    def log(name: str, **query: str) -> Any:
        return api.call("get", "", "pods", "default", name, sub="log", query=query)

    assert refused(lambda: log("absent"), 404).message == 'pods "absent" not found'
    assert refused(lambda: log("p2"), 400).message == (
        "a container name must be specified for pod p2, choose one of: [c d]"
    )
    assert refused(lambda: log("p", container="x"), 400).message == "container x is not valid for pod p"
    assert refused(lambda: log("p"), 400).message == (
        'container "c" in pod "p" is waiting to start: ContainerCreating'
    )
    assert refused(lambda: log("p", previous="true"), 400).message == (
        'previous terminated container "c" in pod "p" not found'
    )
    assert refused(lambda: log("p", tailLines="-1"), 422).reason == "Invalid"
    file = tmp_path / "c.log"
    file.write_bytes(b"one\ntwo\nthree\n")
    local.plane.pod_logs = lambda namespace, name, container: file if container == "c" else None
    body = log("p").body
    assert b"".join(body.chunks(lambda: False)) == b"one\ntwo\nthree\n"
    assert b"".join(log("p", tailLines="2").body.chunks(lambda: False)) == b"two\nthree\n"
    assert b"".join(log("p", tailLines="0").body.chunks(lambda: False)) == b""
    assert b"".join(log("p", limitBytes="5").body.chunks(lambda: False)) == b"one\nt"


def test_a_followed_log_streams_until_the_container_ends(tmp_path: Path) -> None:
    from contentgen.cluster.podlogs import PodLog

    file = tmp_path / "c.log"
    file.write_bytes(b"first\n")
    state = {"running": True}
    log = PodLog(file, True, None, None, lambda: state["running"], poll=0.01)
    chunks = log.chunks(lambda: False)
    assert next(chunks) == b"first\n"
    with file.open("ab") as f:
        f.write(b"second\n")
    assert next(chunks) == b"second\n"
    with file.open("ab") as f:
        f.write(b"last\n")
    state["running"] = False  # what it wrote before it ended is still sent
    assert list(chunks) == [b"last\n"]
    stopped = PodLog(file, True, None, None, lambda: True, poll=0.01).chunks(lambda: True)
    assert list(stopped) == [b"first\nsecond\nlast\n"]  # the client went: no waiting for more
