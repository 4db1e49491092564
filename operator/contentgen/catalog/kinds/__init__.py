"""The catalog's kinds: each module of this package (those not starting with _) declares one kind
as `KIND`, a CatalogKind: its record's model, how its record shows its newest outputs, what its
version entries add, what the record keeps of its status, what its lineage follows. Adding a kind
to the catalog is adding its module here (its record: a JobRecord with its own fields)."""

from __future__ import annotations

from contentgen.api.registry import UnknownKind, declared, lookup

from ..common_record import JobRecord, RecordModel, VersionInfo
from ._base import CatalogKind

CATALOG_KINDS: dict[str, CatalogKind] = declared(__name__, __path__, CatalogKind)


def catalog_kind(kind: str) -> CatalogKind:
    """The declaration of `kind`; UnknownKind for a kind no module here declares."""
    return lookup(CATALOG_KINDS, kind, __name__)


def makes_loras(kind: object) -> bool:
    """Whether records of `kind` (a document's `kind`: any value) have LoRAs for versions."""
    declared = CATALOG_KINDS.get(str(kind))
    return declared is not None and declared.makes_loras


def has_transcript(kind: object) -> bool:
    """Whether the versions of records of `kind` (a document's `kind`: any value) hold a transcript."""
    declared = CATALOG_KINDS.get(str(kind))
    return declared is not None and declared.transcript


def transcript_kinds() -> str:
    """The kinds whose versions hold a transcript, as a refusal names them ("Transcription")."""
    return " or ".join(declared.kind for declared in CATALOG_KINDS.values() if declared.transcript)


__all__ = [
    "CATALOG_KINDS",
    "CatalogKind",
    "JobRecord",
    "RecordModel",
    "UnknownKind",
    "VersionInfo",
    "catalog_kind",
    "has_transcript",
    "makes_loras",
    "transcript_kinds",
]
