"""The local node: binding, the container environment as the kubelet resolves it, a pod
waiting for its Secret, the termination message (last 4096 bytes, or the log tail with
FallbackToLogsOnError), SIGTERM then SIGKILL on deletion, hold/release, and pods of a deleted
Job. The containers are small Python scripts; `contentgen worker` is what real mode runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from contentgen.cluster.kubelet import contentgen_command
from contentgen.cluster.podenv import Mounts, expand, log_tail, termination_message
from tests.cluster.conftest import API_URL, Cluster, job_manifest, wait_for

pytestmark = pytest.mark.timeout(60)

DUMP_ENV = "\n".join(
    [
        "import json, os",
        "log = os.environ['CONTENTGEN_TERMINATION_LOG']",
        "open(log, 'w').write(json.dumps(dict(os.environ)))",
    ]
)


def pod_manifest(name: str, script: str, **container: Any) -> dict[str, Any]:
    spec_extra = container.pop("spec", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "demo"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "args": ["-c", script], **container}],
            **spec_extra,
        },
    }


def phase_of(cluster: Cluster, name: str, *phases: str) -> dict[str, Any] | None:
    pod = cluster.get("", "pods", "default", name)
    return pod if pod is not None and pod.get("status", {}).get("phase") in phases else None


def finished(cluster: Cluster, name: str) -> dict[str, Any]:
    pod = wait_for(lambda: phase_of(cluster, name, "Succeeded", "Failed"), f"pod {name} to finish")
    return dict(pod)


def terminated(pod: dict[str, Any]) -> dict[str, Any]:
    return dict(pod["status"]["containerStatuses"][0]["state"]["terminated"])


def test_the_environment_is_resolved_like_the_kubelet(cluster: Cluster) -> None:
    cluster.create(
        "", "secrets", {"metadata": {"name": "creds"}, "stringData": {"token": "s3cret", "user": "ann"}}
    )
    cluster.create(
        "", "configmaps", {"metadata": {"name": "conf"}, "data": {"level": "debug", "bad key": "x"}}
    )
    env = [
        {"name": "GREETING", "value": "hello"},
        {"name": "MESSAGE", "value": "$(GREETING) world, $$(GREETING) $(UNDEFINED)"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {
            "name": "OPTIONAL_KEY",
            "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope", "optional": True}},
        },
        {
            "name": "OPTIONAL_SECRET",
            "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}},
        },
        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "conf", "key": "level"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "ACCOUNT", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "CONTENTGEN_WORK_DIR", "value": "/work"},
        {"name": "HOME", "value": "/tmp"},
        {"name": "SPEC_FILE", "value": "/work/inputs/spec.json"},
    ]
    manifest = pod_manifest(
        "env-dump",
        DUMP_ENV,
        env=env,
        envFrom=[{"configMapRef": {"name": "conf"}, "prefix": "CFG_"}, {"secretRef": {"name": "creds"}}],
        volumeMounts=[{"name": "work", "mountPath": "/work"}, {"name": "tmp", "mountPath": "/tmp"}],
        spec={"volumes": [{"name": "work", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]},
    )
    pod = cluster.create("", "pods", manifest)
    done = finished(cluster, "env-dump")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    got = json.loads(terminated(done)["message"])
    uid = pod["metadata"]["uid"]
    assert got["MESSAGE"] == "hello world, $(GREETING) $(UNDEFINED)"
    assert (got["TOKEN"], got["CFG_level"], got["user"]) == ("s3cret", "debug", "ann")
    # the image's environment is under the pod's, the node's overrides over it
    assert (got["FROM_IMAGE"], got["GREETING"], got["FORCED"], got["LEVEL"]) == (
        "image",
        "hello",
        "yes",
        "forced",
    )
    assert "CFG_bad key" not in got and "OPTIONAL_KEY" not in got and "OPTIONAL_SECRET" not in got
    assert (got["POD_NAME"], got["POD_NAMESPACE"], got["POD_UID"], got["APP"]) == (
        "env-dump",
        "default",
        uid,
        "demo",
    )
    assert (got["ACCOUNT"], got["NODE"], got["POD_IP"], got["HOSTNAME"]) == (
        "default",
        "local",
        "127.0.0.1",
        "env-dump",
    )
    # container paths are per-pod host directories
    work = Path(got["CONTENTGEN_WORK_DIR"])
    assert work == cluster.root / "node" / "pods" / uid / "volumes" / "work" and work.is_dir()
    assert got["SPEC_FILE"] == str(work / "inputs" / "spec.json")
    assert got["HOME"] == got["TMPDIR"] == str(cluster.root / "node" / "pods" / uid / "volumes" / "tmp")
    # the API server: the kubernetes service, the URL, the ServiceAccount token and the CA variable
    assert (got["KUBERNETES_SERVICE_HOST"], got["KUBERNETES_SERVICE_PORT"]) == ("127.0.0.1", "6443")
    assert got["CONTENTGEN_KUBE_API"] == API_URL
    assert Path(got["CONTENTGEN_KUBE_TOKEN_FILE"]).read_text() == "token-for:default:default"
    assert Path(got["CONTENTGEN_KUBE_TOKEN_FILE"]).parent.joinpath("namespace").read_text() == "default"
    assert "TEST_KUBE_CA_FILE" not in got  # no CA was given to this node


def test_a_missing_secret_keeps_the_pod_waiting_until_it_appears(cluster: Cluster) -> None:
    env = [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "provider", "key": "FAL_KEY"}}}]
    cluster.create("", "pods", pod_manifest("needs-secret", DUMP_ENV, env=env))

    def waiting(message: str) -> Any:
        pod = cluster.get("", "pods", "default", "needs-secret") or {}
        statuses = pod.get("status", {}).get("containerStatuses") or [{}]
        state = statuses[0].get("state", {}).get("waiting") or {}
        return pod if state == {"reason": "CreateContainerConfigError", "message": message} else None

    pod = wait_for(lambda: waiting('secret "provider" not found'), "CreateContainerConfigError")
    assert pod["status"]["phase"] == "Pending"
    ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ContainersNotReady")
    cluster.create("", "secrets", {"metadata": {"name": "provider"}, "stringData": {"OTHER": "x"}})
    wait_for(lambda: waiting("couldn't find key FAL_KEY in Secret default/provider"), "the missing key")
    assert not [p for p in cluster.node.processes if p.pod == "needs-secret"]
    assert ("Failed", 'Error: secret "provider" not found') in cluster.events("default", "needs-secret")
    cluster.call(
        "patch",
        "",
        "secrets",
        "default",
        "provider",
        {"stringData": {"FAL_KEY": "k-123"}},
        content_type="application/merge-patch+json",
    )
    done = finished(cluster, "needs-secret")
    assert done["status"]["phase"] == "Succeeded"
    assert json.loads(terminated(done)["message"])["API_KEY"] == "k-123"


def test_the_pod_status_follows_the_kubelet(cluster: Cluster, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    script = (
        f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.02)\nraise SystemExit(3)\n"
    )
    cluster.create("", "pods", pod_manifest("lifecycle", script))
    running = wait_for(lambda: phase_of(cluster, "lifecycle", "Running"), "the pod to run")
    conditions = {c["type"]: c["status"] for c in running["status"]["conditions"]}
    assert conditions == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    container = running["status"]["containerStatuses"][0]
    assert container["ready"] and container["started"] and container["state"]["running"]["startedAt"]
    assert running["spec"]["nodeName"] == "local" and running["status"]["podIP"] == "127.0.0.1"
    gate.touch()
    done = finished(cluster, "lifecycle")
    assert done["status"]["phase"] == "Failed"
    state = terminated(done)
    assert (state["exitCode"], state["reason"]) == (3, "Error") and "message" not in state
    assert state["startedAt"] and state["finishedAt"]
    ready = next(c for c in done["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PodFailed")
    reasons = [reason for reason, _ in cluster.events("default", "lifecycle")]
    assert reasons[:3] == ["Scheduled", "Created", "Started"]


def test_the_termination_message_keeps_the_last_4096_bytes(cluster: Cluster) -> None:
    script = (
        "import os\nbody = ''.join(f'{i:05d}|' for i in range(1000))\n"  # 6000 bytes
        "open(os.environ['CONTENTGEN_TERMINATION_LOG'], 'w').write(body)\n"
    )
    cluster.create("", "pods", pod_manifest("long-message", script))
    expected = "".join(f"{i:05d}|" for i in range(1000))[-4096:]
    assert terminated(finished(cluster, "long-message"))["message"] == expected


def test_fallback_to_logs_on_error_takes_the_log_tail(cluster: Cluster) -> None:
    many_short = "for i in range(200): print(f'line {i}')\nraise SystemExit(1)\n"  # 80 lines < 2048 bytes
    few_long = (
        "for i in range(40): print(f'{i:03d}' + 'x' * 96)\nraise SystemExit(1)\n"  # 40 lines, 4000 bytes
    )
    fallback = {"terminationMessagePolicy": "FallbackToLogsOnError"}
    cluster.create("", "pods", pod_manifest("short-lines", many_short, **fallback))
    cluster.create("", "pods", pod_manifest("long-lines", few_long, **fallback))
    cluster.create("", "pods", pod_manifest("succeeds", "print('fine')", **fallback))
    cluster.create("", "pods", pod_manifest("file-policy", "print('oops'); raise SystemExit(1)"))
    short = terminated(finished(cluster, "short-lines"))["message"]
    assert short == "".join(f"line {i}\n" for i in range(120, 200))
    long = terminated(finished(cluster, "long-lines"))["message"]
    assert long == "".join(f"{i:03d}" + "x" * 96 + "\n" for i in range(40))[-2048:]
    assert "message" not in terminated(finished(cluster, "succeeds"))  # only a failed container falls back
    assert "message" not in terminated(finished(cluster, "file-policy"))


def test_a_deleted_pod_gets_sigterm_then_its_deletion_is_finished(cluster: Cluster, tmp_path: Path) -> None:
    marker, ready = tmp_path / "got-sigterm", tmp_path / "handler-set"
    script = (
        "import signal, sys, time\n"
        f"def stop(*_):\n    open({str(marker)!r}, 'w').write('bye')\n    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"open({str(ready)!r}, 'w').close()\n"
        "while True: time.sleep(0.02)\n"
    )
    cluster.create("", "pods", pod_manifest("graceful", script, spec={"terminationGracePeriodSeconds": 30}))
    wait_for(ready.exists, "the process to handle SIGTERM")
    cluster.call("delete", "", "pods", "default", "graceful")
    wait_for(
        lambda: cluster.get("", "pods", "default", "graceful") is None, "the kubelet to finish the deletion"
    )
    assert marker.read_text() == "bye"
    (run,) = [p for p in cluster.node.processes if p.pod == "graceful"]
    assert run.signals == ["SIGTERM"] and run.exit_code == 0
    final = cluster.history("", "pods", "default", "graceful")[-1]  # its last state
    assert final["status"]["phase"] == "Succeeded"
    assert ("Killing", "Stopping container main") in cluster.events("default", "graceful")


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(
    cluster: Cluster, tmp_path: Path
) -> None:
    ready = tmp_path / "ignoring"
    script = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(ready)!r}, 'w').close()\nwhile True: time.sleep(0.02)\n"
    )
    cluster.create("", "pods", pod_manifest("stubborn", script, spec={"terminationGracePeriodSeconds": 0}))
    wait_for(ready.exists, "the process to ignore SIGTERM")
    cluster.call("delete", "", "pods", "default", "stubborn", {"gracePeriodSeconds": 1})
    wait_for(lambda: cluster.get("", "pods", "default", "stubborn") is None, "the kill")
    (run,) = [p for p in cluster.node.processes if p.pod == "stubborn"]
    assert run.signals == ["SIGTERM", "SIGKILL"] and run.exit_code == 137
    assert run.exited is not None and run.exited - run.started >= 2  # never less than the kubelet's minimum
    final = cluster.history("", "pods", "default", "stubborn")[-1]
    assert final["status"]["phase"] == "Failed" and terminated(final)["exitCode"] == 137


def test_hold_keeps_processes_from_starting_until_release(cluster: Cluster) -> None:
    cluster.node.hold()
    cluster.create("", "pods", pod_manifest("held", "pass"))

    def creating() -> Any:
        pod = cluster.get("", "pods", "default", "held") or {}
        statuses = pod.get("status", {}).get("containerStatuses") or [{}]
        return statuses[0].get("state", {}).get("waiting", {}).get("reason") == "ContainerCreating"

    wait_for(creating, "the pod to be created on the node")
    deleted_while_held = cluster.create("", "pods", pod_manifest("never-runs", "pass"))
    wait_for(
        lambda: (
            cluster.get("", "pods", "default", "never-runs")
            and cluster.get("", "pods", "default", "never-runs")["spec"].get("nodeName")
        ),
        "binding",
    )  # type: ignore[index]
    cluster.call("delete", "", "pods", "default", "never-runs")
    wait_for(lambda: cluster.get("", "pods", "default", "never-runs") is None, "the held pod's deletion")
    last = cluster.history("", "pods", "default", "never-runs")[-1]
    assert last["metadata"]["uid"] == deleted_while_held["metadata"]["uid"]
    assert terminated(last)["reason"] == "ContainerStatusUnknown" and last["status"]["phase"] == "Failed"
    assert phase_of(cluster, "held", "Pending") and not cluster.node.processes
    cluster.node.release()
    assert finished(cluster, "held")["status"]["phase"] == "Succeeded"
    assert [p.pod for p in cluster.node.processes] == ["held"]


def test_the_pods_of_a_deleted_job_are_stopped(cluster: Cluster, tmp_path: Path) -> None:
    script = f"import os, time\nwhile not os.path.exists({str(tmp_path / 'never')!r}): time.sleep(0.02)\n"
    job = cluster.create("batch", "jobs", job_manifest("abandoned", "-c", script))
    wait_for(
        lambda: [p for p in cluster.pods_of(job) if p["status"].get("phase") == "Running"], "the pod to run"
    )
    cluster.call("delete", "batch", "jobs", "default", "abandoned", {"propagationPolicy": "Background"})
    wait_for(lambda: not cluster.pods_of(job), "the pod to be collected")
    (run,) = [p for p in cluster.node.processes if p.pod.startswith("abandoned-")]
    assert run.signals == ["SIGTERM"] and run.exit_code == 143


def test_real_mode_runs_the_contentgen_entry_point(cluster: Cluster) -> None:
    argv = contentgen_command({}, {"name": "worker", "args": ["worker", "--spec", "/work/spec.json"]})
    assert argv == [str(Path(sys.executable).parent / "contentgen"), "worker", "--spec", "/work/spec.json"]
    assert Path(argv[0]).exists()
    cluster.node.command = contentgen_command
    cluster.create("", "pods", pod_manifest("other-image", "", command=["sleep"], args=["10"]))
    done = finished(cluster, "other-image")
    state = terminated(done)
    assert (state["exitCode"], state["reason"]) == (128, "StartError")
    assert state["message"] == 'exec: "sleep": executable file not found in $PATH'


def test_secret_and_configmap_volumes_are_files_at_their_mount_paths(cluster: Cluster) -> None:
    cluster.create("", "secrets", {"metadata": {"name": "tls"}, "stringData": {"key.pem": "PRIVATE"}})
    cluster.create(
        "", "configmaps", {"metadata": {"name": "app"}, "data": {"a.yaml": "x: 1", "b.yaml": "y: 2"}}
    )
    script = (
        "import sys\nprint(open(sys.argv[1]).read() + '|' + open(sys.argv[2]).read())\nraise SystemExit(1)\n"
    )
    manifest = pod_manifest(
        "volumes",
        script,
        terminationMessagePolicy="FallbackToLogsOnError",
        volumeMounts=[{"name": "tls", "mountPath": "/etc/tls"}, {"name": "conf", "mountPath": "/etc/app"}],
        spec={
            "volumes": [
                {"name": "tls", "secret": {"secretName": "tls"}},
                {
                    "name": "conf",
                    "configMap": {"name": "app", "items": [{"key": "b.yaml", "path": "only.yaml"}]},
                },
            ]
        },
    )
    manifest["spec"]["containers"][0]["args"] += ["/etc/tls/key.pem", "/etc/app/only.yaml"]
    cluster.create("", "pods", manifest)
    assert terminated(finished(cluster, "volumes"))["message"] == "PRIVATE|y: 2\n"


def test_what_the_node_cannot_run_stays_pending_and_says_why(cluster: Cluster) -> None:
    two = pod_manifest("two-containers", "pass")
    two["spec"]["containers"].append({"name": "sidecar", "image": "busybox", "args": ["-c", "pass"]})
    cluster.create("", "pods", two)
    host = pod_manifest("host-path", "pass", spec={"volumes": [{"name": "h", "hostPath": {"path": "/var"}}]})
    cluster.create("", "pods", host)

    def waiting(name: str) -> Any:
        pod = cluster.get("", "pods", "default", name) or {}
        statuses = pod.get("status", {}).get("containerStatuses") or [{}]
        return statuses[0].get("state", {}).get("waiting")

    state = wait_for(
        lambda: (
            (waiting("two-containers") or {}).get("reason") == "CreateContainerError"
            and waiting("two-containers")
        ),
        "the error",
    )
    assert state["message"] == "the local node runs pods of one container; this one has 2"
    mount = 'MountVolume.SetUp failed for volume "h" : not a volume type the local node has'
    wait_for(
        lambda: ("FailedMount", mount) in cluster.events("default", "host-path"), "the FailedMount event"
    )
    assert waiting("host-path") == {"reason": "ContainerCreating"} and not cluster.node.processes
    cluster.call("delete", "", "pods", "default", "two-containers")
    wait_for(lambda: cluster.get("", "pods", "default", "two-containers") is None, "its deletion")


# --- the pure parts ---------------------------------------------------------------------------


def test_variable_expansion_follows_the_kubelet() -> None:
    values = {"A": "1", "EMPTY": ""}.get
    assert expand("$(A)-$(EMPTY)-$(B)", values) == "1--$(B)"
    assert expand("$$(A) $$ $x $( $(A", values) == "$(A) $ $x $( $(A"
    assert expand("end$", values) == "end$"


def test_container_paths_map_to_the_longest_mount() -> None:
    mounts = Mounts()
    mounts.add("/work", Path("/host/work"))
    mounts.add("/work/cache/", Path("/host/cache"))
    assert mounts.rewrite("/work/a/b") == "/host/work/a/b"
    assert mounts.rewrite("/work/cache/x") == "/host/cache/x"
    assert mounts.rewrite("/workshop") == "/workshop" and mounts.rewrite("relative/work") == "relative/work"


def test_termination_message_edge_cases(tmp_path: Path) -> None:
    message, log = tmp_path / "msg", tmp_path / "log"
    log.write_bytes(b"a\nb\nno newline at the end")
    assert (
        termination_message(message, log, 1, "FallbackToLogsOnError", "Error")
        == "a\nb\nno newline at the end"
    )
    assert termination_message(message, log, 1, "File", "Error") == ""  # no file, no fallback
    message.write_bytes("é".encode() * 2048 + b"!")  # 4097 bytes: the cut splits the first character
    assert (
        termination_message(message, log, 1, "FallbackToLogsOnError", "Error") == "\ufffd" + "é" * 2047 + "!"
    )
    assert log_tail(tmp_path / "missing.log") == ""
