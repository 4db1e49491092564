"""What the catalog knows of one kind, declared once in the kind's own module of this package."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from contentgen.api import RunResult

from ..common_record import JobRecord

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
# detail(record): what `contentgen assets list` shows of a record of the kind (DETAIL), given its
# own record model
Detail = Callable[[Any], str]
# uses(versions): what its versions used, newest version's first, each once (lineage.py): the
# LoRAs (each as a LoraUseInfo: uri, scale, name, uid, version), the pictures (a PictureUseInfo)
Uses = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
# legacy_outputs(doc): what a document written before versions (schema 1, migrate.py) kept at its
# top of its outputs, which become its version 1 ({}: none)
LegacyOutputs = Callable[[dict[str, Any]], dict[str, Any]]


def _nothing(*_: object) -> None:
    return None


def _no_fields(_: dict[str, Any]) -> dict[str, Any]:
    return {}


def _no_detail(_: JobRecord) -> str:
    return ""


def _none_used(_: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return []


def each_once(
    versions: list[dict[str, Any]],
    uses: Callable[[dict[str, Any]], Iterable[tuple[tuple[Any, ...], dict[str, Any]]]],
) -> list[dict[str, Any]]:
    """What `uses(version)` lists, as (key, use), over `versions`: newest version's first, each
    key once (a Uses)."""
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for version in reversed(versions):
        for key, use in uses(version):
            found.setdefault(key, use)
    return list(found.values())


@dataclass(frozen=True)
class CatalogKind:
    kind: str
    summary: Summary
    primary: Primary
    # its record (records.py: what `contentgen assets -o json` prints and the HTTP API returns),
    # the common JobRecord with the kind's own fields and versions
    record: type[JobRecord]
    detail: Detail = _no_detail
    version: Version = _nothing
    from_status: FromStatus = _nothing
    record_fields: RecordFields = _no_fields
    # its versions are LoRAs: used by other runs (loraRef), promoted, evaluated again; their
    # lineage and usage are the records made with them
    makes_loras: bool = False
    # its versions' pictures are what videos animate (imageRef): their usage is those videos
    makes_pictures: bool = False
    # its versions are clips (a video LoRA's lineage lists them, each with its likeness over time)
    makes_clips: bool = False
    # its versions hold a transcript (transcript.json: `contentgen assets transcript`)
    transcript: bool = False
    loras_used: Uses = _none_used
    pictures_used: Uses = _none_used
    # what its lineage says where it used no LoRA ("": nothing)
    without_loras: str = ""
    # documents written before versions (schema 1, migrate.py) kept its versions as now
    legacy_versions: bool = False
    legacy_outputs: LegacyOutputs = _no_fields
