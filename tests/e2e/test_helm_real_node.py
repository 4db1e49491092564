"""The chart installed with the real helm onto the real node (a kubelet, containerd and runc) with
the project's own images imported: the operator runs as the chart's Deployment and the worker as
the containers of its Jobs, against versitygw and FerretDB on the cluster's host address, where
pods reach them. The examples reach Ready; the runtime, not the manifest, is asked whether the
pods are hardened (a container of each image says what it may do); and what only a real kubelet
shows reaches the resource in one line: an image that cannot be pulled, a Job's deadline, a worker
killed for its memory, a node that stops answering with a worker on it."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pymongo
import pytest
import yaml

from contentgen.cli.local_cluster import MediaServer, write_examples
from localcluster import LocalCluster, Options, mongowire
from localcluster.node import host
from localcluster.s3server import S3Server
from localcluster.standby import StandbyNode
from tests.conftest import EXAMPLES, ROOT
from tests.harness.cli import assets_json
from tests.harness.conditions import condition
from tests.harness.real_node import HARDENED, PROBE, image, image_archives, needs_real_node
from tests.holding_proxy import HoldingProxy
from tests.kubectl import KUBECTL, Kubectl
from tests.s3server import S3_ENV, client, make_bucket
from tests.waiting import wait_for

pytestmark = [*needs_real_node, pytest.mark.timeout(1800), pytest.mark.slow]
CHART = ROOT / "charts" / "contentgen"
HELM = ROOT / ".tools" / "bin" / "helm"
NS = "contentgen"
BUCKET = "contentgen-test"
# Not a registry: nothing listens there, so a pull fails at once and no traffic leaves the machine.
UNPULLABLE = "127.0.0.1:9/contentgen/contentgen-worker"


@dataclass
class World:
    cluster: LocalCluster
    kubectl: Kubectl
    root: Path
    s3: S3Server
    catalog: mongowire.Server
    media: MediaServer

    @property
    def records(self) -> Any:
        return pymongo.MongoClient(self.catalog.url, serverSelectionTimeoutMS=5000)["contentgen"]["jobs"]

    def helm(self, *args: str, **values: Any) -> str:
        path = self.root / "values.yaml"
        path.write_text(yaml.safe_dump(self.values(**values)))
        done = subprocess.run(
            [str(HELM), *args, str(CHART), "-n", NS, "--wait", "--timeout=10m", "-f", str(path)],
            capture_output=True,
            text=True,
            env=self.kubectl.env(),
            timeout=660,
            check=False,
        )
        assert done.returncode == 0, f"helm {' '.join(args)}: {done.stderr}"
        return done.stdout

    def values(self, **extra: Any) -> dict[str, Any]:
        return {
            "store": {"url": f"s3://{BUCKET}/assets", "endpointUrl": self.s3.endpoint, "region": "us-east-1"},
            # versitygw has no STS: the namespaces' own copy of the store's Secret (test_tenants.py
            # runs the chart's default, each run's own credentials, on a store that has)
            "s3": {"existingSecret": "contentgen-s3", "workerCredentials": "namespaceSecret"},
            "mongodb": {"existingSecret": "contentgen-mongodb"},
            "allowPrivateSources": True,  # the sample media, served on the host's address
            "logFormat": "plain",
            "reconcileIntervalSeconds": 2,
            # a LoraTraining asks for 2 CPUs, all this machine's node has
            "jobs": {"LoraTraining": {"resources": {"requests": {"cpu": "500m"}}}},
            **extra,
        }


def secret(name: str, namespace: str, data: dict[str, str]) -> str:
    meta = {"name": name, "namespace": namespace}
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": data})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("helm-real")
    archives = image_archives(root / "context")
    cluster = LocalCluster(Options(root / "cluster", image_archives=list(archives.values())))
    cluster.start()
    stops: list[Any] = [cluster.stop]
    try:
        host = cluster.host_ip
        s3 = S3Server(
            root / "s3",
            host=host,
            access_key=S3_ENV["AWS_ACCESS_KEY_ID"],
            secret_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        ).start()
        stops.append(s3.stop)
        make_bucket(s3.endpoint, BUCKET)
        catalog = mongowire.start(root / "ferretdb", host=host)
        stops.append(catalog.stop)
        media = MediaServer(EXAMPLES / "media", host)
        stops.append(media.stop)
        k = Kubectl(cluster.kubeconfig, root / "home")
        k.run("create", "namespace", NS)
        s3_keys = {k_: v for k_, v in S3_ENV.items() if k_.startswith("AWS_") and "REGION" not in k_}
        for namespace in (NS, "default"):  # the operator's and the workers' (README: per namespace)
            k.run("apply", "-f", "-", stdin=secret("contentgen-s3", namespace, s3_keys))
        k.run("apply", "-f", "-", stdin=secret("contentgen-mongodb", NS, {"uri": f"{catalog.url}contentgen"}))
        w = World(cluster, k, root, s3, catalog, media)
        w.helm("install", "contentgen")
        yield w
    finally:
        for stop in reversed(stops):
            stop()


def offline(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The examples with the offline provider (no key, no paid API); a LoraEvaluation takes the
    provider that trained its LoRA."""
    for doc in docs:
        if doc["kind"] not in ("Notification", "LoraEvaluation"):
            doc["spec"]["provider"] = "offline"
    return docs


def image_generation(name: str, **spec: Any) -> str:
    doc = yaml.safe_load((EXAMPLES / "imagegeneration.yaml").read_text())
    doc["metadata"]["name"] = name
    doc["spec"].update(provider="offline", **spec)
    return yaml.safe_dump(doc)


def jobs_of(k: Kubectl, uid: str) -> list[dict[str, Any]]:
    return list(k.json("get", "jobs", "-l", f"contentgen.io/uid={uid}")["items"])


def pods_of(k: Kubectl, job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(
        k.json("get", "pods", "-l", f"batch.kubernetes.io/job-name={job['metadata']['name']}")["items"]
    )


def running_worker(k: Kubectl, uid: str) -> dict[str, Any] | None:
    """The pod of the resource `uid` whose worker container runs, if any."""
    for pod in k.json("get", "pods", "-l", f"contentgen.io/uid={uid}")["items"]:
        states = [s.get("state", {}) for s in pod["status"].get("containerStatuses") or []]
        if any("running" in state for state in states):
            return pod  # type: ignore[no-any-return]
    return None


def test_install_runs_an_image_generation_in_containers(world: World) -> None:
    k = world.kubectl
    (pod,) = k.json("get", "pods", "-n", NS, "-l", "app.kubernetes.io/component=operator")["items"]
    (container,) = pod["status"]["containerStatuses"]
    assert container["ready"] and container["image"] == image("contentgen"), container
    assert container["containerID"].startswith("containerd://") and container["restartCount"] == 0
    k.run("apply", "-f", "-", stdin=image_generation("real-landscape"))
    k.run("wait", "--for=condition=Ready", "imggen/real-landscape", "--timeout=300s")
    found = k.json("get", "imggen", "real-landscape")
    status = found["status"]
    assert status["phase"] == "Succeeded", status
    key = status["images"][0]["uri"].removeprefix(f"s3://{BUCKET}/")
    assert client(world.s3.endpoint).head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 0
    (job,) = jobs_of(k, found["metadata"]["uid"])
    (worker,) = pods_of(k, job)
    (ran,) = worker["status"]["containerStatuses"]
    assert ran["image"] == image("contentgen-worker") and ran["containerID"].startswith("containerd://")
    assert ran["state"]["terminated"]["exitCode"] == 0
    # the operator's catalog is FerretDB, which it reached from its pod
    record = wait_for(
        lambda: world.records.find_one({"_id": found["metadata"]["uid"]}), 60, "the catalog's record"
    )
    assert record["latestRun"]["phase"] == "Succeeded", record


def probe(k: Kubectl, *args: str) -> dict[str, Any]:
    out = k.run(*args, timeout=120).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_runtime_enforces_the_hardened_pods(world: World) -> None:
    """Each image in the pod its installation gives it (the operator's Deployment, a Job's pod
    template) says what the runtime let it do: not root, no capability, seccomp's filter, a root
    file system it cannot write; and a pod of the worker asked to run as root is refused."""
    k = world.kubectl
    operator = probe(k, "exec", "-n", NS, "deploy/contentgen-operator", "--", "python", "-c", PROBE, "/tmp")
    assert operator == {**HARDENED, "groups": [10001], "token": True}, operator
    job = k.json("get", "jobs", "-l", "contentgen.io/kind=ImageGeneration")["items"][0]
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    container.update(command=["python", "-c", PROBE, "/work"], args=[])
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "worker-probe"}, "spec": spec}
    k.run("apply", "-f", "-", stdin=json.dumps(pod))
    k.run("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/worker-probe", "--timeout=180s")
    worker = probe(k, "logs", "worker-probe")
    assert worker == {**HARDENED, "groups": [10001], "token": True}, worker
    # as root: the kubelet refuses to start it (runAsNonRoot), whatever the image
    container["securityContext"]["runAsUser"] = 0
    pod["metadata"]["name"] = "worker-as-root"
    k.run("apply", "-f", "-", stdin=json.dumps(pod))

    def refused() -> str:
        found = k.json("get", "pod", "worker-as-root")
        waiting = (found["status"].get("containerStatuses") or [{}])[0].get("state", {}).get("waiting", {})
        refusal = waiting.get("reason") == "CreateContainerConfigError"
        return str(waiting.get("message", "")) if refusal else ""

    assert "runAsUser breaks non-root policy" in wait_for(refused, 120, "the root pod refused")
    k.run("delete", "pod", "worker-probe", "worker-as-root", "--wait=false")


def test_the_examples_reach_ready(world: World) -> None:
    """The examples, each to Ready in containers, and what a user then reads of them: kubectl's
    columns, describe, explain and logs, the store's files and the catalog's lineage."""
    k = world.kubectl
    written = write_examples(EXAMPLES, world.root / "examples", world.media.url)
    docs = offline([d for path in written for d in yaml.safe_load_all(path.read_text()) if d])
    out = k.run("apply", "-f", "-", stdin=yaml.safe_dump_all(docs)).stdout
    # the ten examples of work (seven kinds' and an early-stopped, a video LoRA and a clip with it),
    # and the Notification
    assert out.count(" created") == len(written) == 11, out
    assert k.json("get", "notification", "demo-hooks")["spec"]["url"] == "http://127.0.0.1:8000/contentgen"
    k.run(
        "wait",
        "--for=condition=Ready",
        "loratraining,imagegeneration,transcription,loraevaluation,videogeneration",
        "--all",
        "--timeout=900s",
        timeout=960,
    )
    table = k.run("get", "contentgen").stdout
    # the ten examples of work, and the first test's ImageGeneration
    assert table.count("Succeeded") == 11, table
    assert "loratraining.contentgen.io/demo-avatar" in table and "dmavatar" in table
    # the LoRA's version 1 evaluated again on the example's seeds, with the provider that trained it
    again = k.json("get", "loraeval", "demo-avatar-again")["status"]
    assert (again["lora"]["version"], again["lora"]["provider"], again["evaluation"]) == (1, "offline", 1)
    assert again["likeness"]["verdict"] == "no-faces" and again["likeness"]["seeds"] == [3, 4]
    lora = k.json("get", "lora", "demo-avatar")
    assert lora["status"]["latestVersion"] == 1 and "placeholder" in lora["status"]["message"]
    # the portrait animated: its LoRA rides with the picture, and the clip is measured against the
    # LoRA's person (the offline placeholders show no face); kubectl shows the verdict
    clip = k.json("get", "vg", "demo-avatar-clip")["status"]
    assert [lora["name"] for lora in clip["image"]["loras"]] == ["demo-avatar"]
    likeness = clip["video"]["likeness"]
    assert likeness["verdict"] == "no-faces" and likeness["lora"]["name"] == "demo-avatar", clip
    assert len(likeness["samples"]) == 16
    columns = k.run("get", "videogenerations", "demo-avatar-clip").stdout.splitlines()
    assert columns[0].split()[3:5] == ["DURATION", "LIKENESS"] and columns[1].split()[4] == "no-faces"
    # its lineage reaches the source video: clip <- portrait <- LoRA <- dataset <- sample video
    lineage = wait_for(
        lambda: (found := assets(world, "lineage", "default/demo-avatar-clip")).get("pictures") and found,
        60,
        "the clip's lineage in the catalog",
    )
    (picture,) = lineage["pictures"]
    assert picture["found"] and picture["imageGeneration"]["name"] == "demo-avatar-portrait"
    assert "sample" in json.dumps(lineage), lineage  # the LoRA's source video, as the media server serves it
    described = k.run("describe", "lora", "demo-avatar").stdout
    for reason in ("JobCreated", "Running", "Succeeded"):
        assert reason in described
    assert "maxFrames\t<integer>" in k.run("explain", "loratraining.spec.dataset").stdout
    # the worker's files are in the store, and the Job ran as the worker's ServiceAccount
    stored = client(world.s3.endpoint).list_objects_v2(Bucket=BUCKET, Prefix="assets/loras/demo-user/")
    assert any(o["Key"].endswith("/model.safetensors") for o in stored.get("Contents", [])), stored
    (job,) = jobs_of(k, lora["metadata"]["uid"])
    name = job["metadata"]["name"]  # demo-avatar-lt-{uid}-g1
    assert name == lora["status"]["jobName"] and name.startswith("demo-avatar-lt-") and name.endswith("-g1")
    (pod,) = pods_of(k, job)
    assert pod["spec"]["serviceAccountName"] == "contentgen-worker"
    # kubectl logs, through pods/log: the worker's progress and its last word
    logs = k.run("logs", f"job/{name}").stdout
    assert logs.startswith("fetch 0%") and "LoraTraining default/demo-avatar succeeded" in logs, logs
    last = k.run("logs", pod["metadata"]["name"], "--tail=1").stdout
    assert last == logs.splitlines(keepends=True)[-1]
    assert k.run("logs", f"job/{name}", "--limit-bytes=5").stdout == "fetch"
    assert k.run("logs", "-f", f"job/{name}").stdout == logs  # it ended: so does the stream
    wrong = k.run("logs", f"job/{name}", "-c", "nope", check=False)
    assert (
        wrong.returncode == 1
        and f"container nope is not valid for pod {pod['metadata']['name']}" in wrong.stderr
    )


def assets(world: World, *args: str) -> Any:
    """`contentgen assets ARGS -o json` on the release's catalog and store, as a user runs it."""
    return assets_json(f"{world.catalog.url}contentgen", f"s3://{BUCKET}/assets", world.s3.env, *args)


# A command NOTES prints: a line indented by two spaces that starts with kubectl or helm. Those
# with a placeholder (<chart>, YOUR-BUCKET) are templates for the reader to fill in.
NOTES_COMMAND = re.compile(r"^  (?P<command>(?:kubectl|helm) .+)$", re.MULTILINE)
PLACEHOLDER = re.compile(r"<[a-z-]+>|YOUR-")


def run_notes_command(world: World, command: str) -> str:
    """As a reader would, from the repository's root with the release's kubeconfig; a watch runs
    until it has printed its table, still running then."""
    argv = shlex.split(command)
    argv[0] = str(HELM if argv[0] == "helm" else KUBECTL)
    env = world.kubectl.env()
    if "-w" in argv or "--watch" in argv:
        with subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as watch:
            assert watch.stdout is not None
            header = watch.stdout.readline().decode()  # blocks until the table starts (the test's guard)
            running = watch.poll() is None
            watch.terminate()
            _, err = watch.communicate(timeout=60)
        assert running and header.startswith("NAME"), f"{command}: {header}{err.decode()}"
        return header
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout


def test_the_notes_print_commands_that_work(world: World) -> None:
    """What `helm install` printed (helm get notes), run as printed: every command works on the
    release, and what the notes say of a fal resource without fal.existingSecret is true. After the
    examples: the notes apply examples/imagegeneration.yaml as it is (provider fal)."""
    notes = subprocess.run(
        [str(HELM), "get", "notes", "contentgen", "-n", NS],
        capture_output=True,
        text=True,
        env=world.kubectl.env(),
        timeout=120,
        check=True,
    ).stdout
    commands = [m["command"] for m in NOTES_COMMAND.finditer(notes)]
    runnable = [c for c in commands if not PLACEHOLDER.search(c)]
    assert any("apply -f examples/imagegeneration.yaml" in c for c in runnable), notes
    assert any(" -w" in c for c in runnable) and not any("get contentgen -w" in c for c in commands)
    outputs = {command: run_notes_command(world, command) for command in runnable}
    assert "demo-landscape" in next(out for c, out in outputs.items() if "describe" in c)
    assert "no fal.existingSecret" in notes
    # the offline example of test_the_examples_reach_ready, now fal's as the notes apply it
    one_line_reason(world.kubectl, "demo-landscape", ("MissingCredentials",))


def test_a_worker_pod_deleted_or_evicted_is_run_again_to_succeeded(world: World) -> None:
    """A LoraTraining's worker pod deleted by hand (SIGTERM: the worker stops where it is, the Job
    counts a failure) and another's evicted (the Job's DisruptionTarget rule: not counted): each
    Job's next pod runs its resource to Succeeded; nothing stays Running. Each first worker is held
    in its source's download (a proxy before the media server), so that the deletion and the
    eviction meet a worker at work however fast the offline run is (seven seconds on a quiet
    machine: a worker that had already ended counted no failure)."""
    k = world.kubectl
    media = urlsplit(world.media.url)
    proxy = HoldingProxy((str(media.hostname), int(media.port or 80)), host=str(media.hostname)).start()
    held = {name: proxy.hold(f"?for={name} ".encode()) for name in ("deleted", "evicted")}
    (lora,) = [
        d
        for path in write_examples(EXAMPLES, world.root / "again", world.media.url)
        if path.name == "loratraining.yaml"  # not the other LoRA trainings: early stop, a video LoRA
        for d in yaml.safe_load_all(path.read_text())
        if d and d["kind"] == "LoraTraining"
    ]
    docs = []
    for name in ("deleted", "evicted"):
        doc = json.loads(json.dumps(lora))
        doc["metadata"]["name"] = name
        doc["spec"].update(provider="offline", triggerWord=f"{name}x")
        file = doc["spec"]["source"]["url"].rsplit("/", 1)[-1]
        doc["spec"]["source"]["url"] = f"{proxy.endpoint}/{file}?for={name}"
        docs.append(doc)
    k.run("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))

    def running_pod(name: str) -> str:
        assert held[name].wait(300), f"the worker of {name} never asked for its source"
        pod = running_worker(k, k.json("get", "lora", name)["metadata"]["uid"])
        return str(pod["metadata"]["name"]) if pod else ""

    try:
        deleted = wait_for(lambda: running_pod("deleted"), 300, "the worker of deleted running", interval=0.5)
        k.run("delete", "pod", deleted, "--wait=false")
        evicted = wait_for(lambda: running_pod("evicted"), 300, "the worker of evicted running", interval=0.5)
        _evict(world, k, evicted)
        k.run("wait", "--for=condition=Ready", "lora/deleted", "lora/evicted", "--timeout=600s", timeout=660)
    finally:
        proxy.stop()
    for name, failed in (("deleted", 1), ("evicted", 0)):
        found = k.json("get", "lora", name)
        assert found["status"]["phase"] == "Succeeded", found["status"]
        (job,) = jobs_of(k, found["metadata"]["uid"])
        assert job["status"].get("succeeded") == 1 and job["status"].get("failed", 0) == failed, job["status"]


def _evict(world: World, k: Kubectl, evicted: str, namespace: str = "default") -> None:
    """What `kubectl drain` asks for each pod."""
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": evicted, "namespace": namespace},
    }
    path = world.root / "eviction.json"
    path.write_text(json.dumps(eviction))
    k.run("create", "--raw", f"/api/v1/namespaces/{namespace}/pods/{evicted}/eviction", "-f", str(path))


def one_line_reason(k: Kubectl, name: str, reasons: tuple[str, ...]) -> dict[str, Any]:
    """The resource's status once its Ready condition's reason is one of `reasons`."""
    seen: list[dict[str, Any]] = [{}]

    def reached() -> dict[str, Any] | None:
        seen[0] = k.json("get", "imggen", name).get("status") or {}
        return seen[0] if condition(seen[0]).get("reason") in reasons else None

    try:
        status: dict[str, Any] = wait_for(reached, 300, f"{name}: {' or '.join(reasons)}", interval=1.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; its status: {seen[0]}") from None
    message = condition(status)["message"]
    assert message and "\n" not in message and "Traceback" not in message, message
    return status


def test_an_image_that_cannot_be_pulled_says_so_then_the_deadline_ends_it(world: World) -> None:
    """The worker's image names a registry that answers no pull: the resource says why its pod
    does not start (the kubelet's ErrImagePull or ImagePullBackOff, in one line); the Job's
    activeDeadlineSeconds then ends the run as Failed, DeadlineExceeded: nothing waits forever.
    The chart's deadline (60 s, its least) is on the Job; the test then shortens it on the Job
    itself (a mutable field), as an admin may, rather than wait out the minute."""
    k = world.kubectl
    world.helm(
        "upgrade",
        "contentgen",
        worker={"image": {"repository": UNPULLABLE}},
        jobs={
            "LoraTraining": {"resources": {"requests": {"cpu": "500m"}}},
            "ImageGeneration": {"activeDeadlineSeconds": 60},
        },
    )
    k.run("apply", "-f", "-", stdin=image_generation("unpullable"))
    status = one_line_reason(k, "unpullable", ("PodNotStarting",))
    message = condition(status)["message"]
    assert status["phase"] == "Pending" and UNPULLABLE in message, status
    assert "ErrImagePull" in message or "ImagePullBackOff" in message, message
    (job,) = jobs_of(k, k.json("get", "imggen", "unpullable")["metadata"]["uid"])
    assert job["spec"]["activeDeadlineSeconds"] == 60, job["spec"]
    shortened = '{"spec": {"activeDeadlineSeconds": 1}}'
    k.run("patch", "job", job["metadata"]["name"], "--type=merge", "-p", shortened)
    status = one_line_reason(k, "unpullable", ("DeadlineExceeded",))
    assert status["phase"] == "Failed", status
    pods = pods_of(k, job)
    assert all(p["status"]["phase"] not in ("Pending", "Running") or p["metadata"].get("deletionTimestamp")
               for p in pods), [p["status"]["phase"] for p in pods]  # fmt: skip


def test_a_worker_over_its_memory_limit_is_oomkilled_and_said_so(world: World) -> None:
    k = world.kubectl
    world.helm(
        "upgrade",
        "contentgen",
        jobs={
            "LoraTraining": {"resources": {"requests": {"cpu": "500m"}}},
            "ImageGeneration": {
                "resources": {"requests": {"memory": "32Mi"}, "limits": {"memory": "32Mi"}},
                "backoffLimit": 0,
            },
        },
    )
    k.run("apply", "-f", "-", stdin=image_generation("squeezed"))
    status = one_line_reason(k, "squeezed", ("OOMKilled",))
    message = condition(status)["message"]
    assert status["phase"] == "Failed" and "32Mi" in message, status
    (job,) = jobs_of(k, k.json("get", "imggen", "squeezed")["metadata"]["uid"])
    (pod,) = pods_of(k, job)
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "OOMKilled"


def said(k: Kubectl, name: str, words: str) -> dict[str, Any] | None:
    """The ImageGeneration's status once its Ready condition's message has `words`."""
    status: dict[str, Any] = k.json("get", "imggen", name).get("status") or {}
    return status if words in condition(status).get("message", "") else None


def operator_pods(k: Kubectl, *, ending: bool = False) -> list[dict[str, Any]]:
    """The operator's pods; `ending`: those being deleted too."""
    pods = k.json("get", "pods", "-n", NS, "-l", "app.kubernetes.io/component=operator")["items"]
    return [p for p in pods if ending or not p["metadata"].get("deletionTimestamp")]


def ready(pod: dict[str, Any]) -> bool:
    return condition(pod.get("status"), "Ready").get("status") == "True"


def leader(k: Kubectl) -> str:
    return str(k.json("get", "lease", "-n", NS, "contentgen-operator")["spec"].get("holderIdentity") or "")


def test_upgrade_rolls_the_operator_out(world: World) -> None:
    """`helm upgrade` from one replica to two replaces every operator pod (a settings change: the
    ConfigMap's checksum is in the pod template); a standby is Ready, so the rolling update (whose
    new pods are standbys while the old leader lives: one replica's rollout rests on it too) and
    the PodDisruptionBudget count it, and a node drain may evict it; the new leader acts."""
    k, replicas = world.kubectl, 2
    before = {p["metadata"]["name"] for p in operator_pods(k)}
    world.helm("upgrade", "contentgen", replicaCount=replicas, maxRunningJobsPerNamespace=10 + replicas)
    k.run("rollout", "status", "deployment/contentgen-operator", "-n", NS, "--timeout=300s", timeout=320)
    pods = wait_for(
        lambda: (p := operator_pods(k)) and len(p) == replicas and all(map(ready, p)) and p, 120, "pods"
    )
    assert not before & {p["metadata"]["name"] for p in pods}, "every pod was replaced"
    assert all(p["status"]["containerStatuses"][0]["restartCount"] == 0 for p in pods), "no probe restarts"
    holder = wait_for(
        lambda: leader(k) in {p["metadata"]["name"] for p in pods} and leader(k), 120, "a new leader"
    )
    name = f"after-upgrade-{replicas}"
    k.run("apply", "-f", "-", stdin=image_generation(name))
    k.run("wait", "--for=condition=Ready", f"imggen/{name}", "--timeout=300s", timeout=320)
    pdb = k.json("get", "pdb", "-n", NS, "contentgen-operator")["status"]
    assert pdb["currentHealthy"] == 2 and pdb["disruptionsAllowed"] == 1, pdb
    standby = next(p["metadata"]["name"] for p in pods if p["metadata"]["name"] != holder)
    _evict(world, k, standby, NS)  # allowed while the other replica is Ready


def _alone_and_leading(k: Kubectl) -> bool:
    pods = operator_pods(k, ending=True)
    return len(pods) == 1 and ready(pods[0]) and leader(k) == pods[0]["metadata"]["name"]


def where_it_stands(world: World, name: str, uid: str, pod: str) -> str:
    """For a wait of the silent-node test that ran out, in a few lines, the state first (a CI log
    that keeps a failure's head shows it): the ImageGeneration `name`'s conditions, its Jobs, its
    pod, the nodes' taints and Ready conditions, what the node controller logged of taints,
    evictions and disruption, then the current operator's last log lines (the stopped kubelet
    serves no `kubectl logs`: read from the node's pod-log directory)."""
    k, node, control = world.kubectl, world.cluster.real, world.cluster.control
    assert node is not None and control is not None
    resource = k.json("get", "imggen", name).get("status") or {}
    said_now = [
        {key: c.get(key) for key in ("type", "status", "reason", "message")}
        for c in resource.get("conditions", [])
    ]
    jobs = [j["status"] for j in jobs_of(k, uid)]
    found = k.run("get", "pod", pod, "-o", "json", check=False).stdout
    state = json.loads(found) if found.strip() else {}
    pod_state = {
        "deletionTimestamp": state.get("metadata", {}).get("deletionTimestamp"),
        "phase": state.get("status", {}).get("phase"),
        "conditions": [
            (c.get("type"), c.get("status"), c.get("reason"))
            for c in state.get("status", {}).get("conditions", [])
        ],
    }
    nodes = {
        n["metadata"]["name"]: {
            "taints": [t["key"] for t in n["spec"].get("taints") or []],
            "ready": condition(n.get("status"), "Ready").get("status"),
        }
        for n in k.json("get", "nodes")["items"]
    }
    operators = {
        o["metadata"]["name"]: (o["status"].get("phase"), o["metadata"].get("deletionTimestamp"))
        for o in operator_pods(k, ending=True)
    }
    words = re.compile(rb"node_lifecycle|disruption|(?<!device_)taint_eviction|NodeNotReady")
    lines = (control.logs / "kube-controller-manager.log").read_bytes().splitlines()
    controller = [line.decode(errors="replace")[:200] for line in lines if words.search(line)][-12:]
    logs = sorted(
        node.layout.pod_logs.glob(f"{NS}_contentgen-operator-*/*/*.log"), key=lambda p: p.stat().st_mtime
    )
    operator = logs[-1].read_text(errors="replace")[-1500:] if logs else "(none)"
    processes = []  # frozen by stop_answering: state T
    for pid in host.pod_processes(state.get("metadata", {}).get("uid", "-")):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (
                Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:60].decode(errors="replace")
            )
            processes.append(f"{pid} {stat} {command}")
    worker = sorted(node.layout.pod_logs.glob(f"{NS}_{pod}_*/*/*.log"))
    worker_log = " | ".join(f"{p.parent.name}: {p.read_text(errors='replace')[-400:]}" for p in worker)
    return "\n".join(
        [
            f"at {datetime.now(UTC).isoformat(timespec='seconds')} it says: {json.dumps(said_now)}",
            f"its Jobs: {json.dumps(jobs)}",
            f"its pod {pod}: {json.dumps(pod_state)}",
            f"the nodes: {json.dumps(nodes)}",
            f"the operator's pods: {json.dumps(operators)}, led by {leader(k)}",
            "kube-controller-manager: " + "\n  ".join(controller),
            f"its processes: {processes}; its worker's log ends: {worker_log or '(none)'}",
            f"the operator's log ends: {operator}",
        ]
    )


def test_a_node_that_stops_answering_leaves_its_pod_terminating_said_so_then_the_deadline_ends_it(
    world: World,
) -> None:
    """The node goes silent with a worker on it (its kubelet stopped, the worker frozen: a node
    powered off or cut off). Every node down, the node controller evicts nothing ("master
    disruption mode"); the run says NodeLost all the same. Once another node answers, the silent
    one is tainted unreachable and the taint manager evicts the pod, which stays Terminating, for
    no kubelet confirms its end, and the Job makes none in its place. The resource says so in one
    line (NodeLost) once the pod's grace period is over: nothing announces that moment, so the
    operator looks again then, however far its backoff has grown (it once looked minutes later,
    after the Job's deadline). The Job's deadline then ends the run as Failed, DeadlineExceeded,
    though the Job itself is only FailureTarget: Kubernetes sets Failed once the pod has ended,
    after the node is back. The deadline is the chart's, shortened on the Job (a mutable field, as
    an admin may) once the eviction is said: a deadline running meanwhile would race the eviction.
    Last in this file: the node is away for a minute or two."""
    k = world.kubectl
    node, control = world.cluster.real, world.cluster.control
    assert node is not None and control is not None
    quick = [  # evicted at once from a node that stops answering (else after 300 s)
        {
            "key": f"node.kubernetes.io/{taint}",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 0,
        }
        for taint in ("unreachable", "not-ready")
    ]
    world.helm(
        "upgrade",
        "contentgen",
        # The operator stands for one on a node that stays up. Here it shares the silent node, with
        # no other for a replacement; evicted (the chart's 30 s), its ServiceAccount token would stop
        # working a minute after its grace period (the API server refuses the bound token of a
        # deleted pod: k8s.io/kubernetes pkg/serviceaccount/claims.go), and it would write nothing
        # more: the run stayed NodeLost past its Job's deadline once in three runs (07:11, 11-26).
        nodeLossTolerationSeconds=3600,
        worker={"tolerations": quick, "terminationGracePeriodSeconds": 5},
    )
    # From the last test's two replicas to one: the old pods end and the new one leads before the
    # node goes silent, else an old one the stopped kubelet never ends could hold the Lease.
    wait_for(lambda: _alone_and_leading(k), 180, "the upgraded operator alone and leading", interval=1.0)
    k.run("apply", "-f", "-", stdin=image_generation("stranded"))
    uid = k.json("get", "imggen", "stranded")["metadata"]["uid"]
    pod = wait_for(lambda: running_worker(k, uid), 300, "the worker of stranded running", interval=0.1)
    name = pod["metadata"]["name"]
    controller_log = control.logs / "kube-controller-manager.log"
    before = controller_log.stat().st_size  # the node controller's start logs the same words

    def logged_since(words: bytes) -> bool:
        with controller_log.open("rb") as log:
            log.seek(before)
            return words in log.read()

    node.stop_answering([pod["metadata"]["uid"]])
    print("silent at", datetime.now(UTC).isoformat(timespec="seconds"))
    standby: StandbyNode | None = None
    try:
        wait_for(
            lambda: logged_since(b"Entering master disruption mode"),
            300,
            "the node controller: every node down",
            interval=1.0,
        )
        status = one_line_reason(k, "stranded", ("NodeLost",))
        message = condition(status)["message"]
        assert name in message and "stopped answering" in message, message
        # Whether the pod is evicted already is Kubernetes' race, not ours: kube-controller-manager
        # 1.36 may taint the node unreachable in the pass that then finds every node down, and the
        # taint-eviction controller deletes a pod tolerating it 0 s at once (13 ms after "Entering
        # master disruption mode" at 05:59:14 on 2026-11-26). Either way it stays Terminating.
        standby = StandbyNode(control.client()).start()
        try:
            status = wait_for(
                lambda: said(k, "stranded", "stuck Terminating"),
                300,
                "stranded: NodeLost, stuck Terminating",
                interval=1.0,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {where_it_stands(world, 'stranded', uid, name)}") from None
        message = condition(status)["message"]
        assert name in message and condition(status)["reason"] == "NodeLost", message
        assert condition(status, "Stalled").get("status") == "True", status
        stuck, lost = k.json("get", "pod", name), k.json("get", "node", node.name)
        (job,) = jobs_of(k, uid)
        seen = {"pod": stuck, "node": lost["status"]["conditions"], "job": job["status"], "said": message}
        print("NodeLost:", json.dumps(seen))  # the objects as Kubernetes left them (-s shows them)
        assert stuck["metadata"].get("deletionTimestamp") and stuck["status"]["phase"] == "Running"
        disrupted = condition(stuck["status"], "DisruptionTarget")
        assert disrupted.get("reason") == "DeletionByTaintManager", stuck
        assert condition(lost["status"], "Ready").get("status") == "Unknown", lost["status"]["conditions"]
        gone = condition(job["status"], "Failed")
        assert not gone and job["status"].get("terminating") == 1, job["status"]
        assert job["spec"]["activeDeadlineSeconds"] == 1800, job["spec"]  # the chart's
        shortened = '{"spec": {"activeDeadlineSeconds": 1}}'
        k.run("patch", "job", job["metadata"]["name"], "--type=merge", "-p", shortened)
        try:
            status = one_line_reason(k, "stranded", ("DeadlineExceeded",))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {where_it_stands(world, 'stranded', uid, name)}") from None
        assert status["phase"] == "Failed", status
        (job,) = jobs_of(k, uid)
        print("DeadlineExceeded:", json.dumps(job["status"]))
        assert condition(job["status"], "FailureTarget").get("reason") == "DeadlineExceeded", job["status"]
        assert not condition(job["status"], "Failed"), job["status"]  # held back by the pod that never ends
    finally:
        node.answer_again()
        if standby is not None:
            standby.stop()

    def failed() -> dict[str, Any] | None:
        (job,) = jobs_of(k, uid)
        return job if condition(job.get("status"), "Failed").get("status") == "True" else None

    job = wait_for(failed, 300, "the Job Failed once its node is back", interval=1.0)
    print("back:", json.dumps(job["status"]))
    assert condition(job.get("status"), "Failed")["reason"] == "DeadlineExceeded", job["status"]
    k.run("wait", "--for=condition=Ready", f"node/{node.name}", "--timeout=120s")
