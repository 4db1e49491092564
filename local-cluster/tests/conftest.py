"""The real kubectl against a local cluster, for the node's tests (test_real_node.py)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from localcluster import LocalCluster

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".tools" / "bin" / "kubectl"


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
