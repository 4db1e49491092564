"""Finding the Kubernetes binaries: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
and the real node's kubelet and kube-proxy.

In order: a folder in $KUBEBUILDER_ASSETS (the envtest convention), the binaries on $PATH, then
what `make kube` built (localcluster/kube/bin, one binary that answers to the six names). A
binary is used only when its version is the pinned minor release (or, for etcd, the pinned minor).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BUILT = Path(__file__).resolve().parent.parent / "kube" / "bin"
KUBERNETES_MINOR = "1.36"
ETCD_MINOR = "3.6"
NAMES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
NODE_NAMES = ("kubelet", "kube-proxy")  # the real node's, from the same build


class BinariesMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    apiserver: Path
    controller_manager: Path
    scheduler: Path

    def versions(self) -> dict[str, str]:
        return {name: version_of(path) or "?" for name, path in zip(NAMES, self.paths(), strict=True)}

    def paths(self) -> tuple[Path, Path, Path, Path]:
        return (self.etcd, self.apiserver, self.controller_manager, self.scheduler)


def version_of(path: Path) -> str | None:
    """v1.36.3 for the Kubernetes components, 3.6.8 for etcd; None when it does not run."""
    try:
        out = subprocess.run(  # noqa: S603 - a binary we are about to run anyway
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except OSError:
        return None
    match = re.search(r"Kubernetes (v\d+\.\d+\.\d+\S*)", out) or re.search(r"etcd Version: (\S+)", out)
    return match.group(1) if match else None


def _fits(name: str, path: Path) -> bool:
    version = version_of(path)
    if version is None:
        return False
    want = ETCD_MINOR if name == "etcd" else f"v{KUBERNETES_MINOR}"
    return version == want or version.startswith(want + ".")


def _candidates(name: str, include_built: bool) -> list[Path]:
    places: list[Path] = []
    if assets := os.environ.get("KUBEBUILDER_ASSETS"):
        places.append(Path(assets) / name)
    if (found := shutil.which(name)) and Path(found).resolve().parent != BUILT.resolve():
        places.append(Path(found))
    if include_built:
        places.append(BUILT / name)
    return [p for p in places if p.is_file() and os.access(p, os.X_OK)]


def find(include_built: bool = True) -> Binaries:
    chosen: list[Path] = []
    for name in NAMES:
        fitting = [p for p in _candidates(name, include_built) if _fits(name, p)]
        if not fitting:
            raise BinariesMissing(
                f"no {name} of version {ETCD_MINOR if name == 'etcd' else KUBERNETES_MINOR}.x: "
                "run `make kube` (builds them from their Go modules into localcluster/kube/bin), "
                "or point $KUBEBUILDER_ASSETS at a folder that has them"
            )
        chosen.append(fitting[0])
    return Binaries(*chosen)


def find_node(include_built: bool = True) -> tuple[Path, Path]:
    """The kubelet and kube-proxy at the pinned minor release, found as the control plane's are."""
    chosen: list[Path] = []
    for name in NODE_NAMES:
        fitting = [p for p in _candidates(name, include_built) if _fits(name, p)]
        if not fitting:
            raise BinariesMissing(
                f"no {name} of version {KUBERNETES_MINOR}.x: run `make kube` (builds it with the "
                "control plane from the kubernetes Go module into localcluster/kube/bin)"
            )
        chosen.append(fitting[0])
    return chosen[0], chosen[1]
