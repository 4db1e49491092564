"""The record: what `contentgen assets -o json` prints and the HTTP API returns for one catalog
document. Common fields (common_record.py), then the kind's own: one model per kind, declared
with the kind (catalog/kinds/), told apart by `kind`. Timestamps are RFC 3339 UTC strings;
internal fields (spec, searchText, transcriptText) are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeAlias, TypeVar

from pydantic import Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from contentgen.api import KINDS, Timestamp

from .common_record import JobRecord, RecordModel
from .kinds import CATALOG_KINDS, CatalogKind
from .kinds.image_generation import ImageGenerationRecord
from .kinds.lora_training import LoraTrainingRecord, promoted
from .kinds.transcription import TranscriptionRecord
from .migrate import upgrade
from .verdicts import evaluations_of, verdict_of


class Spend(RecordModel):
    """What the provider work of the counted records cost, in USD. Deleted records count: the
    money was spent. A run whose bill could not be known counts its estimate."""

    total_usd: float = 0.0
    by_owner: dict[str, float] = {}
    by_type: dict[str, float] = {}
    by_month: dict[str, float] = Field(default={}, description="By the month runs started (YYYY-MM).")
    currency: str = "USD"


class _DeclaredKind:
    """A record of any kind catalog/kinds/ declares, as its kind's record model says, told apart
    by `kind`. The registry is read when a record is checked and when a schema is written, not
    when this module is imported, so a kind declared later (one the tests declare) is served and
    documented as the others are; a kind declared nowhere is refused, as a discriminated union
    refuses a tag it does not know."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(_as_declared)

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # the models' own schemas (each once among the document's definitions), told apart by kind
        records = {k.kind: k.record.__pydantic_core_schema__ for k in _declared()}
        return handler(core_schema.tagged_union_schema(records, discriminator="kind"))


def _declared() -> list[CatalogKind]:
    """The catalog's kinds in the API's order (api/kinds/: by module name), which the OpenAPI
    document keeps."""
    return [declared for name in KINDS if (declared := CATALOG_KINDS.get(name)) is not None]


def _as_declared(value: Any) -> JobRecord:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    declared = CATALOG_KINDS.get(str(kind))
    if declared is None:
        known = ", ".join(repr(k.kind) for k in _declared())
        raise PydanticCustomError(
            "union_tag_invalid",
            "Input tag {tag} found using 'kind' does not match any of the expected tags: {expected_tags}",
            {"tag": repr(kind), "expected_tags": known},
        )
    return declared.record.model_validate(value)


# A record of any declared kind (GET /api/jobs/{ref}, the pages of them): to a type checker the
# common record every kind's extends; not so to pydantic, or FastAPI would write JobRecord into the
# OpenAPI document too, though no answer is one.
if TYPE_CHECKING:
    AnyRecord: TypeAlias = JobRecord
else:
    AnyRecord = Annotated[object, _DeclaredKind()]
R = TypeVar("R", bound=JobRecord)


class RecordPage(RecordModel, Generic[R]):
    total: int = Field(description="How many records match, over all pages.")
    limit: int
    offset: int
    items: list[R]


# Named pages, for readable OpenAPI schema names.
class JobPage(RecordPage[AnyRecord]):
    pass


class LoraPage(RecordPage[LoraTrainingRecord]):
    pass


class ImagePage(RecordPage[ImageGenerationRecord]):
    pass


class TranscriptPage(RecordPage[TranscriptionRecord]):
    pass


class Stats(RecordModel):
    owner: str | None = Field(description="The owner counted, when it is one; null for several or everyone.")
    owners: list[str] = Field(default=[], description="The owners counted; empty for everyone.")
    total_jobs: int
    by_type: dict[str, int]
    by_status: dict[str, int] = Field(description="Records by their status (see JobRecord.status).")
    total_versions: int = Field(default=0, description="Usable versions, whatever the latest runs did.")
    versions_by_type: dict[str, int] = {}
    total_bytes: int
    total_gb: float = Field(
        alias="totalGB", description="totalBytes in GiB (2^30 bytes), as S3 bills storage."
    )
    price_per_gb_month: float
    estimated_monthly_cost: float = Field(description="USD per month for storing totalBytes.")
    currency: str = "USD"
    spend: Spend = Field(
        default_factory=Spend, description="What the provider work cost, by owner, type and month."
    )


class SignedUrl(RecordModel):
    url: str = Field(description="A presigned https URL (S3) or a file:// path (local store).")
    expires_at: Timestamp
    uri: str = Field(description="The artifact's store URI.")


def _artifact(stored: dict[str, Any]) -> dict[str, Any]:
    info = {"uri": stored["uri"], "sizeBytes": stored.get("sizeBytes", 0)}
    if stored.get("contentType"):
        info["contentType"] = stored["contentType"]
    return info


def presented(version: dict[str, Any]) -> dict[str, Any]:
    """A version entry as readers get it: `likeness` is the version's verdict (evaluations.py,
    `verdict_of`: its run's own unless a person chose another; never a scoring of pictures made
    elsewhere), `likenessChoice` says which and why, `likenessHistory` lists every other evaluation,
    oldest first (the run's own as evaluation 0)."""
    chosen = promoted(version)
    if chosen is not None:
        version = {**version, "promotion": chosen, "modelUri": chosen["modelUri"]}
    if not any(version.get(k) for k in ("evaluations", "verdictChoices", "verdictChoice")):
        return version
    verdict, choice = verdict_of(version)
    number = int(verdict.get("evaluation") or 0) if verdict is not None else -1
    history = [_shown(e) for e in evaluations_of(version) if int(e.get("evaluation") or 0) != number]
    shown = {k: v for k, v in version.items() if k != "likeness"}
    if verdict is None:  # only pictures made elsewhere were scored: no verdict on the LoRA
        return {**shown, "likenessHistory": history}
    entry = _shown(verdict)
    return {
        **shown,
        "likenessEntry": {k: v for k, v in entry.items() if k != "likeness"} if number else None,
        "likeness": verdict["likeness"],
        "likenessEvaluation": number,
        "likenessSource": "",
        "likenessChoice": choice,
        "likenessHistory": history,
    }


def _shown(entry: dict[str, Any]) -> dict[str, Any]:
    fields = ("evaluation", "at", "by", "resource", "provider", "promptSet", "seeds", "costUsd", "likeness")
    return {k: entry[k] for k in (*fields, "source", "pictures") if k in entry}


def to_record(doc: dict[str, Any]) -> JobRecord:
    """The record of a catalog document (as read, with UTC-aware datetimes; any schema)."""
    doc = upgrade(doc)
    fields = {k: v for k, v in doc.items() if k != "_id" and v is not None}
    fields["id"] = doc["_id"]
    fields["artifacts"] = [_artifact(a) for a in doc.get("artifacts") or []]
    fields["versions"] = [
        {**presented(v), "artifacts": [_artifact(a) for a in v.get("artifacts") or []]}
        for v in doc.get("versions") or []
    ]
    spent = (doc.get("evaluationCost") or {}).get("byMonth") or {}
    if spent:
        cost = dict(doc.get("cost") or {})
        months = dict(cost.get("byMonth") or {})
        for month, usd in spent.items():
            months[month] = round(months.get(month, 0.0) + float(usd), 6)
        fields["cost"] = {**cost, "byMonth": months, "evaluationsUsd": round(sum(spent.values()), 6)}
    declared = CATALOG_KINDS.get(str(doc.get("kind")))  # an unknown kind: the common record
    if declared is None:
        return JobRecord.model_validate(fields)
    return declared.record.model_validate({**fields, **declared.record_fields(doc)})


def record_json(doc: dict[str, Any]) -> dict[str, Any]:
    return to_record(doc).wire()
