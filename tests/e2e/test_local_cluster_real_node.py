"""`contentgen local-cluster` where it cannot start: where the machine cannot run the
node, or the images are not built, one line says what to do; and what it asks of the node. The
cluster itself, with the examples to Ready and nothing left after Ctrl-C, is test_local_cluster.py."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from contentgen.cli import local_cluster
from localcluster.node.layout import NODES
from tests.conftest import ROOT
from tests.harness import real_node

pytestmark = [pytest.mark.timeout(1800), pytest.mark.slow]
CONTENTGEN = str(Path(sys.executable).parent / "contentgen")


def refused(
    directory: Path, images: Path | None, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`contentgen local-cluster` where it cannot start (a hang guard of 300 s), run in `cwd`;
    without `images`, it finds the repository's."""
    command = [CONTENTGEN, "local-cluster", "--dir", str(directory)]
    command += ["--images", str(images)] if images is not None else []
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False)


def without_containerd(tmp_path: Path) -> str:
    """A PATH with what the node needs but containerd and ctr: the node's check refuses it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("ip", "nsenter", "iptables", "runc"):  # everything but containerd and ctr
        found = subprocess.run(
            ["sh", "-c", f"command -v {program}"], capture_output=True, text=True, check=True
        )
        (bin_dir / program).symlink_to(found.stdout.strip())
    return str(bin_dir)


@pytest.mark.skipif(os.geteuid() != 0, reason="root: the refusal checked here is containerd's absence")
def test_without_containerd_it_says_what_to_install(tmp_path: Path) -> None:
    bin_dir = without_containerd(tmp_path)
    images = tmp_path / "images"
    images.mkdir()
    for name in ("contentgen", "contentgen-worker"):  # what --images needs before the node's check
        (images / f"{name}.tar").write_bytes(b"")
    before = set(NODES.glob("lc*.json"))
    done = refused(tmp_path / "c", images, {**os.environ, "PATH": bin_dir})
    assert done.returncode != 0 and done.stdout == "", done
    lines = [line for line in done.stderr.splitlines() if "local-cluster" in line or "containerd" in line]
    (line,) = [line for line in lines if "containerd" in line]
    assert "apt-get install containerd" in line and "make node" in line, line
    assert "Traceback" not in done.stderr
    assert set(NODES.glob("lc*.json")) == before  # nothing claimed


@pytest.mark.skipif(os.geteuid() != 0, reason="root: the refusal that comes after the images is containerd's")
def test_from_any_folder_it_finds_the_repositorys_images(tmp_path: Path) -> None:
    """Run in a folder of its own, with no --images: the repository's archives (current: built
    from a copy of the sources, IMAGE_CONTEXT) are found, and what stops it is the node's check."""
    context = tmp_path / "context"
    archives = real_node.image_archives(context)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PATH": without_containerd(tmp_path), "IMAGE_CONTEXT": str(context)}
    env["IMAGE_CACHE_DIR"] = str(archives["contentgen"].parent)
    done = refused(tmp_path / "c", None, env, cwd=elsewhere)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert "containerd" in done.stderr and "archive" not in done.stderr and "building" not in done.stdout, (
        done
    )


def test_missing_images_are_built_and_it_says_so(tmp_path: Path) -> None:
    """No archives where the repository keeps them: it says it builds them and does, here with an
    engine that is not there, whose refusal it passes on in one line."""
    env = {**os.environ, "IMAGE_CACHE_DIR": str(tmp_path / "none"), "CONTAINER_ENGINE": "podman"}
    done = refused(tmp_path / "c", None, env, cwd=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert (
        "contentgen local-cluster: contentgen is not built; contentgen-worker is not built: building them "
        "now (python scripts/images.py build contentgen contentgen-worker: minutes the first time)"
    ) in done.stdout, done.stdout
    assert "podman: not installed" in done.stderr  # images.py's own line
    assert "contentgen local-cluster: the images could not be built" in done.stderr, done.stderr


def test_the_repository_is_found_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert local_cluster.repository() == ROOT
    assert local_cluster.repository(tmp_path) == ROOT  # from the package's own place
    args = local_cluster_parser().parse_args(["--dir", str(tmp_path / "c")])
    assert args.images is None and args.examples is None  # found at run time, not relative to here


def test_the_gpu_worker_image_is_imported_or_its_absence_said(tmp_path: Path) -> None:
    assert local_cluster.gpu_archive(tmp_path) is None
    line = local_cluster.gpu_line(2, None, tmp_path)
    assert "\n" not in line and f"no GPU worker image in {tmp_path}" in line
    assert "the worker image stands in" in line and "`make images` builds the GPU one (8.5 GB" in line
    (tmp_path / "index.json").write_text(
        json.dumps({"images": {"contentgen-worker-gpu": {"archive": "g.tar"}}})
    )
    (tmp_path / "g.tar").write_bytes(b"")
    assert local_cluster.gpu_archive(tmp_path) == tmp_path / "g.tar"
    assert "run the GPU worker image" in local_cluster.gpu_line(1, tmp_path / "g.tar", tmp_path)


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


def local_cluster_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    local_cluster.configure(parser)
    return parser


def test_the_controllers_asked_set_the_operators_training_backends() -> None:
    """`--controllers`: the names known, each with what it needs; the operator's
    gpu.training.backends are job and those of the controllers run (its RBAC the chart's for all)."""
    parse = local_cluster_parser().parse_args
    assert parse(["--dir", "d"]).controllers == ("jobset", "kueue")
    asked = parse(["--dir", "d", "--controllers", "jobset,kueue,trainer,keda,keda-adapter"]).controllers
    assert asked == ("jobset", "kueue", "trainer", "keda", "keda-adapter")
    for bad, said in (
        ("trainer", "trainer needs jobset"),
        ("keda-adapter", "keda-adapter needs keda"),
        ("volcano", "volcano"),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=said):
            local_cluster.controller_list(bad)
    backends = {
        c: json.loads(local_cluster.training_backends(c))["backends"] for c in ((), ("jobset", "trainer"))
    }
    assert backends == {(): ["job"], ("jobset", "trainer"): ["job", "jobset", "trainjob"]}
    rules = [
        r["resources"]
        for d in local_cluster._install_documents()
        if d["kind"] == "ClusterRole" and d["metadata"]["name"] == local_cluster.OPERATOR
        for r in d["rules"]
    ]
    assert ["jobsets"] in rules and ["trainjobs"] in rules


def test_the_refusals_are_in_the_commands_words() -> None:
    assert local_cluster.node_refusal("needs containerd: apt-get install containerd").endswith(
        "(from the repository: `make node`)"
    )


def test_without_gpus_the_examples_of_the_clusters_gpus_run_offline(tmp_path: Path) -> None:
    """The examples' copies name the served media; on a cluster without GPUs the one of provider
    cluster (the early-stop training) runs with the offline provider, which simulates its trainer,
    instead of waiting for ever for a GPU; with --gpus it stays as written."""

    def providers(gpus: int) -> dict[str, str]:
        written = local_cluster.write_examples(ROOT / "examples", tmp_path / str(gpus), "http://m:1", gpus)
        docs = [d for path in written for d in yaml.safe_load_all(path.read_text()) if d]
        return {d["metadata"]["name"]: (d.get("spec") or {}).get("provider", "") for d in docs}

    asked = {
        d["metadata"]["name"]: (d.get("spec") or {}).get("provider", "")
        for path in sorted((ROOT / "examples").glob("*.yaml"))
        for d in yaml.safe_load_all(path.read_text())
        if d
    }
    assert asked["demo-early-stop"] == "cluster" and providers(1) == asked
    assert providers(0) == {**asked, "demo-early-stop": "offline"}
