"""The controllers a platform team installs beside Kubernetes, built from their Go modules as the
control plane is: JobSet, Kueue, Kubeflow Trainer and KEDA (its operator and its metrics apiserver).

`python -m localcluster.controllers` (part of `make kube`) builds each folder of controllers/ (a Go
module whose go.mod pins the controller's module and names its main package as a `tool`) into
controllers/bin/NAME, and renders the controller's own install from the module's files
(`kubectl kustomize` over the folders its release manifests are made from: the CRDs, RBAC,
webhooks) into controllers/bin/NAME.json (its objects). Again only when that folder's go.mod or
go.sum change (a hash of them is kept beside the binary): a start needs no Go and no kubectl.

managers.py runs them in a cluster.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import binaries, build

ROOT = Path(__file__).resolve().parent.parent / "controllers"
BIN = ROOT / "bin"


@dataclass(frozen=True)
class Controller:
    name: str  # its folder in controllers/, its binary's name
    module: str
    package: str  # the main package, in `module`
    version_variable: str  # the -X flag that gives the binary its release
    namespace: str  # where its install puts it (its ServiceAccount, its config)
    install: tuple[str, ...]  # the module's kustomize folders its install is rendered from

    @property
    def source(self) -> Path:
        return ROOT / self.name

    @property
    def binary(self) -> Path:
        return BIN / self.name

    @property
    def manifests(self) -> Path:
        return BIN / f"{self.name}.json"

    @property
    def stamp(self) -> Path:
        return BIN / f".{self.name}.pins"

    def pins(self) -> str:
        digest = hashlib.sha256()
        for name in ("go.mod", "go.sum"):
            digest.update((self.source / name).read_bytes())
        digest.update(repr(self.install).encode())
        return digest.hexdigest()

    def version(self) -> str:
        for line in (self.source / "go.mod").read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in (self.module, "require") and self.module in words:
                return words[words.index(self.module) + 1]
        raise AssertionError(f"{self.source / 'go.mod'} does not require {self.module}")

    def built(self) -> bool:
        return (
            self.binary.is_file()
            and self.manifests.is_file()
            and self.stamp.exists()
            and self.stamp.read_text() == self.pins()
        )


CONTROLLERS = {
    c.name: c
    for c in (
        Controller(
            "jobset",
            "sigs.k8s.io/jobset",
            "sigs.k8s.io/jobset",
            "sigs.k8s.io/jobset/pkg/version.GitVersion",
            "jobset-system",
            ("config/default",),
        ),
        Controller(
            "kueue",
            "sigs.k8s.io/kueue",
            "sigs.k8s.io/kueue/cmd/kueue",
            "sigs.k8s.io/kueue/pkg/version.GitVersion",
            "kueue-system",
            ("config/default",),
        ),
        # manifests/overlays/manager adds JobSet's release from GitHub; its own parts are these
        Controller(
            "trainer",
            "github.com/kubeflow/trainer/v2",
            "github.com/kubeflow/trainer/v2/cmd/trainer-controller-manager",
            "",
            "kubeflow-system",
            (
                "manifests/base/crds",
                "manifests/base/manager",
                "manifests/base/rbac",
                "manifests/base/webhook",
                "manifests/base/runtimes",
            ),
        ),
        # its operator alone: it scales a workload between zero and one itself; its metrics
        # apiserver (an aggregated API the HPA reads from one pod up) and admission webhooks are
        # other binaries, not built (docs/local-cluster.md#the-controllers)
        Controller(
            "keda",
            "github.com/kedacore/keda/v2",
            "github.com/kedacore/keda/v2/cmd/operator",
            "github.com/kedacore/keda/v2/version.Version",
            "keda",
            ("config/crd", "config/general", "config/rbac", "config/service_account"),
        ),
        # its metrics apiserver: the aggregated API (external.metrics.k8s.io) the HPA KEDA makes
        # reads to scale from one pod up; it asks KEDA's operator for the values (gRPC)
        Controller(
            "keda-adapter",
            "github.com/kedacore/keda/v2",
            "github.com/kedacore/keda/v2/cmd/adapter",
            "github.com/kedacore/keda/v2/version.Version",
            "keda",
            ("config/metrics-server", "config/service_account"),
        ),
    )
}


class ControllerMissing(binaries.BinariesMissing):
    pass


def binary(name: str) -> Path:
    controller = CONTROLLERS[name]
    if not controller.built():
        raise ControllerMissing(
            f"no {name} built from {controller.source}: run `make kube` (builds it from its Go module "
            "into local-cluster/controllers/bin)"
        )
    return controller.binary


def _kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        raise SystemExit(
            "localcluster: the controllers' install is rendered with `kubectl kustomize`: put kubectl on "
            "PATH (`make tools` fetches it into .tools/bin)"
        )
    return found


def _module_dir(go: str, controller: Controller, env: dict[str, str]) -> Path:
    done = subprocess.run(  # noqa: S603 - the pinned module, with the Go found
        [go, "list", "-m", "-f", "{{.Dir}}", controller.module],
        cwd=controller.source,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(done.stdout.strip())


def render(controller: Controller, module_dir: Path) -> str:
    """The controller's install as its release renders it: kustomize over the module's folders
    (a kustomization of our own only where the release's pulls in something from the network)."""
    kubectl = _kubectl()
    if len(controller.install) == 1:
        target = module_dir / controller.install[0]
        return subprocess.run(  # noqa: S603
            [kubectl, "kustomize", str(target)], capture_output=True, text=True, check=True
        ).stdout
    with tempfile.TemporaryDirectory(prefix=f"{controller.name}-install-") as folder:
        here = Path(folder)
        # kustomize takes folders outside its root only by relative paths
        resources = [os.path.relpath(module_dir / f, here) for f in controller.install]
        kustomization = {"namespace": controller.namespace, "resources": resources}
        (here / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return subprocess.run(  # noqa: S603
            [kubectl, "kustomize", str(here)], capture_output=True, text=True, check=True
        ).stdout


def build_controller(controller: Controller) -> None:
    go = build.find_go()
    BIN.mkdir(parents=True, exist_ok=True)
    pinned, version = controller.pins(), controller.version()
    started = time.monotonic()
    print(
        f"localcluster: building {controller.name} {version} from its Go module (minutes on a cold cache)",
        flush=True,
    )
    env = {**os.environ, "GOFLAGS": "-mod=readonly", "CGO_ENABLED": "0"}
    flags = "-s -w" + (f" -X {controller.version_variable}={version}" if controller.version_variable else "")
    new = BIN / f"{controller.name}.new"
    subprocess.run(  # noqa: S603 - the pinned module, with the Go found above
        [go, "build", "-p", "2", "-trimpath", "-ldflags", flags, "-o", str(new), controller.package],
        cwd=controller.source,
        env=env,
        check=True,
    )
    docs = [d for d in yaml.safe_load_all(render(controller, _module_dir(go, controller, env))) if d]
    controller.manifests.write_text(json.dumps(docs))  # read at every start: JSON, a hundred times faster
    new.replace(controller.binary)
    controller.stamp.write_text(pinned)
    print(f"localcluster: built {controller.name} in {time.monotonic() - started:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.controllers", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("names", nargs="*", help=f"which (default: all of {', '.join(CONTROLLERS)})")
    parser.add_argument("--force", action="store_true", help="build even when the binary is current")
    args = parser.parse_args()
    for name in args.names or CONTROLLERS:
        controller = CONTROLLERS[name]
        if args.force or not controller.built():
            build_controller(controller)
        size = controller.binary.stat().st_size / 2**20
        print(f"  {name:<8} {controller.version():<8} {size:.0f} MiB  ({controller.binary})")


if __name__ == "__main__":
    main()
