"""CoreDNS, the real node's cluster DNS, built from its Go module.

`python -m localcluster.coredns` (part of `make kube`) builds servers/coredns/ (a main that links
CoreDNS's kubernetes plugin and the few others the node's Corefile uses, its version pinned by
that folder's go.mod) into servers/bin/coredns, again only when go.mod, go.sum or main.go change
(a hash of them is kept beside the binary). The stock build links every plugin, the cloud
providers' SDKs among them, which this node has no use for.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import time
from pathlib import Path

from . import build

SERVERS = Path(__file__).resolve().parent.parent / "servers"
SOURCE = SERVERS / "coredns"
BIN = SERVERS / "bin"
BINARY = BIN / "coredns"
STAMP = BIN / ".coredns.pins"


class CoreDNSMissing(RuntimeError):
    pass


def pins() -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((SOURCE / name).read_bytes())
    return digest.hexdigest()


def pinned_version() -> str:
    match = re.search(r"^require github.com/coredns/coredns (v\S+)", (SOURCE / "go.mod").read_text(), re.M)
    assert match, f"{SOURCE / 'go.mod'} does not require github.com/coredns/coredns"
    return match.group(1)


def built() -> bool:
    return BINARY.is_file() and STAMP.exists() and STAMP.read_text() == pins()


def build_coredns() -> None:
    go = build.find_go()
    BIN.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    version = pinned_version()
    print(
        f"localcluster: building CoreDNS {version} from its Go module (minutes on a cold cache)", flush=True
    )
    subprocess.run(  # noqa: S603 - the pinned module, with the Go found above
        [
            go,
            "build",
            "-trimpath",
            "-ldflags",
            f"-s -w -X github.com/coredns/coredns/coremain.GitCommit={version}",
            "-o",
            str(BIN / "coredns.new"),
            ".",
        ],
        cwd=SOURCE,
        env={**os.environ, "GOFLAGS": "-mod=readonly", "CGO_ENABLED": "0"},
        check=True,
    )
    (BIN / "coredns.new").replace(BINARY)
    STAMP.write_text(pins())
    print(f"localcluster: built in {time.monotonic() - started:.0f} s", flush=True)


def binary() -> Path:
    if not built():
        raise CoreDNSMissing(
            f"no CoreDNS built from {SOURCE}: run `make kube` (builds it from its Go module into "
            "local-cluster/servers/bin)"
        )
    return BINARY


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.coredns", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--force", action="store_true", help="build even when the binary is current")
    args = parser.parse_args()
    if args.force or not built():
        build_coredns()
    out = subprocess.run([str(BINARY), "-version"], capture_output=True, text=True, check=False).stdout  # noqa: S603
    print(f"  coredns  {out.split()[0] if out else '?'}  ({BINARY})")


if __name__ == "__main__":
    main()
