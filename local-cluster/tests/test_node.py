"""The process node against the real control plane, through the real kubectl: what a pod gets
(environment, volumes, its ServiceAccount token at the usual path, its own network), how it ends
(exit codes, termination messages, graceful deletion), restarts and probes, and `kubectl logs`."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import KUBECTL, Kube, pod

pytestmark = pytest.mark.timeout(300)


def test_the_node_is_registered_and_keeps_its_lease(kube: Kube) -> None:
    node = json.loads(kube.kubectl("get", "node", "local", "-o", "json"))
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and node["status"]["nodeInfo"]["kubeletVersion"] == kube.cluster.version
    assert node["status"]["addresses"][0] == {"type": "InternalIP", "address": kube.cluster.host_ip}
    first = json.loads(kube.kubectl("get", "lease", "-n", "kube-node-lease", "local", "-o", "json"))
    kube.wait(
        lambda: (
            json.loads(kube.kubectl("get", "lease", "-n", "kube-node-lease", "local", "-o", "json"))["spec"][
                "renewTime"
            ]
            != first["spec"]["renewTime"]
        ),
        30,
        "a renewal",
    )


def test_environment_from_every_source(kube: Kube) -> None:
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"colour": "blue"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "keys"},
            "data": {"token": base64.b64encode(b"s3cret").decode()},
        },
    )
    env = [
        {"name": "PLAIN", "value": "one"},
        {"name": "EXPANDED", "value": "$(PLAIN)-two $$(PLAIN)"},
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "token"}}},
        {"name": "FROM_CONFIGMAP", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "colour"}}},
        {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {
            "name": "MEMORY_MI",
            "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
        },
    ]
    script = "env | sort > /dev/termination-log"
    container = {"env": env, "resources": {"limits": {"memory": "64Mi"}}}
    kube.apply(pod("env", script, container=container))
    done = kube.phase("env", "Succeeded")
    seen = dict(
        line.split("=", 1)
        for line in done["status"]["containerStatuses"][0]["state"]["terminated"]["message"].splitlines()
    )
    assert seen["PLAIN"] == "one" and seen["EXPANDED"] == "one-two $(PLAIN)"
    assert seen["FROM_SECRET"] == "s3cret" and seen["FROM_CONFIGMAP"] == "blue"
    assert seen["MY_NAME"] == "env" and seen["MY_IP"] == done["status"]["podIP"] and seen["MEMORY_MI"] == "64"
    assert seen["IMAGE_SAYS"] == "hello" and seen["HOSTNAME"] == "env"
    assert seen["KUBERNETES_SERVICE_HOST"] == kube.cluster.host_ip


def test_a_missing_secret_waits_in_create_container_config_error(kube: Kube) -> None:
    env = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]
    kube.apply(pod("unconfigured", "true", container={"env": env}))
    waiting = kube.wait(
        lambda: (
            (s := kube.pod("unconfigured")["status"].get("containerStatuses"))
            and s[0]["state"].get("waiting", {}).get("reason") == "CreateContainerConfigError"
            and s[0]["state"]["waiting"]
        ),
        what="CreateContainerConfigError",
    )
    assert waiting["message"] == 'secret "absent" not found'
    kube.apply(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "absent"}, "stringData": {"k": "v"}}
    )
    kube.phase("unconfigured", "Succeeded")


def test_volumes_and_the_service_account_token(kube: Kube) -> None:
    volumes = [
        {"name": "config", "configMap": {"name": "settings"}},
        {"name": "scratch", "emptyDir": {}},
        {
            "name": "about",
            "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]},
        },
    ]
    mounts = [
        {"name": "config", "mountPath": "/etc/settings"},
        {"name": "scratch", "mountPath": "/scratch"},
        {"name": "about", "mountPath": "/etc/about"},
    ]
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    script = (
        f'echo "$(cat /etc/settings/colour) $(cat /etc/about/labels) '
        f'$(cat {sa}/namespace) $(wc -c < {sa}/token)" > /dev/termination-log; '
        f"test -s {sa}/ca.crt && touch /scratch/written"
    )
    body = pod("volumes", script, volumes=volumes, container={"volumeMounts": mounts})
    body["metadata"]["labels"] = {"app": "demo"}
    kube.apply(body)
    done = kube.phase("volumes", "Succeeded")
    message = done["status"]["containerStatuses"][0]["state"]["terminated"]["message"].split()
    assert message[:3] == ["blue", 'app="demo"', "default"] and int(message[3]) > 100
    # The token sat at its usual path inside the pod's own mount namespace, not on the host.
    assert not Path("/run/secrets/kubernetes.io").exists()


def test_exit_codes_and_termination_messages(kube: Kube) -> None:
    kube.apply(
        pod("fails", "echo last words; exit 3"),
        pod(
            "falls-back",
            "echo from the log; exit 4",
            container={"terminationMessagePolicy": "FallbackToLogsOnError"},
        ),
    )
    failed = kube.phase("fails", "Failed")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert failed["exitCode"] == 3 and failed["reason"] == "Error" and "message" not in failed
    fallback = kube.phase("falls-back", "Failed")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert fallback["message"] == "from the log\n"


def test_restart_policy_restarts_with_back_off(kube: Kube) -> None:
    kube.apply(pod("flaky", "echo run; sleep 0.5; exit 1", restartPolicy="OnFailure"))
    status = kube.wait(
        lambda: (
            (s := kube.pod("flaky")["status"].get("containerStatuses")) and s[0]["restartCount"] >= 2 and s[0]
        ),
        60,
        "two restarts",
    )
    assert status["lastState"]["terminated"]["exitCode"] == 1
    kube.wait(
        lambda: (
            kube.pod("flaky")["status"]["containerStatuses"][0]["state"].get("waiting", {}).get("reason")
            == "CrashLoopBackOff"
        ),
        30,
        "CrashLoopBackOff",
    )
    assert kube.kubectl("logs", "flaky", "--previous") == "run\n"


def test_readiness_and_liveness_probes(kube: Kube) -> None:
    server = f"{sys.executable} -m http.server 8080"
    readiness = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    liveness = {
        "exec": {"command": ["test", "-e", "/nonexistent"]},
        "periodSeconds": 1,
        "failureThreshold": 2,
    }
    kube.apply(
        pod("served", server, restartPolicy="Always", container={"readinessProbe": readiness}),
        pod("unwell", "sleep 600", restartPolicy="Always", container={"livenessProbe": liveness}),
    )
    kube.wait(lambda: ready(kube, "served"), 60, "Ready")
    kube.wait(
        lambda: kube.pod("unwell")["status"]["containerStatuses"][0]["restartCount"] >= 1, 60, "a restart"
    )
    events = kube.kubectl("get", "events", "--field-selector", "involvedObject.name=unwell")
    assert "failed liveness probe, will be restarted" in events


def ready(kube: Kube, name: str) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in kube.pod(name)["status"].get("conditions") or []
    )


def test_two_pods_listen_on_the_same_port(kube: Kube) -> None:
    if not kube.cluster.isolated:
        pytest.skip("pods share the host's network here (no root or no ip netns)")
    server = f"{sys.executable} -m http.server 8081"
    probe = {"httpGet": {"path": "/", "port": 8081}, "periodSeconds": 1}
    for name in ("twin-a", "twin-b"):
        kube.apply(pod(name, server, restartPolicy="Always", container={"readinessProbe": probe}))
    kube.wait(lambda: ready(kube, "twin-a") and ready(kube, "twin-b"), 60, "both Ready")
    assert len({kube.pod(n)["status"]["podIP"] for n in ("twin-a", "twin-b")}) == 2


def test_graceful_deletion(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> None:
    """As a kubelet: SIGTERM first; a container that exits on it ends at once (well inside a grace
    period of 300 s); one that ignores it runs on until its grace period ends, then SIGKILL."""
    folder = tmp_path_factory.mktemp("graceful")
    marker, listening = folder / "terminated", folder / "listening"
    script = f"trap 'echo term > {marker}; exit 0' TERM; touch {listening}; while true; do sleep 0.1; done"
    kube.apply(pod("polite", script, restartPolicy="Always", terminationGracePeriodSeconds=300))
    kube.wait(listening.exists, 60, "the trap set")
    kube.kubectl("delete", "pod", "polite", "--wait=true", "--timeout=120s")  # far less than 300 s
    assert marker.read_text() == "term\n"
    heard, ticks, ready = folder / "heard", folder / "ticks", folder / "stubborn"
    stubborn = (
        f"trap 'echo term > {heard}' TERM; touch {ready}; "
        f"while true; do [ -f {heard} ] && echo tick >> {ticks}; sleep 0.1; done"
    )
    kube.apply(pod("stubborn", stubborn, restartPolicy="Always", terminationGracePeriodSeconds=3))
    kube.wait(ready.exists, 60, "the trap set")
    (process,) = [p for p in kube.cluster.node.processes if p.pod == "stubborn"]
    kube.kubectl("delete", "pod", "stubborn", "--wait=true", "--timeout=120s")
    assert heard.read_text() == "term\n"  # SIGTERM first,
    assert ticks.read_text().count("tick") >= 2  # heard and outlived (it ran on after it),
    with pytest.raises(ProcessLookupError):  # then SIGKILL: the pod is gone only once it is
        os.kill(process.pid, 0)


def test_a_pod_never_goes_back_from_running_to_pending(
    kube: Kube, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Every phase the API server stored from Running on (a watch sees each write): Running, then
    the end, never Pending between (getPhase counts a container that ended as stopped at once, as
    the kubelet does; this node wrote Pending until it had decided not to restart it)."""
    folder = tmp_path_factory.mktemp("phases")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(kube.home),
        "KUBECONFIG": str(kube.cluster.kubeconfig),
    }
    for name, code, end in (("brief", 0, "Succeeded"), ("brittle", 3, "Failed")):
        go = folder / name
        kube.apply(pod(name, f"while [ ! -f {go} ]; do sleep 0.1; done; exit {code}"))
        kube.phase(name, "Running")
        watch = subprocess.Popen(
            [str(KUBECTL), "get", "pod", name, "--watch", "-o", 'jsonpath={.status.phase}{"\\n"}'],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert watch.stdout is not None
            assert watch.stdout.readline() == "Running\n"  # the watch has begun
            go.touch()
            kube.phase(name, end)
            kube.kubectl("delete", "pod", name, "--wait=true", "--timeout=120s")
        finally:
            watch.terminate()
        out, _ = watch.communicate(timeout=30)
        phases = ["Running", *(line for line in out.splitlines() if line)]
        assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == ["Running", end], phases


def test_logs_through_the_api_server(kube: Kube) -> None:
    script = "echo oops >&2; for i in 1 2 3 4 5; do echo line $i; done"
    kube.apply(pod("talker", script))
    kube.phase("talker", "Succeeded")
    # Both streams, each in order (between them, the order is the order they were read in).
    lines = kube.kubectl("logs", "talker").splitlines()
    assert [x for x in lines if x.startswith("line")] == [
        f"line {i}" for i in range(1, 6)
    ] and "oops" in lines
    # the last two of that same order, wherever "oops" fell among the lines
    assert kube.kubectl("logs", "talker", "--tail=2") == "".join(f"{x}\n" for x in lines[-2:])
    assert len(kube.kubectl("logs", "talker", "--limit-bytes=6")) == 6
    stamped = kube.kubectl("logs", "talker", "--timestamps").splitlines()
    assert all(x.split(" ", 1)[0][:4].isdigit() and "T" in x.split(" ", 1)[0] for x in stamped)
    assert sorted(x.split(" ", 1)[1] for x in stamped) == sorted(lines)
    assert sorted(kube.kubectl("logs", "talker", "--since=1h").splitlines()) == sorted(lines)
    assert kube.kubectl("logs", "talker", "--since-time=2100-01-01T00:00:00Z") == ""
    kube.apply(pod("streamer", "for i in 1 2 3; do echo tick $i; sleep 1; done"))
    kube.phase("streamer", "Running")
    assert kube.kubectl("logs", "-f", "streamer") == "tick 1\ntick 2\ntick 3\n"  # ends with the container


def test_an_image_the_node_does_not_have(kube: Kube) -> None:
    body = pod("unknown", "true")
    body["spec"]["containers"][0]["image"] = "registry.example.com/nginx:1.27"
    kube.apply(body)
    waiting = kube.wait(
        lambda: (
            (s := kube.pod("unknown")["status"].get("containerStatuses"))
            and s[0]["state"].get("waiting", {}).get("reason") in ("ErrImagePull", "ImagePullBackOff")
            and s[0]["state"]["waiting"]
        ),
        what="ErrImagePull",
    )
    assert "the local node runs no images" in waiting["message"] and "toolbox" in waiting["message"]
    assert "is waiting to start: " in kube.kubectl("logs", "unknown", check=False)
    # It would retry its pull for the rest of the session's cluster otherwise.
    kube.kubectl("delete", "pod", "unknown", "--wait=true", "--timeout=60s")


def test_the_node_advertises_gpus_to_the_scheduler(kube: Kube) -> None:
    """With one nvidia.com/gpu in the node's capacity the real scheduler places one GPU pod at a
    time; the next waits Unschedulable until the first is gone."""
    node = kube.cluster.node
    assert node is not None
    node.set_capacity({"nvidia.com/gpu": "1"})
    try:
        kube.wait(
            lambda: (
                json.loads(kube.kubectl("get", "node", "local", "-o", "json"))["status"]["allocatable"].get(
                    "nvidia.com/gpu"
                )
                == "1"
            ),
            60,
            "the node advertising a GPU",
        )
        gpu = {"resources": {"limits": {"nvidia.com/gpu": "1"}}}
        kube.apply(
            pod("gpu-first", "sleep 600", container=gpu), pod("gpu-second", "echo done", container=gpu)
        )
        kube.phase("gpu-first", "Running")
        waiting = kube.wait(
            lambda: next(
                (
                    c
                    for c in kube.pod("gpu-second")["status"].get("conditions") or []
                    if c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
                ),
                None,
            ),
            60,
            "the second GPU pod unschedulable",
        )
        assert "Insufficient nvidia.com/gpu" in waiting["message"], waiting
        assert not kube.pod("gpu-second")["spec"].get("nodeName")
        kube.kubectl("delete", "pod", "gpu-first", "--wait=true")
        kube.phase("gpu-second", "Succeeded")
    finally:
        node.set_capacity({"nvidia.com/gpu": "0"})


def test_options_gpus_are_in_the_node_capacity(tmp_path: Path) -> None:
    from localcluster import Options
    from localcluster.cluster import node_capacity

    assert "nvidia.com/gpu" not in node_capacity(Options(tmp_path))
    assert node_capacity(Options(tmp_path, gpus=2))["nvidia.com/gpu"] == "2"
    assert node_capacity(Options(tmp_path, node_capacity={"cpu": "4"}, gpus=1)) == {
        "cpu": "4",
        "nvidia.com/gpu": "1",
    }


def test_a_pod_that_ends_while_the_api_server_is_away_is_reported_once_it_is_back(
    kube: Kube, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its final status is written again until the API server takes it, as the kubelet's status
    manager does: written once, it stayed Running for good, and its Job never finished
    (bench/faults.py's kube-apiserver stop)."""
    import logging

    go = tmp_path / "go"
    kube.apply(pod("ends-while-away", f"while [ ! -f {go} ]; do sleep 0.1; done; exit 0"))
    kube.phase("ends-while-away", "Running")
    control = kube.cluster.control
    assert control is not None
    control.components["kube-apiserver"].stop(timeout=5.0)
    with caplog.at_level(logging.WARNING, "localcluster.node"):
        go.touch()
        # Refused again and again: once its container ended and once as the pod's last word, the
        # node gave up after at most three (where the pod stayed Running for good).
        kube.wait(
            lambda: sum("ends-while-away: status not written" in r.getMessage() for r in caplog.records) >= 5,
            90,
            "the final status refused while the API server is away",
        )
    control.start_apiserver()
    assert (
        kube.phase("ends-while-away", "Succeeded")["status"]["containerStatuses"][0]["state"]["terminated"][
            "exitCode"
        ]
        == 0
    )


def test_the_api_server_starts_again_once_its_port_is_let_go(kube: Kube) -> None:
    """A restarted kube-apiserver whose port is held for a moment (by another socket: a client's
    connection can take a freed port) exits on "address already in use" and is started again
    until it binds, as a kubelet restarts a static pod. Last in this file: every watch breaks."""
    import socket
    import threading

    control = kube.cluster.control
    assert control is not None
    apiserver = control.components["kube-apiserver"]
    apiserver.stop(timeout=5.0)
    # Listening on it: the server's bind fails while it is open. (SO_REUSEADDR, as the server sets
    # it: the old server's closed connections may still be in TIME_WAIT on that port.)
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind((control.host, control.port))
    holder.listen()
    release = threading.Timer(3.0, holder.close)
    release.start()
    try:
        control.start_apiserver()
    finally:
        release.cancel()
        holder.close()
    assert "address already in use" in apiserver.log_file.read_text(errors="replace")
    assert "Ready" in kube.kubectl("get", "nodes")
