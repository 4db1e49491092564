"""The pipeline's kinds: each module of this package (those not starting with _) declares one kind
as `KIND`, a PipelineKind: its run, and where its outputs came from. Adding a kind to the
pipeline is adding its module here."""

from __future__ import annotations

from contentgen.api.registry import UnknownKind, declared, lookup

from ._base import PipelineKind

PIPELINE_KINDS: dict[str, PipelineKind] = declared(__name__, __path__, PipelineKind)


def pipeline_kind(kind: str) -> PipelineKind:
    """The declaration of `kind`; UnknownKind for a kind no module here declares."""
    return lookup(PIPELINE_KINDS, kind, __name__)


__all__ = ["PIPELINE_KINDS", "PipelineKind", "UnknownKind", "pipeline_kind"]
