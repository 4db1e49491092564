"""One local cluster for the node's tests: the real control plane and the process node, with a
"toolbox" image that is this machine's shell and Python, driven by the real kubectl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster import Image, LocalCluster, Options

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".tools" / "bin" / "kubectl"
TOOLBOX = Image(
    entrypoint=[],
    cmd=["sh"],
    env={"PATH": "/usr/local/bin:/usr/bin:/bin", "IMAGE_SAYS": "hello"},
    workdir="/",
)


@dataclass
class Kube:
    cluster: LocalCluster
    home: Path

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120) -> str:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "KUBECONFIG": str(self.cluster.kubeconfig),
        }
        done = subprocess.run(
            [str(KUBECTL), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout if check else done.stdout + done.stderr

    def apply(self, *docs: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))

    def pod(self, name: str, namespace: str = "default") -> dict[str, Any]:
        return json.loads(self.kubectl("get", "pod", name, "-n", namespace, "-o", "json"))  # type: ignore[no-any-return]

    def wait(self, check: Callable[[], Any], timeout: float = 150.0, what: str = "condition") -> Any:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")

    def phase(self, name: str, phase: str, timeout: float = 150.0) -> dict[str, Any]:
        return self.wait(  # type: ignore[no-any-return]
            lambda: (p := self.pod(name)) and p["status"].get("phase") == phase and p,
            timeout,
            f"{name} {phase}",
        )


def pod(name: str, script: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "toolbox:1", "command": ["sh", "-c", script]}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "containers": [container],
            **spec,
        },
    }


@pytest.fixture(scope="module")  # stopped with its file: no node heartbeat in later tests
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    if not KUBECTL.exists():
        pytest.fail("kubectl is missing: run `make tools`")
    root = tmp_path_factory.mktemp("local-cluster")
    images = {"toolbox": TOOLBOX, "python": Image(entrypoint=[sys.executable], workdir="/")}
    cluster = LocalCluster(Options(root / "cluster", images=images, backoff_base=1.0)).start()
    try:
        yield Kube(cluster, root / "home")
    finally:
        cluster.stop()
