"""`contentgen local-cluster` where it cannot start: where the machine cannot run the
node, or the images are not built, one line says what to do; and what it asks of the node. The
cluster itself, with the examples to Ready and nothing left after Ctrl-C, is test_local_cluster.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contentgen.cli import local_cluster
from localcluster.node.layout import NODES

pytestmark = [pytest.mark.timeout(1800), pytest.mark.slow]
CONTENTGEN = str(Path(sys.executable).parent / "contentgen")


def refused(directory: Path, images: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`contentgen local-cluster` where it cannot start (a hang guard of 300 s)."""
    command = [CONTENTGEN, "local-cluster", "--dir", str(directory)]
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
    assert "apt-get install containerd" in line and "make node" in line, line
    assert "Traceback" not in done.stderr
    assert set(NODES.glob("lc*.json")) == before  # nothing claimed


def test_without_the_images_it_says_to_build_them(tmp_path: Path) -> None:
    done = refused(tmp_path / "c", tmp_path, dict(os.environ))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "no archive of the contentgen image; run `make images`" in done.stderr, done.stderr


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
    assert local_cluster.node_refusal("needs containerd: apt-get install containerd").endswith(
        "(from the repository: `make node`)"
    )
