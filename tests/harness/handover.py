"""Operator replicas handing the Lease over, and the image they make (tests/kube)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcluster.faults import FaultProxy
from tests.kube.harness import Cluster


@dataclass
class Replica:
    identity: str
    proxy: FaultProxy
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join([f"--- {self.identity}'s last log lines ---", *lines[-60:]])


def holder(c: Cluster) -> str:
    lease = c.get("leases", "contentgen", "contentgen-operator", "coordination.k8s.io/v1") or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def image(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "ImageGeneration",
        "metadata": {"name": name},
        "spec": {"owner": "alice", "provider": "offline", "prompt": "a lighthouse", "numImages": 1},
    }
