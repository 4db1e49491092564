"""The real kubectl (1.33, fetched by `make tools`), run against a control plane's kubeconfig."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

KUBECTL = ROOT / ".tools" / "bin" / "kubectl"


def kubectl_binary() -> str:
    if not os.access(KUBECTL, os.X_OK):
        raise RuntimeError("kubectl not found at .tools/bin/kubectl: run `make tools`")
    return str(KUBECTL)


@dataclass
class Kubectl:
    kubeconfig: Path
    home: Path  # kubectl's discovery cache lives under $HOME/.kube

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECACHEDIR": str(self.home / "cache"),
        }

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [kubectl_binary(), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}"
            )
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(  # a long-running kubectl (get -w)
            [kubectl_binary(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
        )
