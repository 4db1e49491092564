"""The model families provider cluster trains LoRAs for (FLUX.1, Wan 2.1, Wan 2.2's expert pair):
each a module whose `FAMILY` is what its models need of the training framework (training/family.py),
found by the base-model table's `cluster_family` (api/base_models.py): a new family is its module and
its rows of the table, nothing else."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from contentgen.api.base_models import BaseModelInfo
from contentgen.errors import InvalidInput

if TYPE_CHECKING:
    from ..training.family import Family


def family_of(base: BaseModelInfo) -> Family:
    """The family that trains `base` on the cluster: the module its table row names."""
    name = base.cluster_family
    if not base.offered_on_cluster or not name:
        raise InvalidInput(f"training.baseModel {base.name} is not trained on provider cluster")
    module = import_module(name if "." in name else f"{__name__}.{name}")
    family: Family = module.FAMILY
    return family
