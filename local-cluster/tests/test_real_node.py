"""The real node (a kubelet, containerd and runc, the CNI plugins, kube-proxy and CoreDNS) against
the real control plane, through the real kubectl: the Node Ready, pods of an image made from scratch
running, logs and exec through the kubelet API, pod-to-pod traffic, a Service by its DNS name,
the host and pods reaching each other, two clusters at once, nothing left behind after a stop or
after the owner is SIGKILLed, and the one-line refusal where containerd is missing."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import KUBECTL, Kube

from localcluster import LocalCluster, NodeUnavailable, Options
from localcluster.node import host, ociimage, seed
from localcluster.node.layout import NODES, Layout
from localcluster.node.nodenet import registry_lock
from localcluster.node.teardown import State, leftovers, remove_dead
from localcluster.processes import started

# Wherever the machine has what a node needs (host.check), else skipped saying what is missing;
# CONTENTGEN_TEST_REAL_NODE=0 skips them, =1 fails them where they cannot run. Each start waits
# under a hang guard (LocalCluster.start), not a deadline the whole suite's load could miss.
SKIP_REASON = host.suite_skip_reason()
pytestmark = [pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "-"), pytest.mark.timeout(600)]

PROBE = ociimage.PROBE_IMAGE


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ociimage.probe_archive(tmp_path_factory.mktemp("probe") / "probe.tar")


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, archive: Path) -> Iterator[Kube]:
    if not KUBECTL.exists():
        pytest.fail("kubectl is missing: run `make tools`")
    root = tmp_path_factory.mktemp("real-node")
    cluster = LocalCluster(Options(root / "cluster", image_archives=[archive])).start()
    try:
        yield Kube(cluster, root / "home")
    finally:
        cluster.stop()


def probe_pod(
    name: str, *args: str, labels: dict[str, str] | None = None, restart: str = "Never"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
        "spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "main", "image": PROBE, "imagePullPolicy": "Never", "args": list(args)}],
        },
    }


def layout_of(cluster: LocalCluster) -> Layout:
    assert cluster.real is not None
    return cluster.real.layout


def test_the_node_is_a_real_kubelet_and_ready(real: Kube) -> None:
    node = json.loads(real.kubectl("get", "node", "local", "-o", "json"))
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    info = node["status"]["nodeInfo"]
    assert ready["status"] == "True"
    assert info["kubeletVersion"] == real.cluster.version
    assert info["containerRuntimeVersion"].startswith("containerd://")
    assert {"type": "InternalIP", "address": layout_of(real.cluster).node_ip} in node["status"]["addresses"]

    def images() -> set[str]:
        found = json.loads(real.kubectl("get", "node", "local", "-o", "json"))["status"].get("images", [])
        return {name for image in found for name in image["names"]}

    # the archives are imported while the kubelet starts: its next status report lists them
    assert real.wait(
        lambda: {PROBE, "localcluster.local/pause:3.10.2"} <= images(), 120, "both images listed"
    )


def test_a_pod_runs_and_its_logs_and_exec_go_through_the_kubelet(real: Kube) -> None:
    real.apply(probe_pod("echo", "echo", "hello", "from", "a", "container"))
    done = real.phase("echo", "Succeeded")
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert real.kubectl("logs", "echo") == "hello from a container\n"
    real.apply(probe_pod("sleeper", "sleep"))
    real.phase("sleeper", "Running")
    assert real.kubectl("exec", "sleeper", "--", "/probe", "echo", "inside") == "inside\n"
    # the image's file system and nothing of the host's: no shell
    out = real.kubectl("exec", "sleeper", "--", "/bin/sh", "-c", "true", check=False)
    assert "no such file or directory" in out
    real.kubectl("delete", "pod", "echo", "sleeper", "--wait=true")


def test_pods_services_dns_and_the_host_reach_each_other(real: Kube) -> None:
    layout = layout_of(real.cluster)
    real.apply(
        probe_pod("web", "serve", "8080", labels={"app": "web"}),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        probe_pod("client", "sleep"),
    )
    web = real.phase("web", "Running")
    real.phase("client", "Running")
    web_ip = web["status"]["podIP"]
    assert layout.owns_ip(web_ip)

    def fetch(url: str) -> str:
        return real.kubectl("exec", "client", "--", "/probe", "get", url, check=False)

    assert real.wait(lambda: fetch(f"http://{web_ip}:8080/") == "hello from web\n", 60, "pod to pod")
    # the Service by its names, through CoreDNS and kube-proxy's rules
    for url in ("http://web/", "http://web.default.svc.cluster.local/"):
        assert real.wait(lambda u=url: fetch(u) == "hello from web\n", 60, f"{url} from a pod")  # type: ignore[misc]
    service_ip = json.loads(real.kubectl("get", "service", "web", "-o", "json"))["spec"]["clusterIP"]
    assert (
        real.kubectl("exec", "client", "--", "/probe", "lookup", "web.default.svc.cluster.local")
        == f"{service_ip}\n"
    )
    # the host reaches a pod and a Service by their IPs
    assert httpx.get(f"http://{web_ip}:8080/", timeout=5).text == "hello from web\n"
    assert real.wait(
        lambda: httpx.get(f"http://{service_ip}/", timeout=5).text == "hello from web\n",
        60,
        "the Service from the host",
    )
    # and a pod reaches what the host serves at the cluster's host IP
    server = http.server.ThreadingHTTPServer((real.cluster.host_ip, 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert fetch(f"http://{real.cluster.host_ip}:{server.server_port}/") == "hello from the host\n"
    finally:
        server.shutdown()
    real.kubectl("delete", "pod", "web", "client", "--wait=true")
    real.kubectl("delete", "service", "web")


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from the host\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_images_are_linked_from_a_seed_made_once(real: Kube, tmp_path: Path) -> None:
    """The node's containerd root is the seed's tree: blobs and layers hard-linked (the same
    files), the databases containerd writes copied (its own)."""
    node = real.cluster.real
    assert node is not None and node.programs is not None
    seed_root = seed.SEEDS / seed.key(node.programs, [node.pause, *node.archives]) / "root"
    root = layout_of(real.cluster).containerd_root
    blobs = [b for b in (seed_root / "io.containerd.content.v1.content" / "blobs").rglob("*") if b.is_file()]
    # (what no image refers to, such as an archive's own index, the node's containerd collects)
    linked = [b for b in blobs if (root / b.relative_to(seed_root)).exists()]
    assert len(linked) >= 3, "the probe's and the pause image's config, manifest and layer"
    for blob in linked:
        assert (root / blob.relative_to(seed_root)).stat().st_ino == blob.stat().st_ino
    databases = list(seed_root.rglob("*.db"))
    assert len(databases) >= 2  # containerd's metadata and the overlayfs snapshotter's
    for database in databases:
        assert (root / database.relative_to(seed_root)).stat().st_ino != database.stat().st_ino
    # A seed that cannot be made leaves nothing: the node imports its images as before.
    missing = tmp_path / "no-such-archive.tar"
    assert not seed.plant(tmp_path / "root", node.programs, [missing], tmp_path / "seeds")
    assert not (tmp_path / "root").exists()


def test_two_clusters_at_once_and_nothing_left_after_stop(real: Kube, archive: Path, tmp_path: Path) -> None:
    second = LocalCluster(Options(tmp_path / "second", image_archives=[archive])).start()
    layout = layout_of(second)
    try:
        assert layout.subnet != layout_of(real.cluster).subnet
        other = Kube(second, tmp_path / "home")
        # the same pod name, port and Service on both: nothing shared
        for kube in (real, other):
            kube.apply(probe_pod("twin", "serve", "8080"))
        twins = [kube.phase("twin", "Running")["status"]["podIP"] for kube in (real, other)]
        assert twins[0] != twins[1]
        for ip in twins:
            assert real.wait(lambda i=ip: _get(f"http://{i}:8080/") == "hello from twin\n", 60, ip)  # type: ignore[misc]
    finally:
        second.stop()
    assert leftovers(layout) == []
    # the first cluster is untouched
    assert _get(f"http://{twins[0]}:8080/") == "hello from twin\n"
    real.kubectl("delete", "pod", "twin", "--wait=true")


def test_a_directory_started_again_on_another_subnet(real: Kube, archive: Path, tmp_path: Path) -> None:
    """`contentgen local-cluster --dir` starts one directory again and again; the subnet is the
    first free one each time, so its certificates follow the addresses. Its old subnet is held
    meanwhile by a registration of this process's, as another cluster's claim holds one: a real
    second cluster here raced the suite's others for the first free subnet (CI, 11-29)."""
    options = Options(tmp_path / "again", image_archives=[archive])
    first = LocalCluster(options).start()
    subnet = layout_of(first).subnet
    first.stop()
    with registry_lock():
        holder = State(subnet, str(tmp_path / "holder"), os.getpid(), started(os.getpid()))
        held = not holder.layout.state_file.exists()  # else another cluster took it already
        if held:
            holder.write()
    try:
        again = LocalCluster(options).start()
        try:
            assert layout_of(again).subnet != subnet
            kube = Kube(again, tmp_path / "home")
            kube.apply(probe_pod("sleeper", "sleep"))
            kube.phase("sleeper", "Running")
            assert kube.kubectl("exec", "sleeper", "--", "/probe", "echo", "again") == "again\n"
        finally:
            again.stop()
    finally:
        if held:
            holder.layout.state_file.unlink()


def _get(url: str) -> str:
    try:
        return httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return ""


OWNER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from localcluster import LocalCluster, Options
    options = Options(Path(sys.argv[1]), image_archives=[Path(sys.argv[2])])
    cluster = LocalCluster(options).start()
    client = cluster.client()
    container = {"name": "main", "image": sys.argv[3], "imagePullPolicy": "Never"}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "left"}}
    pod["spec"] = {"containers": [container]}
    client.create("/api/v1/namespaces/default/pods", pod)
    while client.get("/api/v1/namespaces/default/pods/left")["status"].get("phase") != "Running":
        time.sleep(0.1)
    print(json.dumps({"subnet": cluster.real.layout.subnet}), flush=True)
    time.sleep(3600)
    """
)


def _start_owner(directory: Path, archive: Path) -> tuple[subprocess.Popen[str], Layout]:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(directory), str(archive), PROBE],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert owner.stdout is not None
    line = owner.stdout.readline()
    assert line, "the owner process did not start its cluster"
    layout = Layout(json.loads(line)["subnet"], directory / "node")
    assert any(item.startswith("mount ") for item in leftovers(layout))  # a pod's, at least
    return owner, layout


def _waited(check: Any, timeout: float = 60.0) -> None:
    """Poll `check()` until it is true or `timeout` seconds pass (a hang guard: the caller asserts)."""
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_sigkilled_owner_leaves_nothing_behind(archive: Path, tmp_path: Path) -> None:
    owner, layout = _start_owner(tmp_path / "killed", archive)
    os.killpg(owner.pid, signal.SIGKILL)  # the owner and its process group: the reaper is not in it
    owner.wait()
    _waited(lambda: not leftovers(layout))
    assert leftovers(layout) == []


def test_a_node_whose_owner_and_reaper_died_is_removed_at_the_next_start(
    archive: Path, tmp_path: Path
) -> None:
    owner, layout = _start_owner(tmp_path / "orphan", archive)
    state = State.read(layout.state_file)
    assert state is not None
    os.kill(state.reaper, signal.SIGKILL)
    os.killpg(owner.pid, signal.SIGKILL)
    owner.wait()
    # A SIGKILL ends a process once the kernel schedules it: under the whole suite's load the
    # reaper still ran when remove_dead looked (11-26, 10:0x), which rightly left a live node alone.
    _waited(lambda: not state.live())
    assert not state.live(), "the reaper did not end within 60 s of its SIGKILL"
    assert leftovers(layout) != []  # nobody cleaned up
    with registry_lock():  # what the next node's start does first
        remove_dead()
    assert leftovers(layout) == []


def test_without_containerd_the_node_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("ip", "nsenter", "iptables", "runc"):  # everything but containerd and ctr
        found = subprocess.run(
            ["sh", "-c", f"command -v {program}"], capture_output=True, text=True, check=True
        )
        (bin_dir / program).symlink_to(found.stdout.strip())
    monkeypatch.setenv("PATH", str(bin_dir))
    before = set(NODES.glob("lc*.json"))
    with pytest.raises(NodeUnavailable) as refused:
        LocalCluster(Options(tmp_path / "cluster")).start()
    message = str(refused.value)
    assert "\n" not in message
    assert "containerd, ctr" in message and "apt-get install containerd" in message
    assert set(NODES.glob("lc*.json")) == before  # nothing claimed, nothing started
