"""`contentgen local-cluster --node real` as a user runs it (its own process): the real node with
the project's images, the store (versitygw) and the catalog (FerretDB) on the cluster's host
address; the examples it writes reach Ready with the real kubectl; Ctrl-C (SIGTERM) stops it all,
leaving no node behind. Where the machine cannot run the node, one line says what to install."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from contentgen.cli import local_cluster
from localcluster.node.layout import NODES
from localcluster.node.teardown import State, leftovers
from tests.conftest import EXAMPLES
from tests.e2e.real_node import image_archives, real_node_test
from tests.kubectl import Kubectl
from tests.waiting import wait_for

pytestmark = [pytest.mark.timeout(1800), pytest.mark.slow]
CONTENTGEN = str(Path(sys.executable).parent / "contentgen")


def refused(directory: Path, images: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`contentgen local-cluster --node real` where it cannot start (a hang guard of 300 s)."""
    command = [CONTENTGEN, "local-cluster", "--node", "real", "--dir", str(directory)]
    command += ["--images", str(images)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="root: the refusal checked here is containerd's absence")
def test_without_containerd_it_says_what_to_install(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("ip", "nsenter", "iptables", "runc"):  # everything but containerd and ctr
        found = subprocess.run(
            ["sh", "-c", f"command -v {program}"], capture_output=True, text=True, check=True
        )
        (bin_dir / program).symlink_to(found.stdout.strip())
    images = tmp_path / "images"
    images.mkdir()
    for name in ("contentgen", "contentgen-worker"):  # what --images needs before the node's check
        (images / f"{name}.tar").write_bytes(b"")
    before = set(NODES.glob("lc*.json"))
    done = refused(tmp_path / "c", images, {**os.environ, "PATH": str(bin_dir)})
    assert done.returncode != 0 and done.stdout == "", done
    lines = [line for line in done.stderr.splitlines() if "local-cluster" in line or "containerd" in line]
    (line,) = [line for line in lines if "containerd" in line]
    assert "--node real" in line and "apt-get install containerd" in line and "make node" in line, line
    assert "Traceback" not in done.stderr
    assert set(NODES.glob("lc*.json")) == before  # nothing claimed


def test_without_the_images_it_says_to_build_them(tmp_path: Path) -> None:
    done = refused(tmp_path / "c", tmp_path, dict(os.environ))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "no archive of the contentgen image; run `make images`" in done.stderr, done.stderr


@real_node_test
def test_the_examples_on_the_real_node(tmp_path: Path) -> None:
    archives = image_archives(tmp_path / "context")
    directory = tmp_path / "cluster"
    log_path = tmp_path / "local-cluster.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                CONTENTGEN,
                "local-cluster",
                "--node",
                "real",
                "--images",
                str(archives["contentgen"].parent),
                "--dir",
                str(directory),
                "--offline",
                "--examples",
                str(EXAMPLES),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        kubeconfig = directory / "kubeconfig"
        try:
            wait_for(lambda: kubeconfig.exists() or process.poll() is not None, 900, "DIR/kubeconfig")
            assert process.poll() is None, log_path.read_text()
            said = log_path.read_text()
            assert "the real node (kubelet, containerd, runc" in said and "catalog mongodb://" in said, said
            k = Kubectl(kubeconfig, tmp_path / "home")
            node = k.json("get", "node", "local")["status"]["nodeInfo"]
            assert node["containerRuntimeVersion"].startswith("containerd://")
            out = k.run("apply", "-f", str(directory / "examples")).stdout
            assert out.count(" created") == 8, out
            k.run(
                "wait",
                "--for=condition=Ready",
                "loratraining,imagegeneration,transcription,loraevaluation,videogeneration",
                "--all",
                "--timeout=900s",
                timeout=960,
            )
            table = k.run("get", "contentgen").stdout
            assert table.count("Succeeded") == 7, table
            (pod,) = k.json("get", "pods", "-n", "contentgen")["items"]
            assert pod["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")
            (layout,) = [
                state.layout
                for path in NODES.glob("lc*.json")
                if (state := State.read(path)) is not None
                and Path(state.directory) == (directory / "node").resolve()
            ]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(120)
    assert process.returncode == 0, log_path.read_text()[-3000:]
    assert not kubeconfig.exists()
    assert leftovers(layout) == []  # Ctrl-C: no network, mount, cgroup or process of the node left


def test_each_kind_asks_for_at_most_half_a_cpu_on_the_real_node() -> None:
    kinds = json.loads(local_cluster.fitted_kinds(local_cluster.chart_setting("CONTENTGEN_KINDS")))
    asked = {kind: job["resources"]["requests"]["cpu"] for kind, job in kinds.items()}
    assert asked["LoraTraining"] == "500m" and asked["ImageGeneration"] == "250m", asked  # 2 -> 500m; kept
    chart = json.loads(local_cluster.chart_setting("CONTENTGEN_KINDS"))
    assert {k: j["resources"]["limits"] for k, j in kinds.items()} == {
        k: j["resources"]["limits"] for k, j in chart.items()
    }  # the memory the kernel enforces is the chart's


def test_the_archives_are_those_make_images_listed(tmp_path: Path) -> None:
    index = {"images": {n: {"archive": f"{n}-x.tar"} for n in ("contentgen", "contentgen-worker")}}
    (tmp_path / "index.json").write_text(json.dumps(index))
    for name in ("contentgen", "contentgen-worker"):
        (tmp_path / f"{name}-x.tar").write_bytes(b"")
    assert local_cluster.image_archives(tmp_path) == [
        tmp_path / "contentgen-x.tar",
        tmp_path / "contentgen-worker-x.tar",
    ]
    (tmp_path / "contentgen-worker-x.tar").unlink()
    with pytest.raises(ValueError, match="no archive of the contentgen-worker image; run `make images`"):
        local_cluster.image_archives(tmp_path)


def test_the_refusals_are_in_the_commands_words() -> None:
    assert local_cluster.node_refusal(
        "the real node needs root (containerd, network namespaces, cgroups); run as root, "
        "or use the process node (Options(node='process'))"
    ).endswith("or use the process node (--node process)")
    assert local_cluster.node_refusal("needs containerd: apt-get install containerd").endswith(
        "(from the repository: `make node`)"
    )
