"""End to end: `contentgen local-cluster --offline` (its own process: the real etcd, kube-apiserver,
kube-controller-manager and kube-scheduler, the process node, the chart's install with the operator
as a pod under its ServiceAccount) driven by the real kubectl 1.36, as a user would on a cluster.
The API server's audit log is checked against the chart's RBAC at the end (nothing the operator or
the worker did was denied)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLES
from tests.kubectl import Kubectl
from tests.rbac.record import audit_decisions, record_decisions
from tests.waiting import wait_for

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]
CONTENTGEN = str(Path(sys.executable).parent / "contentgen")


@dataclass
class Box:
    process: subprocess.Popen[str]
    dir: Path
    kubectl: Kubectl

    def operator_pid(self) -> int:
        """The operator container's process (the node's containerID is localcluster://PID)."""
        pod = self.kubectl.json(
            "get", "pods", "-n", "contentgen", "-l", "app.kubernetes.io/component=operator"
        )
        running = [
            s["containerID"]
            for p in pod["items"]
            for s in p["status"].get("containerStatuses") or []
            if "running" in s.get("state", {}) and s.get("containerID")
        ]
        return int(running[0].rsplit("/", 1)[-1]) if running else 0

    def store_files(self, prefix: str = "") -> list[Path]:
        root = self.dir / "store"
        return [p for p in root.rglob("*") if p.is_file() and str(p.relative_to(root)).startswith(prefix)]


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    root = tmp_path_factory.mktemp("box")
    log = (root / "local-cluster.log").open("w")
    process = subprocess.Popen(
        [
            CONTENTGEN,
            "local-cluster",
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
        wait_for(lambda: kubeconfig.exists() or process.poll() is not None, 180, "DIR/kubeconfig")
        assert process.poll() is None, (root / "local-cluster.log").read_text()
        yield Box(process, root / "cluster", Kubectl(kubeconfig, root / "home"))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        log.close()
    assert process.returncode == 0, (root / "local-cluster.log").read_text()[-3000:]
    assert not kubeconfig.exists()  # a stopped cluster leaves no kubeconfig pointing nowhere
    decisions = audit_decisions(root / "audit.jsonl")
    assert {d.user for d in decisions} >= {"system:serviceaccount:contentgen:contentgen-operator"}
    record_decisions(decisions, "cluster-wide")


def condition(obj: dict[str, Any], type_: str = "Ready") -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def test_the_examples(box: Box, tmp_path: Path) -> None:
    k = box.kubectl
    # What local-cluster printed: its copies of examples/, sources pointing at its sample media.
    out = k.run("apply", "-f", str(box.dir / "examples")).stdout
    assert out.count(" created") == 4, out
    k.run(
        "wait",
        "--for=condition=Ready",
        "loratraining,imagegeneration,transcription",
        "--all",
        "--timeout=600s",
    )
    table = k.run("get", "contentgen").stdout
    assert "loratraining.contentgen.io/demo-avatar" in table and "dmavatar" in table
    assert table.count("Succeeded") == 4, table
    lora = k.json("get", "lora", "demo-avatar")
    assert lora["status"]["latestVersion"] == 1 and "placeholder" in lora["status"]["message"]
    portrait = k.json("get", "imggen", "demo-avatar-portrait")
    assert portrait["status"]["phase"] == "Succeeded"
    described = k.run("describe", "lora", "demo-avatar").stdout
    for reason in ("JobCreated", "Running", "Succeeded"):
        assert reason in described
    assert "maxFrames\t<integer>" in k.run("explain", "loratraining.spec.dataset").stdout
    # the worker's files are in the store, and the Job ran as the worker's ServiceAccount
    assert any(p.name == "model.safetensors" for p in box.store_files("loras/demo-user"))
    pod = k.json("get", "pods", "-l", "batch.kubernetes.io/job-name=demo-avatar-g1")["items"][0]
    assert pod["spec"]["serviceAccountName"] == "contentgen-worker"
    # kubectl logs, through pods/log: the worker's progress and its last word
    logs = k.run("logs", "job/demo-avatar-g1").stdout
    assert logs.startswith("fetch 0%") and "LoraTraining default/demo-avatar succeeded" in logs, logs
    last = k.run("logs", pod["metadata"]["name"], "--tail=1").stdout
    assert last == logs.splitlines(keepends=True)[-1]
    assert k.run("logs", "job/demo-avatar-g1", "--limit-bytes=5").stdout == "fetch"
    assert k.run("logs", "-f", "job/demo-avatar-g1").stdout == logs  # it ended: so does the stream
    wrong = k.run("logs", "job/demo-avatar-g1", "-c", "nope", check=False)
    assert (
        wrong.returncode == 1
        and f"container nope is not valid for pod {pod['metadata']['name']}" in wrong.stderr
    )


def image_generations(
    k: Kubectl, tmp_path: Path, namespace: str, names: list[str], owner: str, images: int
) -> Path:
    """Create `namespace` and write a manifest of ImageGenerations named `names` into it (one file)."""
    namespace_doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    k.run("apply", "-f", "-", stdin=yaml.safe_dump(namespace_doc))
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
    path = image_generations(k, tmp_path, "burst", [f"b{i:02d}" for i in range(30)], "alice", 1)
    k.run("create", "-f", str(path))
    created = Counter(
        i["metadata"]["creationTimestamp"] for i in k.json("get", "imggen", "-n", "burst")["items"]
    )
    # What deadlocked the queue: several resources created in the same second (timestamps tie).
    assert max(created.values()) >= 3, created
    k.run("wait", "--for=condition=Ready", "imagegeneration", "--all", "-n", "burst", "--timeout=600s")
    jobs = k.json("get", "jobs", "-n", "burst")["items"]
    assert sorted(j["metadata"]["name"] for j in jobs) == sorted(f"b{i:02d}-g1" for i in range(30))


def test_a_spec_edit_trains_a_new_version(box: Box) -> None:
    k = box.kubectl
    wait_for(lambda: k.run("get", "lora", "demo-avatar", check=False).returncode == 0, 60, "the example LoRA")
    k.run("wait", "--for=condition=Ready", "lora/demo-avatar", "--timeout=600s")
    k.run(
        "patch",
        "lora",
        "demo-avatar",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"training": {"steps": 200}}}),
    )
    k.run("wait", "--for=jsonpath={.status.latestVersion}=2", "lora/demo-avatar", "--timeout=600s")
    k.run("wait", "--for=condition=Ready", "lora/demo-avatar", "--timeout=600s")
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
    k.run("wait", "--for=condition=Ready", "imggen/del-retain", "imggen/del-delete", "--timeout=600s")
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
    first = box.operator_pid()
    k.run("apply", "-f", str(path))
    wait_for(lambda: k.json("get", "jobs", "-n", "chaos")["items"], 60, "a first Job")
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: box.operator_pid() != first, 60, "the operator restarted")
    k.run("wait", "--for=condition=Ready", "imagegeneration", "--all", "-n", "chaos", "--timeout=600s")
    jobs = k.json("get", "jobs", "-n", "chaos")["items"]
    assert sorted(j["metadata"]["name"] for j in jobs) == sorted(f"c{i}-g1" for i in range(8))
    assert all(j["status"].get("succeeded") == 1 and not j["status"].get("failed") for j in jobs)
