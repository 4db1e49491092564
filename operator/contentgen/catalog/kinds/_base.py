"""What the catalog knows of one kind, declared once in the kind's own module of this package."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contentgen.api import RunResult

# summary(doc, newest, versions, spec): the record's fields for its newest outputs and its
# filters, written into `doc`; `newest` is its newest usable version ({} without one).
Summary = Callable[[dict[str, Any], dict[str, Any], list[dict[str, Any]], dict[str, Any]], None]
# version(entry, spec, result): a version entry's own fields, written into `entry`; `spec` is the
# snapshot it ran (None when no longer known), `result` its stored result, when there is one.
Version = Callable[[dict[str, Any], dict[str, Any] | None, RunResult | None], None]
# primary(version): a version's main output, what `contentgen assets download` hands out when no
# file is named ("" where it has none).
Primary = Callable[[dict[str, Any]], str]
# record_fields(doc): the record's fields beyond the document's own (records.py).
RecordFields = Callable[[dict[str, Any]], dict[str, Any]]
# from_status(doc, status, before): what the record keeps of the resource's status beyond its
# versions, written into `doc`; `before` is the stored record ({} when new).
FromStatus = Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], None]


def _nothing(*_: object) -> None:
    return None


def _no_fields(_: dict[str, Any]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class CatalogKind:
    kind: str
    summary: Summary
    primary: Primary
    version: Version = _nothing
    from_status: FromStatus = _nothing
    record_fields: RecordFields = _no_fields
    # its versions are LoRAs: used by other runs (loraRef), promoted, evaluated again
    makes_loras: bool = False
