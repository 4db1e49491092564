"""The real node's decisions, without a machine to run it on: its addresses and names, the settings
that mend the errors met on this kind of machine, the subnet it picks, the refusal's words, the
image archives it makes."""

from __future__ import annotations

import io
import json
import os
import tarfile
import tomllib
from pathlib import Path

import pytest

from localcluster.node import configs, host, layout, ociimage
from localcluster.node.host import in_pod, missing_programs
from localcluster.node.layout import Layout
from localcluster.node.nodenet import free_subnet
from localcluster.node.teardown import State, leftovers, shim_socket
from localcluster.processes import started

LAYOUT = Layout(201, Path("/tmp/c/node"))


def test_a_node_is_drawn_from_its_subnet() -> None:
    assert (LAYOUT.host_ip, LAYOUT.node_ip, LAYOUT.pod_cidr, LAYOUT.service_cidr) == (
        "10.201.0.1",
        "10.201.0.2",
        "10.201.128.0/17",
        "10.201.64.0/18",
    )
    assert all(len(name) <= 15 for name in (LAYOUT.netns, LAYOUT.host_veth, LAYOUT.node_veth, LAYOUT.bridge))
    assert LAYOUT.owns_ip("10.201.128.7") and LAYOUT.owns_ip("10.201.255.1")
    assert not LAYOUT.owns_ip("10.201.0.2") and not LAYOUT.owns_ip("10.202.128.7")
    assert len(str(LAYOUT.containerd_socket) + ".ttrpc") < 108  # a unix socket's limit


def test_the_kubelets_sockets_fit_whatever_the_nodes_directory() -> None:
    """The kubelet's root is a short link to the node's directory: its pod-resources socket
    (a 10-digit name) under 108 bytes even for a long --dir, where the kubelet exited at start."""
    deep = Layout(201, Path("/tmp/pytest-of-root/pytest-145/test_the_examples_on_the_real_0/cluster/node"))
    assert len(str(deep.kubelet_root / "pod-resources" / "3690785165")) >= 108  # what failed
    assert len(str(deep.kubelet_link / "pod-resources" / "3690785165")) < 108
    assert deep.kubelet_link.parent == deep.run_dir  # removed with it at stop


def test_free_subnet_skips_registered_and_routed_ones() -> None:
    routes = "default via 172.16.0.1 dev eth0\n10.200.0.0/16 dev lcbr200 proto kernel\n"
    assert free_subnet(set(), routes) == 201
    assert free_subnet({201, 202}, routes) == 203
    with pytest.raises(RuntimeError, match="no free"):
        free_subnet(set(range(200, 255)), "")


def test_containerd_is_configured_for_this_kind_of_machine() -> None:
    config = tomllib.loads(
        configs.containerd_config(LAYOUT, runc="/usr/sbin/runc", cni_bin_dir="/usr/lib/cni")
    )
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True  # no CAP_SYS_RESOURCE
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["sandbox_image"] == configs.PAUSE_IMAGE
    options = cri["containerd"]["runtimes"]["runc"]["options"]
    assert options == {"BinaryName": "/usr/sbin/runc", "Root": str(LAYOUT.runc_root), "SystemdCgroup": False}
    assert cri["cni"]["conf_dir"] == str(LAYOUT.cni_conf_dir)  # not the host's /etc/cni/net.d
    assert config["root"].startswith(str(LAYOUT.directory)) and config["state"].startswith(
        str(LAYOUT.directory)
    )
    assert config["grpc"]["address"] == str(LAYOUT.containerd_socket)
    assert "io.containerd.internal.v1.opt" in config["disabled_plugins"]


def test_the_kubelet_refuses_cgroup_v1_unless_told() -> None:
    serving = (Path("s.crt"), Path("s.key"))
    v1 = configs.kubelet_config(LAYOUT, ca_file=Path("ca.crt"), serving=serving, cgroup_v1=True, max_pods=10)
    v2 = configs.kubelet_config(LAYOUT, ca_file=Path("ca.crt"), serving=serving, cgroup_v1=False, max_pods=10)
    assert v1["failCgroupV1"] is False and "failCgroupV1" not in v2
    assert v1["cgroupDriver"] == "cgroupfs" and v1["cgroupRoot"] == "/localcluster201"
    assert v1["failSwapOn"] is False and v1["readOnlyPort"] == 0
    assert (
        v1["authentication"]["x509"]["clientCAFile"] == "ca.crt" and v1["authorization"]["mode"] == "Webhook"
    )
    assert v1["clusterDNS"] == [LAYOUT.node_ip] and v1["resolvConf"] == ""
    assert v1["imageGCHighThresholdPercent"] == 100


def test_the_pod_network_is_the_nodes_own() -> None:
    network = configs.cni_network(LAYOUT)
    bridge = network["plugins"][0]
    assert bridge["bridge"] == "lc201pods" and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.201.128.0/17", "gateway": "10.201.128.1"}]]
    assert bridge["ipam"]["dataDir"].startswith(str(LAYOUT.directory))  # not /var/lib/cni
    assert "bind 10.201.0.2" in configs.corefile(LAYOUT, kubeconfig=Path("k"))


def test_the_refusal_names_what_is_missing() -> None:
    found = {"containerd": None, "ctr": None, "runc": "/usr/sbin/runc", "ip": "/usr/sbin/ip"}
    assert missing_programs(found, "/usr/lib/cni") == ["containerd", "ctr"]
    assert missing_programs({"runc": "/usr/sbin/runc"}, None) == [
        "CNI plugins (bridge, host-local, loopback, portmap)"
    ]


def test_a_shim_socket_is_where_containerd_1x_puts_it() -> None:
    # sha256("/run/localcluster/lc201/containerd.sock/k8s.io/abc"), as containerd's shim.SocketAddress
    path = shim_socket(Path("/run/localcluster/lc201/containerd.sock"), "k8s.io", "abc")
    assert path.parent == Path("/run/containerd/s") and len(path.name) == 64


def test_an_image_made_from_scratch() -> None:
    spec = ociimage.ImageSpec("localcluster.local/x:1", {"/bin/x": ociimage.File(b"#!x")}, ["/bin/x"], ["a"])
    data = ociimage.archive(spec)
    assert data == ociimage.archive(spec)  # reproducible
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        config = json.loads(tar.extractfile(manifest[0]["Config"]).read())  # type: ignore[union-attr]
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == ["localcluster.local/x:1"]
    assert config["config"]["Entrypoint"] == ["/bin/x"] and config["config"]["Cmd"] == ["a"]
    with tarfile.open(fileobj=io.BytesIO(layer)) as files:
        assert files.getnames() == ["bin", "bin/x"]
        assert files.getmember("bin/x").mode == 0o755


def test_a_pods_processes_are_found_by_its_cgroup() -> None:
    uid = "5c1e0c5e-8d51-4d6f-9a57-0f1b2f3a4b5c"
    cgroupfs = f"12:memory:/cg-node/kubepods/besteffort/pod{uid}/0123abcd\n0::/\n"
    systemd = (
        f"1:name=systemd:/kubepods.slice/kubepods-pod{uid.replace('-', '_')}.slice/cri-containerd-1.scope\n"
    )
    sandbox = f"12:memory:/cg-node/kubepods/burstable/pod{uid}\n"
    assert in_pod(cgroupfs, uid) and in_pod(systemd, uid) and in_pod(sandbox, uid)
    assert not in_pod(f"12:memory:/cg-node/kubepods/besteffort/pod{uid}x/1\n", uid)
    assert not in_pod("12:memory:/cg-node/node\n", uid)


def test_a_suites_real_node_tests_run_where_the_node_can_unless_told() -> None:
    try:
        host.check()
        here = ""
    except host.NodeUnavailable as exc:
        here = str(exc)
    assert host.suite_skip_reason({}) == (
        f"{here} (CONTENTGEN_TEST_REAL_NODE=1 runs them regardless)" if here else ""
    )
    assert host.suite_skip_reason({"CONTENTGEN_TEST_REAL_NODE": "0"}) == "CONTENTGEN_TEST_REAL_NODE=0"
    assert host.suite_skip_reason({"CONTENTGEN_TEST_REAL_NODE": "1"}) == ""  # then a failure says why


def test_in_ci_a_real_node_test_that_cannot_run_fails_instead_of_skipping() -> None:
    """CI=true (as CI services set it) means CONTENTGEN_TEST_REAL_NODE=1 unless it is given: the
    suite cannot pass there with its real-node tier skipped (issue 71); `make test` sets it too."""
    assert host.required_setting({"CI": "true"}) == "1"
    assert host.suite_skip_reason({"CI": "true"}) == ""  # runs, and where it cannot, fails saying why
    assert host.suite_skip_reason({"CI": "true", "CONTENTGEN_TEST_REAL_NODE": "0"}) == (
        "CONTENTGEN_TEST_REAL_NODE=0"
    )
    assert host.required_setting({"CI": "false"}) == host.required_setting({}) == ""
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    [line] = [ln for ln in makefile.splitlines() if '-m "not engines"' in ln and "pytest -n" in ln]
    assert "CONTENTGEN_TEST_REAL_NODE=$${CONTENTGEN_TEST_REAL_NODE:-1}" in line


def test_a_subnet_taken_again_is_the_newcomers_not_a_stopped_nodes_leftover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test's node stopped; a neighbour's node, starting meanwhile, took its freed subnet (CI on
    6efacd7: 'network namespace lc202', 'link lc202h' and its registry entry blamed on the stopped
    node). What the subnet names is the newcomer's; the stopped node's own directory is still
    looked at."""
    monkeypatch.setattr(layout, "NODES", tmp_path / "nodes")
    stopped, newcomer = tmp_path / "stopped", tmp_path / "newcomer"
    stopped.mkdir(), newcomer.mkdir()
    State(254, str(newcomer), os.getpid(), started(os.getpid())).write()
    entry = f"file {tmp_path / 'nodes' / 'lc254.json'}"
    assert leftovers(Layout(254, stopped)) == []
    assert entry in leftovers(Layout(254, newcomer))
    (stopped / "kubelet").mkdir()
    assert leftovers(Layout(254, stopped)) == [f"directory {stopped / 'kubelet'}"]
