"""The kinds: one module each (`KIND = Kind(...)`), found by their package (api/registry.py), so
that adding a kind to the API is adding one module; what a kind declares is kinds/_kind.py's Kind."""

from __future__ import annotations

from ..registry import declared
from ._kind import API_VERSION, CATEGORY, GROUP, POOL_COLUMNS, VERSION, Column, Kind, crd_name, kind_columns

KINDS: dict[str, Kind] = declared(__name__, __path__, Kind)
CATALOG_TYPES: dict[str, Kind] = {k.catalog_type: k for k in KINDS.values()}

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
