"""End to end: `contentgen local-cluster --offline` (its own process: the real etcd,
kube-apiserver, kube-controller-manager and kube-scheduler, the real node with the project's
images, the chart's install with the operator as a container under its ServiceAccount, the store
and the catalog on the cluster's host address) driven by the real kubectl 1.36, as a user would on
a cluster. The API server's audit log is checked against the chart's RBAC at the end (nothing the
operator or the worker did was denied), and Ctrl-C (SIGTERM) leaves no node behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import yaml

from contentgen.store.s3 import S3Store
from localcluster.node import host
from localcluster.node.layout import NODES
from localcluster.node.teardown import State, leftovers
from tests.conftest import EXAMPLES
from tests.harness.cli import assets_json
from tests.harness.real_node import image_archives, needs_real_node
from tests.httpserver import serve
from tests.kubectl import Kubectl
from tests.rbac.record import audit_decisions, record_decisions
from tests.sse import Events, serve_api
from tests.waiting import wait_for

pytestmark = [*needs_real_node, pytest.mark.timeout(1800), pytest.mark.slow]
CONTENTGEN = str(Path(sys.executable).parent / "contentgen")
# A burst created within a second or two, with 2 slots: enough for several same-second
# creationTimestamps (what deadlocked the queue once: the test asks for 3), few enough to keep the
# suite quick. 8 have 3 in one second even spread over three seconds by a loaded machine.
BURST = 8


@dataclass
class Box:
    process: subprocess.Popen[str]
    dir: Path
    kubectl: Kubectl
    media: str  # base URL of files the tests serve (pods reach it)
    catalog: str  # the catalog's URI (FerretDB on the cluster's host address), as local-cluster said it

    def operator(self) -> tuple[str, str]:
        """The operator pod's uid and its running container's id ("" while none runs)."""
        pods = self.kubectl.json(
            "get", "pods", "-n", "contentgen", "-l", "app.kubernetes.io/component=operator"
        )["items"]
        for pod in pods:
            for status in pod["status"].get("containerStatuses") or []:
                if "running" in status.get("state", {}) and status.get("containerID"):
                    return pod["metadata"]["uid"], str(status["containerID"]).rsplit("/", 1)[-1]
        return "", ""

    def operator_processes(self) -> list[int]:
        """The processes of the operator's running container, found by its cgroup on this machine."""
        uid, container = self.operator()
        found = []
        for pid in host.pod_processes(uid) if uid else []:
            with contextlib.suppress(OSError):
                if container in Path(f"/proc/{pid}/cgroup").read_text():
                    found.append(pid)
        return found

    @property
    def store_env(self) -> dict[str, str]:
        """DIR/store.env: the account and endpoint of the cluster's S3 server."""
        lines = (self.dir / "store.env").read_text().splitlines()
        return dict(line.removeprefix("export ").split("=", 1) for line in lines if line)

    @property
    def store(self) -> S3Store:
        """The cluster's store (s3://contentgen on its S3 server), as a user reaches it."""
        env = self.store_env
        client = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        return S3Store("contentgen", client=client)

    def store_files(self, prefix: str = "") -> list[str]:
        return [info.key for info in self.store.list(prefix)]


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    root = tmp_path_factory.mktemp("box")
    archives = image_archives(root / "context")
    # Beside local-cluster's own sample media (--examples): a text file posing as a video, on
    # every address, so that pods reach it on the node's.
    routes = {
        "/sample.mp4": (200, {"Content-Type": "video/mp4"}, (EXAMPLES / "media" / "sample.mp4").read_bytes()),
        "/notes.mp4": (200, {"Content-Type": "video/mp4"}, b"this is not a video\n" * 50),
    }
    log_path = root / "local-cluster.log"
    layouts: list[Any] = []
    with serve(routes, host="0.0.0.0") as (base, _):
        log = log_path.open("w")
        process = subprocess.Popen(
            [
                CONTENTGEN,
                "local-cluster",
                "--images",
                str(archives["contentgen"].parent),
                "--dir",
                str(root / "cluster"),
                "--offline",
                "--max-running-jobs",
                "2",
                "--audit-log",
                str(root / "audit.jsonl"),
                "--examples",
                str(EXAMPLES),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        kubeconfig = root / "cluster" / "kubeconfig"
        try:
            wait_for(lambda: kubeconfig.exists() or process.poll() is not None, 900, "DIR/kubeconfig")
            said = log_path.read_text()
            assert process.poll() is None, said
            assert "the real node (kubelet, containerd, runc" in said, said
            (catalog,) = re.findall(r"catalog (mongodb://\S+)", said)
            server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
            node = urlsplit(server).hostname
            media = base.replace("0.0.0.0", str(node))
            layouts += [
                state.layout
                for path in NODES.glob("lc*.json")
                if (state := State.read(path)) is not None
                and Path(state.directory) == (root / "cluster" / "node").resolve()
            ]
            yield Box(process, root / "cluster", Kubectl(kubeconfig, root / "home"), media, catalog)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(120)
            log.close()
    assert process.returncode == 0, log_path.read_text()[-3000:]
    assert not kubeconfig.exists()  # a stopped cluster leaves no kubeconfig pointing nowhere
    (layout,) = layouts
    assert leftovers(layout) == []  # Ctrl-C: no network, mount, cgroup or process of the node left
    decisions = audit_decisions(root / "audit.jsonl")
    assert {d.user for d in decisions} >= {"system:serviceaccount:contentgen:contentgen-operator"}
    record_decisions(decisions, "cluster-wide")


def first_jobs(k: Kubectl, namespace: str) -> list[str]:
    """The names of the namespace's ImageGenerations' first Jobs ({name}-ig-{uid}-g1), sorted."""
    items = k.json("get", "imggen", "-n", namespace)["items"]
    return sorted(f"{i['metadata']['name']}-ig-{i['metadata']['uid'][:8]}-g1" for i in items)


def work_namespace(k: Kubectl, namespace: str) -> None:
    """Make `namespace` as anyone makes one: nothing else is needed for work there (the operator,
    its own image here, copies the store's Secret into it before its first Job: docs/install.md)."""
    namespace_doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    k.run("apply", "-f", "-", stdin=yaml.safe_dump(namespace_doc))


def image_generations(
    k: Kubectl, tmp_path: Path, namespace: str, names: list[str], owner: str, images: int
) -> Path:
    """Make `namespace` and write a manifest of ImageGenerations named `names` into it (one file)."""
    work_namespace(k, namespace)
    docs = [
        {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": "ImageGeneration",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"owner": owner, "prompt": f"{namespace} {i}", "numImages": images},
        }
        for i, name in enumerate(names)
    ]
    path = tmp_path / f"{namespace}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def test_a_burst_in_one_second_with_two_slots_all_reach_ready(box: Box, tmp_path: Path) -> None:
    k = box.kubectl
    path = image_generations(k, tmp_path, "burst", [f"b{i:02d}" for i in range(BURST)], "alice", 1)
    k.run("create", "-f", str(path))
    created = Counter(
        i["metadata"]["creationTimestamp"] for i in k.json("get", "imggen", "-n", "burst")["items"]
    )
    # What deadlocked the queue: several resources created in the same second (timestamps tie).
    assert max(created.values()) >= 3, created
    k.run(
        "wait",
        "--for=condition=Ready",
        "imagegeneration",
        "--all",
        "-n",
        "burst",
        "--timeout=600s",
        timeout=660,
    )
    jobs = k.json("get", "jobs", "-n", "burst")["items"]
    assert sorted(j["metadata"]["name"] for j in jobs) == first_jobs(k, "burst")


def test_a_spec_edit_trains_a_new_version(box: Box) -> None:
    """The example LoRA, from the copy of examples/ local-cluster wrote (its source on the media it
    serves), trained again after an edit. Every example reaching Ready, and what users read of
    them, is test_helm_real_node.py's test_the_examples_reach_ready (and docs/local-cluster.md's)."""
    k = box.kubectl
    node = k.json("get", "node", "local")["status"]["nodeInfo"]
    assert node["containerRuntimeVersion"].startswith("containerd://"), node
    out = k.run("apply", "-f", str(box.dir / "examples" / "loratraining.yaml")).stdout
    assert out.strip() == "loratraining.contentgen.io/demo-avatar created", out
    k.run("wait", "--for=condition=Ready", "lora/demo-avatar", "--timeout=600s", timeout=660)
    (operator,) = k.json("get", "pods", "-n", "contentgen")["items"]
    assert operator["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")
    k.run(
        "patch",
        "lora",
        "demo-avatar",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"training": {"steps": 200}}}),
    )
    k.run(
        "wait", "--for=jsonpath={.status.latestVersion}=2", "lora/demo-avatar", "--timeout=600s", timeout=660
    )
    k.run("wait", "--for=condition=Ready", "lora/demo-avatar", "--timeout=600s", timeout=660)
    status = k.json("get", "lora", "demo-avatar")["status"]
    assert [(v["version"], v["steps"]) for v in status["versions"]] == [(1, 1000), (2, 200)]
    assert status["observedGeneration"] == 2


def test_delete_with_each_policy(box: Box, tmp_path: Path) -> None:
    k = box.kubectl
    docs = [
        {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": "ImageGeneration",
            "metadata": {"name": f"del-{policy.lower()}"},
            "spec": {"owner": "dora", "prompt": "a lighthouse", "deletionPolicy": policy},
        }
        for policy in ("Retain", "Delete")
    ]
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    k.run("apply", "--server-side", "-f", str(path))
    k.run(
        "wait",
        "--for=condition=Ready",
        "imggen/del-retain",
        "imggen/del-delete",
        "--timeout=600s",
        timeout=660,
    )
    uids = {
        d["metadata"]["name"]: k.json("get", "imggen", d["metadata"]["name"])["metadata"]["uid"] for d in docs
    }
    before = {name: box.store_files(f"generated-images/dora/{uid}") for name, uid in uids.items()}
    assert all(before.values())
    assert k.json("get", "imggen", "del-delete")["metadata"]["finalizers"] == ["contentgen.io/cleanup"]
    k.run("delete", "-f", str(path), "--timeout=120s")
    assert k.run("get", "imggen", "del-retain", "del-delete", check=False).returncode == 1
    assert box.store_files(f"generated-images/dora/{uids['del-retain']}") == before["del-retain"]
    assert box.store_files(f"generated-images/dora/{uids['del-delete']}") == []
    wait_for(
        lambda: not k.json("get", "jobs", "-l", "contentgen.io/owner=dora")["items"], 60, "the Jobs collected"
    )


def test_the_operator_killed_mid_run_converges_with_one_job_per_generation(box: Box, tmp_path: Path) -> None:
    k = box.kubectl
    path = image_generations(k, tmp_path, "chaos", [f"c{i}" for i in range(8)], "carl", 2)
    _, first = box.operator()
    k.run("apply", "-f", str(path))
    wait_for(lambda: k.json("get", "jobs", "-n", "chaos")["items"], 60, "a first Job")
    killed = box.operator_processes()
    assert killed, "the operator container's processes"
    for pid in killed:  # the container's processes, as the kernel's OOM killer or a crash ends them
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: box.operator()[1] not in ("", first), 120, "the operator restarted")
    k.run(
        "wait",
        "--for=condition=Ready",
        "imagegeneration",
        "--all",
        "-n",
        "chaos",
        "--timeout=600s",
        timeout=660,
    )
    jobs = k.json("get", "jobs", "-n", "chaos")["items"]
    assert sorted(j["metadata"]["name"] for j in jobs) == first_jobs(k, "chaos")
    assert len(jobs) == 8
    assert all(j["status"].get("succeeded") == 1 and not j["status"].get("failed") for j in jobs)


# --- issue 17: nothing a user made is lost or hidden ------------------------------------------------


def assets(box: Box, *args: str) -> Any:
    """`contentgen assets ARGS -o json` on the cluster's catalog (DIR/catalog), as a user runs it."""
    return assets_json(box.catalog, "s3://contentgen", box.store_env, *args)


def apply(box: Box, tmp_path: Path, name: str, docs: list[dict[str, Any]]) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    box.kubectl.run("apply", "-f", str(path))
    return path


def test_a_new_seed_keeps_both_images_and_a_failed_retraining_hides_nothing(box: Box, tmp_path: Path) -> None:
    """Also: the LoRA's progress in the catalog (read as `contentgen api` reads it, from another
    process than the operator that writes it) and over the HTTP stream, while its dataset stage runs."""
    from contentgen.catalog import open_catalog

    k = box.kubectl
    work_namespace(k, "kept")
    image = {"apiVersion": "contentgen.io/v1alpha1", "kind": "ImageGeneration",
             "metadata": {"name": "seeded", "namespace": "kept"},
             "spec": {"owner": "erin", "prompt": "a harbour at dusk", "numImages": 1, "seed": 1}}  # fmt: skip
    lora = {"apiVersion": "contentgen.io/v1alpha1", "kind": "LoraTraining",
            "metadata": {"name": "retrained", "namespace": "kept"},
            "spec": {"owner": "erin", "source": {"url": f"{box.media}/sample.mp4"}, "triggerWord": "erinx",
                     "dataset": {"maxFrames": 12, "minFrames": 4}, "training": {"steps": 100}}}  # fmt: skip
    catalog = open_catalog(box.catalog)
    seen: list[tuple[str, str, int]] = []  # the LoRA's latest run, each state the catalog showed
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for doc in catalog.find_raw({"name": "retrained", "namespace": "kept"}):
                run = doc.get("latestRun") or {}
                state = (run.get("phase", ""), run.get("stage", ""), int(run.get("progress", 0)))
                if not seen or seen[-1] != state:
                    seen.append(state)
            time.sleep(0.05)

    token = "erin-token-0123456789"
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(catalog.close)
        store = box.store
        url = cleanup.enter_context(serve_api(catalog, store, {"erin": token}, tmp_path))
        stream = Events(f"{url}/api/stream/jobs", token)
        cleanup.callback(stream.stop.set)
        wait_for(lambda: stream.events, 30, "the stream to be ready")
        cleanup.callback(stop.set)
        threading.Thread(target=poll, daemon=True).start()
        apply(box, tmp_path, "kept", [image, lora])
        k.run(
            "wait",
            "--for=condition=Ready",
            "imggen/seeded",
            "lora/retrained",
            "-n",
            "kept",
            "--timeout=600s",
            timeout=660,
        )
        final = [("Succeeded", "done", 100)]
        try:
            wait_for(lambda: seen[-1:] == final, 60, "the catalog's last state")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: it showed {seen}") from None
        wait_for(lambda: stream.runs("retrained")[-1:] == final, 60, "the stream's last state")
    dataset = [state for state in seen if state[1] == "dataset"]
    assert dataset and all(phase == "Running" and 8 <= p <= 45 for phase, _, p in dataset), seen
    streamed = stream.runs("retrained")
    assert any(stage == "dataset" and 8 <= p <= 45 for _, stage, p in streamed), streamed
    k.run("patch", "imggen", "seeded", "-n", "kept", "--type=merge", "-p", json.dumps({"spec": {"seed": 2}}))
    k.run("patch", "lora", "retrained", "-n", "kept", "--type=merge",
          "-p", json.dumps({"spec": {"source": {"url": f"{box.media}/notes.mp4"}}}))  # fmt: skip
    k.run(
        "wait",
        "--for=jsonpath={.status.latestVersion}=2",
        "imggen/seeded",
        "-n",
        "kept",
        "--timeout=600s",
        timeout=660,
    )
    k.run(
        "wait",
        "--for=jsonpath={.status.observedGeneration}=2",
        "lora/retrained",
        "-n",
        "kept",
        "--timeout=600s",
        timeout=660,
    )
    k.run(
        "wait",
        "--for=jsonpath={.status.phase}=Failed",
        "lora/retrained",
        "-n",
        "kept",
        "--timeout=600s",
        timeout=660,
    )
    status = k.json("get", "imggen", "seeded", "-n", "kept")["status"]
    assert [v["version"] for v in status["versions"]] == [1, 2]
    assert [v["images"][0]["seed"] for v in status["versions"]] == [1, 2]
    files = [box.store.key_of(v["images"][0]["uri"]) for v in status["versions"]]
    assert files[0] != files[1] and all(box.store.exists(f) for f in files)  # both stored

    def recorded() -> Any:
        images = assets(box, "get", "kept/seeded")
        loras = assets(box, "get", "kept/retrained")
        done = images["latestRun"]["version"] == 2 and images["latestRun"]["phase"] == "Succeeded"
        return (images, loras) if done and loras["latestRun"]["phase"] == "Failed" else None

    images, loras = wait_for(recorded, 60, "the catalog to record both")
    assert [v["version"] for v in images["versions"]] == [1, 2]  # listed, both
    assert [v["spec"]["seed"] for v in images["versions"]] == [1, 2]
    assert loras["status"] == "Succeeded" and [v["version"] for v in loras["versions"]] == [1]
    assert loras["latestRun"]["error"]["reason"] == "InvalidInput"
    usable = assets(box, "list", "--status", "Succeeded", "--owner", "erin")
    assert sorted(r["name"] for r in usable["items"]) == ["retrained", "seeded"]
    failed = assets(box, "list", "--run", "Failed", "--owner", "erin")["items"]
    assert [r["name"] for r in failed] == ["retrained"] and failed[0]["status"] == "Succeeded"


def test_deleted_pending_resources_do_not_stay_pending(box: Box, tmp_path: Path) -> None:
    k = box.kubectl
    work_namespace(k, "waiting")
    spec = {
        "owner": "wendy",
        "prompt": "p",
        "model": "flux-lora",
        "loras": [{"loraRef": {"name": "nowhere"}}],
    }
    docs = [
        {"apiVersion": "contentgen.io/v1alpha1", "kind": "ImageGeneration",
         "metadata": {"name": f"waits-{n}", "namespace": "waiting"}, "spec": spec}
        for n in range(8)
    ]  # fmt: skip
    path = apply(box, tmp_path, "waiting", docs)
    k.run("wait", "--for=jsonpath={.status.phase}=Pending", "imagegeneration", "--all", "-n", "waiting",
          "--timeout=300s", timeout=360)  # fmt: skip

    def pending() -> list[dict[str, Any]]:
        return list(assets(box, "list", "--run", "Pending", "--owner", "wendy")["items"])

    wait_for(lambda: len(pending()) == 8, 60, "the 8 recorded Pending")
    k.run("delete", "-f", str(path), "--timeout=120s")

    def gone() -> Any:
        deleted = assets(box, "list", "--status", "Deleted", "--owner", "wendy")["items"]
        return deleted if len(deleted) == 8 else None

    deleted = wait_for(gone, 60, "every record marked deleted")
    assert {(r["latestRun"]["phase"], r["deleted"]["policy"]) for r in deleted} == {("Cancelled", "Retain")}
    assert pending() == []
