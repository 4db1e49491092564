"""What the e2e tests on the real node share: the project's images built (as `make images` builds
them, cached) and their archives, the gate, and the probe a hardened container runs to say what
the runtime let it do."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from localcluster.node import host
from scripts import images

# They run wherever the machine has what a node needs (localcluster's own check), and skip
# elsewhere saying what is missing; CONTENTGEN_TEST_REAL_NODE=0 skips them, =1 fails them there
# (CI=true and `make test` mean 1: host.required_setting).
SKIP_REASON = host.suite_skip_reason()
needs_real_node = [pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "-")]

NAMES = ("contentgen", "contentgen-worker")
GPU = "contentgen-worker-gpu"
# The GPU worker image is built (20 minutes cold, 8.5 GB) and its tests run only when asked, so
# that `make test` stays within its time.
GPU_IMAGE = os.environ.get("CONTENTGEN_TEST_GPU_IMAGE") == "1"
needs_gpu_image = pytest.mark.skipif(
    not GPU_IMAGE, reason="the GPU worker image is tested with CONTENTGEN_TEST_GPU_IMAGE=1 (20 minutes cold)"
)


def cannot_build(exc: Exception) -> None:
    """Skip, or where the real node is required (host.required_setting: CI, `make test`) fail."""
    said = f"the images cannot be built here: {exc}"
    if host.required_setting() == "1":
        pytest.fail(said)
    pytest.skip(said)


def image_archives(context: Path, names: tuple[str, ...] = NAMES) -> dict[str, Path]:
    """The archives of the images `names` (the operator's and the worker's), built now from a copy
    of the sources (`context`, an empty folder) unless the cache has them current: nothing stale
    runs."""
    try:
        engine = images.find_engine("buildah")
    except images.EngineMissing as exc:
        if shutil.which("buildah") is None and images.install_buildah() is not None:
            engine = images.find_engine("buildah")
        else:
            cannot_build(exc)
    saved = os.environ.get("IMAGE_CONTEXT")
    os.environ["IMAGE_CONTEXT"] = str(images.snapshot_context(context))
    try:
        index = images.build(list(names), images.DEFAULT_REGISTRY, images.version(), engine, log=print)
    except images.EngineMissing as exc:
        cannot_build(exc)
    finally:
        if saved is None:
            os.environ.pop("IMAGE_CONTEXT", None)
        else:
            os.environ["IMAGE_CONTEXT"] = saved
    entries: dict[str, dict[str, object]] = index["images"]  # type: ignore[assignment]
    return {name: images.cache_dir() / str(entries[name]["archive"]) for name in names}


def image(name: str) -> str:
    return images.tags(images.DEFAULT_REGISTRY, images.version())[name]


# Run in a container (python -c PROBE DIR): what the runtime lets it do, as JSON. DIR is a path the
# pod mounts writable (an emptyDir).
PROBE = r"""
import getpass, json, os, socket, sys
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
def attempt(action):
    try:
        action()
        return "allowed"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
def write(path):
    with open(path, "w") as f:
        f.write("x")
def raw_socket():
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()), "user": getpass.getuser(),
    "cap_eff": status["CapEff"].strip(), "seccomp": status["Seccomp"].strip(),
    "no_new_privs": status["NoNewPrivs"].strip(),
    "write_root": attempt(lambda: write("/probe")),
    "write_image": attempt(lambda: write(sys.executable + ".probe")),
    "write_volume": attempt(lambda: write(os.path.join(sys.argv[1], "probe"))),
    "raw_socket": attempt(raw_socket),
    "setuid_root": attempt(lambda: os.setuid(0)),
    "token": os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token"),
}))
"""

# What PROBE says in a container run as the chart and the operator's Jobs ask (uid and gid 10001,
# no capabilities, seccomp RuntimeDefault, no privilege escalation, a read-only root file system).
HARDENED = {
    "uid": 10001,
    "gid": 10001,
    "user": "contentgen",
    "cap_eff": "0000000000000000",
    "seccomp": "2",  # SECCOMP_MODE_FILTER: the runtime's default profile
    "no_new_privs": "1",
    "write_root": "Read-only file system",
    "write_image": "Read-only file system",
    "write_volume": "allowed",
    "raw_socket": "Operation not permitted",
    "setuid_root": "Operation not permitted",
}
