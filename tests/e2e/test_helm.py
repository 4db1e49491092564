"""The chart, installed and upgraded with the real helm 4 into the real control plane (the local
cluster with its process node; the operator's image runs as this installation's `contentgen`):
`helm install` runs an ImageGeneration to Ready under the chart's RBAC; `helm upgrade` rolls the
operator out with one and with two replicas (a standby is Ready, so the rolling update and the
PodDisruptionBudget can count it); a node drain may evict a replica."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.cli import local_cluster
from localcluster import LocalCluster, Options
from localcluster.s3server import S3Server
from tests.conftest import EXAMPLES, ROOT
from tests.kubectl import KUBECTL, Kubectl
from tests.s3server import S3_ENV, client, make_bucket
from tests.waiting import wait_for

pytestmark = [pytest.mark.timeout(1200), pytest.mark.slow]
CHART = ROOT / "charts" / "contentgen"
HELM = ROOT / ".tools" / "bin" / "helm"
NS = "contentgen"


@dataclass
class Helm:
    kubectl: Kubectl
    root: Path
    endpoint: str  # the S3 server (versitygw), where pods reach it

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [str(HELM), *args],
            capture_output=True,
            text=True,
            env=self.kubectl.env(),
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"helm {' '.join(args)}: {done.stderr}"
        return done.stdout

    def values(self, **extra: Any) -> list[str]:
        settings = {
            "store": {
                "url": "s3://contentgen-test/assets",
                "endpointUrl": self.endpoint,
                "region": "us-east-1",
            },
            "s3": {"existingSecret": "contentgen-s3"},
            "allowPrivateSources": True,
            "logFormat": "plain",
            "reconcileIntervalSeconds": 2,
            **extra,
        }
        path = self.root / "values.yaml"
        path.write_text(yaml.safe_dump(settings))
        return ["-f", str(path)]


def s3_secret(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "contentgen-s3", "namespace": namespace},
        "stringData": {k: v for k, v in S3_ENV.items() if k.startswith("AWS_") and "REGION" not in k},
    }


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Helm]:
    """A bare cluster (no CRDs, nothing installed) and the real S3 server on the node's address,
    where pods reach it."""
    root = tmp_path_factory.mktemp("helm")
    cluster = LocalCluster(Options(root / "cluster", images=local_cluster.images(), backoff_base=2.0)).start()
    try:
        s3 = S3Server(
            root / "s3",
            host=cluster.host_ip,
            access_key=S3_ENV["AWS_ACCESS_KEY_ID"],
            secret_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        ).start()
    except BaseException:
        cluster.stop()
        raise
    try:
        endpoint = s3.endpoint
        make_bucket(endpoint, "contentgen-test")
        k = Kubectl(cluster.kubeconfig, root / "home")
        k.run("create", "namespace", NS)
        for namespace in (NS, "default"):  # the operator's and the workers' (README: per namespace)
            k.run("apply", "-f", "-", stdin=yaml.safe_dump(s3_secret(namespace)))
        yield Helm(k, root, endpoint)
    finally:
        s3.stop()
        cluster.stop()


def operator_pods(k: Kubectl) -> list[dict[str, Any]]:
    pods = k.json("get", "pods", "-n", NS, "-l", "app.kubernetes.io/component=operator")["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def leader(k: Kubectl) -> str:
    return str(k.json("get", "lease", "-n", NS, "contentgen-operator")["spec"].get("holderIdentity") or "")


def offline_example(name: str) -> str:
    """examples/imagegeneration.yaml with the offline provider (no key, no paid API)."""
    doc = yaml.safe_load((EXAMPLES / "imagegeneration.yaml").read_text())
    doc["metadata"]["name"] = name
    doc["spec"]["provider"] = "offline"
    return yaml.safe_dump(doc)


def test_install_runs_an_image_generation_under_the_charts_rbac(helm: Helm) -> None:
    k = helm.kubectl
    helm.run(
        "install",
        "contentgen",
        str(CHART),
        "-n",
        NS,
        "--create-namespace",
        "--wait",
        "--timeout=5m",
        *helm.values(),
    )
    (pod,) = operator_pods(k)
    assert ready(pod) and pod["spec"]["serviceAccountName"] == "contentgen-operator"
    # A name of its own: the NOTES test applies examples/imagegeneration.yaml (demo-landscape) as
    # a reader would on a fresh install.
    k.run("apply", "-f", "-", stdin=offline_example("installed-landscape"))
    k.run("wait", "--for=condition=Ready", "imggen/installed-landscape", "--timeout=100s")
    status = k.json("get", "imggen", "installed-landscape")["status"]
    uri = status["images"][0]["uri"]
    assert status["phase"] == "Succeeded" and uri.startswith("s3://contentgen-test/"), status
    stored = client(helm.endpoint).head_object(Bucket="contentgen-test", Key=uri.split("/", 3)[3])
    assert stored["ContentLength"] > 0


# A command NOTES prints: a line indented by two spaces that starts with kubectl or helm. Those
# with a placeholder (<chart>, YOUR-BUCKET) are templates for the reader to fill in.
NOTES_COMMAND = re.compile(r"^  (?P<command>(?:kubectl|helm) .+)$", re.MULTILINE)
PLACEHOLDER = re.compile(r"<[a-z-]+>|YOUR-")


def run_notes_command(helm: Helm, command: str) -> str:
    """As a reader would, from the repository's root with the release's kubeconfig; a watch runs
    until it has printed its table, still running then."""
    argv = shlex.split(command)
    argv[0] = str(HELM if argv[0] == "helm" else KUBECTL)
    env = helm.kubectl.env()
    if "-w" in argv or "--watch" in argv:
        with subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as watch:
            assert watch.stdout is not None
            header = (
                watch.stdout.readline().decode()
            )  # blocks until the table starts (hang guard: the test's)
            running = watch.poll() is None
            watch.terminate()
            _, err = watch.communicate(timeout=60)
        assert running and header.startswith("NAME"), f"{command}: {header}{err.decode()}"
        return header
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout


def test_the_notes_print_commands_that_work(helm: Helm) -> None:
    """What `helm install` printed (helm get notes), run as printed: every command works on the
    release, and what the notes say of a fal resource without fal.existingSecret is true."""
    notes = helm.run("get", "notes", "contentgen", "-n", NS)
    commands = [m["command"] for m in NOTES_COMMAND.finditer(notes)]
    runnable = [c for c in commands if not PLACEHOLDER.search(c)]
    assert any("apply -f examples/imagegeneration.yaml" in c for c in runnable), notes
    assert any(" -w" in c for c in runnable) and not any("get contentgen -w" in c for c in commands)
    outputs = {command: run_notes_command(helm, command) for command in runnable}
    assert "demo-landscape" in next(out for c, out in outputs.items() if "describe" in c)
    assert "no fal.existingSecret" in notes
    k = helm.kubectl
    seen: list[dict[str, Any]] = [{}]

    def waiting_for_the_key() -> bool:
        seen[0] = k.json("get", "imggen", "demo-landscape").get("status") or {}
        return condition_reason({"status": seen[0]}) == "MissingCredentials"

    try:
        wait_for(waiting_for_the_key, 240, "demo-landscape waiting for fal's key")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; its status: {seen[0]}") from None


def condition_reason(obj: dict[str, Any]) -> str:
    ready_ = [c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"]
    return str(ready_[0]["reason"]) if ready_ else ""


@pytest.mark.parametrize("replicas", [1, 2])
def test_upgrade_rolls_the_operator_out(helm: Helm, replicas: int) -> None:
    k = helm.kubectl
    before = {p["metadata"]["name"] for p in operator_pods(k)}
    # A settings change: the ConfigMap's checksum changes the pod template, so every pod is replaced.
    helm.run(
        "upgrade",
        "contentgen",
        str(CHART),
        "-n",
        NS,
        "--wait",
        "--timeout=5m",
        *helm.values(replicaCount=replicas, maxRunningJobsPerNamespace=10 + replicas),
    )
    k.run("rollout", "status", "deployment/contentgen-operator", "-n", NS, "--timeout=100s")
    pods = wait_for(
        lambda: (p := operator_pods(k)) and len(p) == replicas and all(map(ready, p)) and p, 120, "pods"
    )
    assert not before & {p["metadata"]["name"] for p in pods}, "every pod was replaced"
    assert all(p["status"]["containerStatuses"][0]["restartCount"] == 0 for p in pods), "no probe restarts"
    holder = wait_for(
        lambda: leader(k) in {p["metadata"]["name"] for p in pods} and leader(k), 120, "a new leader"
    )
    # The new leader acts: a new resource runs.
    name = f"after-upgrade-{replicas}"
    k.run("apply", "-f", "-", stdin=offline_example(name))
    k.run("wait", "--for=condition=Ready", f"imggen/{name}", "--timeout=100s")
    if replicas == 2:
        pdb = k.json("get", "pdb", "-n", NS, "contentgen-operator")
        assert pdb["status"]["currentHealthy"] == 2 and pdb["status"]["disruptionsAllowed"] == 1, pdb[
            "status"
        ]
        standby = next(p["metadata"]["name"] for p in pods if p["metadata"]["name"] != holder)
        eviction = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": standby, "namespace": NS},
        }
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"eviction-{os.getpid()}.json"
        path.write_text(json.dumps(eviction))
        # What `kubectl drain` asks for each pod: allowed while the other replica is Ready.
        k.run("create", "--raw", f"/api/v1/namespaces/{NS}/pods/{standby}/eviction", "-f", str(path))
        path.unlink()
