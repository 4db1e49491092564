"""Where the cluster provider's base models are: a directory per model under one root (a volume
the chart mounts, CONTENTGEN_CLUSTER_MODELS_DIR), laid out as each model's own files. A missing or
incomplete directory is `ModelNotFound` naming the path, raised before any GPU work starts."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from contentgen.errors import ModelNotFound
from contentgen.providers.settings import MODEL_NAME, ClusterWorkerSettings, from_environment

# A model's name is one directory under the root: no separators, no way out of it.
_NAME = re.compile(MODEL_NAME)


def models_root(env: Mapping[str, str] | None = None) -> Path:
    return from_environment(ClusterWorkerSettings, env).cluster_models_dir


def model_dir(name: str, required: Iterable[str], *, root: Path) -> Path:
    """`root/name`, when it holds every `required` path (files or directories, relative to it)."""
    check_name(name, root)
    path = root / name
    if not path.is_dir():
        raise ModelNotFound(f"model {name!r} is not staged: {path} does not exist (see docs/cluster-gpus.md)")
    missing = [part for part in required if not (path / part).exists()]
    if missing:
        raise ModelNotFound(
            f"model {name!r} at {path} is incomplete: {', '.join(missing)} missing (stage the whole "
            "model directory, see docs/cluster-gpus.md)"
        )
    return path


def check_name(name: str, root: Path) -> None:
    """A model's name is one directory under `root`: ModelNotFound otherwise."""
    if not _NAME.fullmatch(name) or name in {".", ".."}:
        raise ModelNotFound(
            f"model {name!r} is not a directory name (letters, digits, '.', '_' and '-'): name a "
            f"model staged under {root}"
        )
