"""The HTTP API's kinds: each module of this package (those not starting with _) declares one kind
as `KIND`, an HttpKind: how a created resource is named, which providers run it in this process,
what a re-run and a refusal of its references say, which of its records' routes apply. Adding a
kind to the HTTP API is adding its module here."""

from __future__ import annotations

from contentgen.api.registry import UnknownKind, declared, lookup

from ._base import HttpKind

HTTP_KINDS: dict[str, HttpKind] = declared(__name__, __path__, HttpKind)


def http_kind(kind: str) -> HttpKind:
    """The declaration of `kind`; UnknownKind for a kind no module here declares."""
    return lookup(HTTP_KINDS, kind, __name__)


def seeded(kind: object) -> bool:
    """Whether a re-run of a record of `kind` (a record's `kind`: any value) takes a seed."""
    declared = HTTP_KINDS.get(str(kind))
    return declared is not None and declared.seeded


__all__ = ["HTTP_KINDS", "HttpKind", "UnknownKind", "http_kind", "seeded"]
