"""What a kind declares to the API: its names, models and how kubectl shows them (Kind), and
the columns every kind shows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from ..common import CommonSpec, CommonStatus

GROUP = "contentgen.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "contentgen"


def crd_name(plural: str) -> str:
    """The name of the CustomResourceDefinition of the resources called `plural` in this group."""
    return f"{plural}.{GROUP}"


@dataclass(frozen=True)
class Column:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


# legacy(status): the outputs a status written before versions (0.1) holds, as version 1's fields
# (wire form); None when it holds none
Legacy = Callable[[Mapping[str, Any]], dict[str, Any] | None]


def _no_legacy(_: Mapping[str, Any]) -> dict[str, Any] | None:
    return None


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    catalog_type: str  # the type name in the catalog and in `contentgen assets --type`
    spec: type[CommonSpec]
    status: type[CommonStatus]
    description: str
    columns: tuple[Column, ...]
    # the latest version's fields, repeated at the top of its status (as before versions)
    latest: tuple[str, ...] = ()
    # what a version older than the status's detailed ones leaves out (dotted: a field of a field)
    bulky: tuple[str, ...] = ()
    # its outputs in a status from before versions (versions.adopt_legacy)
    legacy: Legacy = _no_legacy
    # the spec's fields (wire form, dotted) that only provider cluster reads: the offline provider
    # runs the spec without them (run.offline_spec)
    cluster_only: tuple[str, ...] = ()
    # the store's top folders of its outputs, the first holding each version's result.json
    # (store/keys.py: {folder}/{owner}/{uid}/v{n}/); none: its catalog type
    stored_under: tuple[str, ...] = ()
    # its outputs were once stored straight under {folder}/{owner}/{uid}/, before versions (read
    # as version 1)
    unversioned_before: bool = False

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def likeness_plan(self) -> type[BaseModel] | None:
        """The model of the likeness evaluation its runs make (its spec's `evaluation`: a
        LoraTraining's, a LoraEvaluation's); None for a kind that makes none."""
        field = self.spec.model_fields.get("evaluation")
        plan = field.annotation if field is not None else None
        return plan if isinstance(plan, type) and issubclass(plan, BaseModel) else None

    @property
    def crd_name(self) -> str:
        return crd_name(self.plural)


def kind_columns(*specific: Column) -> tuple[Column, ...]:
    return (
        Column("Owner", ".spec.owner", description="The user the assets belong to."),
        *specific,
        Column("Phase", ".status.phase", description="Pending, Running, Succeeded or Failed."),
        Column("Progress", ".status.progress", "integer", "Percent done."),
        Column("Stage", ".status.stage", description="The stage now running.", priority=1),
        Column("Message", ".status.message", description="What is happening.", priority=1),
        Column("Age", ".metadata.creationTimestamp", "date"),
    )


# Where a request a warm pool draws is in it (status.pool), where the kind has one
POOL_COLUMNS = (
    Column(
        "Pool",
        ".status.pool.state",
        description="In the warm pool: starting, loading, queued or drawing.",
        priority=1,
    ),
    Column("Place", ".status.pool.position", "integer", "Its place in the pool's queue.", priority=1),
)
