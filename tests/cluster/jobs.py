"""What the cluster's training tests hand the training framework (training/family.py's Job): a
FLUX or Wan training of the tests' tiny models, in a work folder, with its checkpoints where the
test says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contentgen.api.base_models import base_model
from contentgen.providers.cluster.families import family_of
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import flux
from contentgen.providers.cluster.training.family import Job
from contentgen.providers.cluster.training.plan import Plan

from .conftest import DEVICE


def job(
    model: Path,
    examples: list[Any],
    plan: Plan,
    work: Path,
    files: Any = None,
    *,
    base: str = "flux.1",
    **options: Any,
) -> Job:
    """A training of `model` (a staged directory) for the table's `base` on the tests' device."""
    work.mkdir(parents=True, exist_ok=True)
    info = base_model(base)
    return Job(
        family=family_of(info),
        model_dir=model,
        examples=examples,
        plan=plan,
        on=flux.device(DEVICE),
        work_dir=work,
        files=files if files is not None else FolderFiles(work / "checkpoints"),
        base=info,
        metadata={"contentgen.base_model": model.name},
        **options,
    )
