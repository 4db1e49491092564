"""The kinds: one module each (`KIND = Kind(...)`), found by their package (api/registry.py), so
that adding a kind to the API is adding one module; what a kind declares is kinds/_kind.py's Kind."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ..registry import declared
from ._kind import API_VERSION, CATEGORY, GROUP, POOL_COLUMNS, VERSION, Column, Kind, crd_name, kind_columns

KINDS: dict[str, Kind] = declared(__name__, __path__, Kind)


class _ByCatalogType(Mapping[str, Kind]):
    """KINDS by catalog type, in KINDS' order, read from KINDS at each use: a kind added to KINDS
    (contentgen.kinds.add) is in it with nothing else to update."""

    def __getitem__(self, catalog_type: str) -> Kind:
        for kind in KINDS.values():
            if kind.catalog_type == catalog_type:
                return kind
        raise KeyError(catalog_type)

    def __iter__(self) -> Iterator[str]:
        return (kind.catalog_type for kind in KINDS.values())

    def __len__(self) -> int:
        return len(KINDS)


CATALOG_TYPES: Mapping[str, Kind] = _ByCatalogType()

__all__ = [
    "API_VERSION",
    "CATALOG_TYPES",
    "CATEGORY",
    "GROUP",
    "KINDS",
    "POOL_COLUMNS",
    "VERSION",
    "Column",
    "Kind",
    "crd_name",
    "kind_columns",
]
