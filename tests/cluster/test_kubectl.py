"""The real kubectl against the control plane over TLS: what users type works as on a cluster,
and what a real server refuses is refused with its status code and message."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from contentgen.cluster.server import LocalControlPlane
from tests.cluster.api_fixtures import Api, chart_rbac, crds
from tests.conftest import EXAMPLES
from tests.kubectl import Kubectl
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(300)
CG = "contentgen.io"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalControlPlane, Kubectl]]:
    root = tmp_path_factory.mktemp("kubectl")
    local = LocalControlPlane(root).start()
    local.apply_all(crds())
    local.apply_all(chart_rbac())
    kubeconfig = local.write_kubeconfig(root / "kubeconfig")
    try:
        yield local, Kubectl(kubeconfig, root / "home")
    finally:
        local.stop()


def test_apply_a_directory_with_validation_then_get_the_printer_columns(
    cluster: tuple[LocalControlPlane, Kubectl],
) -> None:
    local, kubectl = cluster
    out = kubectl.run("apply", "-f", str(EXAMPLES)).stdout
    assert "loratraining.contentgen.io/demo-avatar created" in out
    Api(local.plane).patch(
        CG,
        "loratrainings",
        "default",
        "demo-avatar",
        {"status": {"phase": "Running", "progress": 62}},
        sub="status",
    )
    table = kubectl.run("get", "contentgen").stdout
    lines = [line.split() for line in table.splitlines() if line.strip()]
    header = next(line for line in lines if "TRIGGER" in line)
    assert header == ["NAME", "OWNER", "TRIGGER", "VERSION", "PHASE", "PROGRESS", "AGE"]
    row = next(line for line in lines if line[0] == "loratraining.contentgen.io/demo-avatar")
    assert row[1:6] == ["demo-user", "dmavatar", "0", "Running", "62"]
    assert any(line[0] == "imagegeneration.contentgen.io/demo-landscape" for line in lines)
    # again: unchanged
    assert (
        "loratraining.contentgen.io/demo-avatar unchanged" in kubectl.run("apply", "-f", str(EXAMPLES)).stdout
    )


def test_bad_manifests_are_refused_with_the_field_named(
    cluster: tuple[LocalControlPlane, Kubectl], tmp_path: Path
) -> None:
    _, kubectl = cluster
    bad = yaml.safe_load((EXAMPLES / "loratraining.yaml").read_text())
    bad["metadata"]["name"] = "bad"
    bad["spec"]["dataset"]["bogus"] = 1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    done = kubectl.run("apply", "-f", str(path), check=False)
    assert done.returncode == 1
    assert 'strict decoding error: unknown field "spec.dataset.bogus"' in done.stderr
    del bad["spec"]["dataset"]["bogus"]
    bad["spec"]["dataset"]["maxFrames"] = 900
    path.write_text(yaml.safe_dump(bad))
    done = kubectl.run("apply", "-f", str(path), check=False)
    assert 'The LoraTraining "bad" is invalid: spec.dataset.maxFrames: Invalid value: 900:' in done.stderr


def test_explain_reads_the_crd_schema(cluster: tuple[LocalControlPlane, Kubectl]) -> None:
    _, kubectl = cluster
    out = kubectl.run("explain", "loratraining.spec.dataset").stdout
    assert "KIND:       LoraTraining" in out and "maxFrames\t<integer>" in out
    assert "How frames are chosen." in out


def test_server_side_apply_and_strategic_merge(
    cluster: tuple[LocalControlPlane, Kubectl], tmp_path: Path
) -> None:
    _, kubectl = cluster
    doc = yaml.safe_load((EXAMPLES / "transcription.yaml").read_text())
    doc["metadata"]["name"] = "ssa"
    path = tmp_path / "ssa.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert "serverside-applied" in kubectl.run("apply", "--server-side", "-f", str(path)).stdout
    doc["spec"]["tags"] = ["mine"]
    path.write_text(yaml.safe_dump(doc))
    done = kubectl.run("apply", "--server-side", "--field-manager=other", "-f", str(path), check=False)
    assert done.returncode == 1 and 'conflict with "kubectl"' in done.stderr and ".spec.tags" in done.stderr
    done = kubectl.run(
        "patch", "transcription", "ssa", "--type=strategic", "-p", '{"spec":{"tags":["x"]}}', check=False
    )
    assert done.returncode == 1 and "application/strategic-merge-patch+json is not supported" in done.stderr
    kubectl.run("patch", "transcription", "ssa", "--type=merge", "-p", '{"spec":{"tags":["x"]}}')
    assert kubectl.json("get", "transcription", "ssa")["metadata"]["generation"] == 2


def test_wait_and_watch_follow_the_status(cluster: tuple[LocalControlPlane, Kubectl], tmp_path: Path) -> None:
    local, kubectl = cluster
    doc = yaml.safe_load((EXAMPLES / "imagegeneration.yaml").read_text())
    doc["metadata"]["name"] = "waited"
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(doc))
    kubectl.run("apply", "-f", str(path))
    watcher = kubectl.popen("get", "imagegeneration", "waited", "-w", "--request-timeout=30s")
    waiter = kubectl.popen("wait", "--for=condition=Ready", "imagegeneration/waited", "--timeout=60s")
    time.sleep(1.0)  # let both start watching (no assertion on time)
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "Succeeded",
        "message": "done",
        "lastTransitionTime": "2026-11-22T00:00:00Z",
        "observedGeneration": 1,
    }
    Api(local.plane).patch(
        CG,
        "imagegenerations",
        "default",
        "waited",
        {"status": {"phase": "Succeeded", "progress": 100, "conditions": [ready]}},
        sub="status",
    )
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, err
    assert "imagegeneration.contentgen.io/waited condition met" in out
    watcher.terminate()
    seen, _ = watcher.communicate(timeout=30)
    assert "Succeeded" in seen and "100" in seen


def test_describe_shows_events(cluster: tuple[LocalControlPlane, Kubectl]) -> None:
    local, kubectl = cluster
    kubectl.run("apply", "-f", str(EXAMPLES / "loratraining.yaml"))
    owner = Api(local.plane).get(CG, "loratrainings", "default", "demo-avatar")
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "demo-avatar.1"},
        "involvedObject": {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": "LoraTraining",
            "name": "demo-avatar",
            "namespace": "default",
            "uid": owner["metadata"]["uid"],
        },
        "reason": "JobCreated",
        "message": "Job demo-avatar-1 created",
        "type": "Normal",
        "source": {"component": "contentgen-operator"},
        "firstTimestamp": "2026-11-22T00:00:00Z",
        "lastTimestamp": "2026-11-22T00:00:00Z",
        "count": 1,
    }
    Api(local.plane).create("", "events", event, "default")
    out = kubectl.run("describe", "lora", "demo-avatar").stdout
    assert "JobCreated" in out and "Job demo-avatar-1 created" in out


def test_delete_waits_for_finalizers(cluster: tuple[LocalControlPlane, Kubectl], tmp_path: Path) -> None:
    local, kubectl = cluster
    doc = yaml.safe_load((EXAMPLES / "imagegeneration.yaml").read_text())
    doc["metadata"].update(name="held", finalizers=["contentgen.io/cleanup"])
    path = tmp_path / "held.yaml"
    path.write_text(yaml.safe_dump(doc))
    kubectl.run("apply", "-f", str(path))
    kubectl.run("delete", "imagegeneration", "held", "--wait=false")
    assert kubectl.json("get", "imagegeneration", "held")["metadata"]["deletionTimestamp"]
    deleting = kubectl.popen("delete", "imagegeneration", "held", "--timeout=60s")
    time.sleep(0.5)
    Api(local.plane).patch(CG, "imagegenerations", "default", "held", {"metadata": {"finalizers": None}})
    _, err = deleting.communicate(timeout=60)
    assert deleting.returncode == 0, err
    assert kubectl.run("get", "imagegeneration", "held", check=False).returncode == 1


def test_rbac_is_enforced_for_the_operator_identity(cluster: tuple[LocalControlPlane, Kubectl]) -> None:
    _, kubectl = cluster
    operator = "--as=system:serviceaccount:contentgen:contentgen-operator"
    assert kubectl.run("get", "lora", operator).returncode == 0
    done = kubectl.run("delete", "lora", "demo-avatar", operator, check=False)
    assert done.returncode == 1
    assert (
        'User "system:serviceaccount:contentgen:contentgen-operator" cannot delete resource "loratrainings" '
        'in API group "contentgen.io" in the namespace "default"' in done.stderr
    )


def test_a_client_that_goes_away_ends_its_watch(cluster: tuple[LocalControlPlane, Kubectl]) -> None:
    """No watch outlives its client: the server notices the closed connection while it waits for
    changes (kubectl sends no timeoutSeconds; the stream would otherwise last 30 minutes)."""
    local, kubectl = cluster
    wait_for(lambda: local.plane.watching == 0, 30, "no watch open")
    watcher = kubectl.popen("get", "configmaps", "-w")
    wait_for(lambda: local.plane.watching == 1, 30, "kubectl watching")
    watcher.kill()
    watcher.communicate(timeout=30)
    wait_for(lambda: local.plane.watching == 0, 10, "the watch ended with its client")
    context = ssl.create_default_context(cafile=str(local.ca_file))
    host, port = local.url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
    connection.request(
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true",
        headers={"Authorization": f"Bearer {local.admin_token}"},
    )
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
    wait_for(lambda: local.plane.watching == 1, 30, "the client watching")
    # TLS close_notify first, as Go's client sends it (unwrap then waits for the server's: not here)
    connection.sock.setblocking(False)
    with contextlib.suppress(ssl.SSLError):
        connection.sock.unwrap()
    connection.close()
    wait_for(lambda: local.plane.watching == 0, 10, "the watch ended with its client")


def test_typed_commands_send_protobuf(cluster: tuple[LocalControlPlane, Kubectl], tmp_path: Path) -> None:
    """kubectl's typed commands send application/vnd.kubernetes.protobuf bodies."""
    _, kubectl = cluster
    assert kubectl.run("create", "namespace", "proto").stdout.strip() == "namespace/proto created"
    namespace = kubectl.json("get", "namespace", "proto")
    assert namespace["status"]["phase"] == "Active"
    assert namespace["metadata"]["labels"] == {"kubernetes.io/metadata.name": "proto"}
    blob = bytes(range(256))
    (tmp_path / "blob").write_bytes(blob)
    kubectl.run(
        "create", "secret", "generic", "s", "--from-literal=k=v", "--from-literal=empty=", "-n", "proto"
    )
    secret = kubectl.json("get", "secret", "s", "-n", "proto")
    assert secret["data"] == {"k": base64.b64encode(b"v").decode(), "empty": ""}
    assert secret["type"] == "Opaque"
    kubectl.run(
        "create",
        "configmap",
        "c",
        "--from-literal=a=b",
        f"--from-file=blob={tmp_path / 'blob'}",
        "-n",
        "proto",
    )
    config = kubectl.json("get", "configmap", "c", "-n", "proto")
    assert config["data"] == {"a": "b"} and base64.b64decode(config["binaryData"]["blob"]) == blob
    kubectl.run("create", "serviceaccount", "robot", "-n", "proto")
    assert kubectl.json("get", "serviceaccount", "robot", "-n", "proto")["metadata"]["name"] == "robot"
    # a kind this control plane has no protobuf description of is refused, not misread
    done = kubectl.run("create", "deployment", "d", "--image=nginx:1", "-n", "proto", check=False)
    assert done.returncode == 1
    assert "accepted media types include: application/json, application/yaml" in done.stderr
    assert (
        "decodes protobuf for ConfigMap, Namespace, Secret, SelfSubjectAccessReview, ServiceAccount"
        in done.stderr
    )


@pytest.mark.parametrize(
    ("args", "answer"),
    [
        (("create", "jobs"), "yes"),
        (("get", "jobs"), "no"),  # list and watch only
        (("delete", "loratrainings.contentgen.io"), "no"),
        (("patch", "loratrainings.contentgen.io", "--subresource=status"), "yes"),
        (("get", "serviceaccount/contentgen-worker"), "yes"),  # by resourceNames
        (("get", "serviceaccount/other"), "no"),
    ],
)
def test_auth_can_i_answers_as_rbac_says(
    cluster: tuple[LocalControlPlane, Kubectl], args: tuple[str, ...], answer: str
) -> None:
    _, kubectl = cluster
    operator = "--as=system:serviceaccount:contentgen:contentgen-operator"
    done = kubectl.run("auth", "can-i", *args, operator, "-n", "team-x", check=False)
    assert done.stdout.strip() == answer, done.stderr
    assert done.returncode == (0 if answer == "yes" else 1)


def test_a_refused_body_leaves_the_connection_usable(cluster: tuple[LocalControlPlane, Kubectl]) -> None:
    """A 415 is sent without decoding the body, but the body is read: it is not taken for the next
    request on the connection."""
    local, _ = cluster
    context = ssl.create_default_context(cafile=str(local.ca_file))
    host, port = local.url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
    auth = {"Authorization": f"Bearer {local.admin_token}"}
    body = b"k8s\x00 not a request line"
    connection.request(
        "POST", "/api/v1/namespaces", body=body, headers={**auth, "Content-Type": "application/cbor"}
    )
    response = connection.getresponse()
    assert response.status == 415 and json.loads(response.read())["reason"] == "UnsupportedMediaType"
    connection.request("GET", "/version", headers=auth)
    response = connection.getresponse()
    assert response.status == 200 and json.loads(response.read())["major"] == "1"
    # custom resources have no protobuf form
    connection.request(
        "POST",
        "/apis/contentgen.io/v1alpha1/namespaces/default/loratrainings",
        body=body,
        headers={**auth, "Content-Type": "application/vnd.kubernetes.protobuf"},
    )
    response = connection.getresponse()
    assert response.status == 415
    assert json.loads(response.read())["message"] == (
        "the body of the request was in an unknown format - "
        "accepted media types include: application/json, application/yaml"
    )
    connection.close()
