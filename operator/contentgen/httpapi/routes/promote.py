"""POST /api/assets/REF/versions/N/promote: a person makes a scored checkpoint the LoRA version's
model, over the automatic choice (pipeline/likeness/promote.py, docs/likeness.md#choosing-a-
checkpoint-yourself). Recorded as a numbered promotion beside the version, naming the caller and
the automatic choice, which stays. Where this API creates on a laptop (`contentgen api --local`),
whose runs resolve a loraRef from the store; in a cluster the LoraTraining's annotation
contentgen.io/promoted-checkpoints says it (the operator resolves loraRefs from the resource), so
elsewhere it answers 403 create_disabled naming the kubectl command."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from contentgen.api import now
from contentgen.api.lora import PROMOTED_ANNOTATION
from contentgen.errors import ContentgenError
from contentgen.pipeline.likeness import promote

from ..deps import CallerDep, RefPath, Services, ServicesDep, find_record
from ..errors import ERROR_RESPONSES, ApiError, ErrorResponse
from ..identity import Caller

router = APIRouter(prefix="/api/assets", tags=["create"])


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: int = Field(ge=1, le=1_000_000, description="The scored checkpoint whose LoRA becomes the model.")
    note: str = Field(default="", max_length=500, description="Why, kept with the promotion.")


class Promotion(BaseModel):
    """The promotion as stored beside the version (promotions/p{k}.json) and recorded."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(description="The LoRA's record.")
    version: int
    promotion: int = Field(description="Its number among the version's promotions.")
    step: int
    model_uri: str = Field(alias="modelUri", description="The checkpoint's LoRA: the version's model now.")
    by: str
    at: str
    automatic_step: int | None = Field(alias="automaticStep", description="The automatic choice, kept.")
    automatic_model_uri: str = Field(alias="automaticModelUri")
    note: str = ""


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Promotion, "description": "Promoted: stored beside the version and recorded."},
    400: {
        "model": ErrorResponse,
        "description": "A bad field, named in `error.fields` (code invalid): the step is not one of the "
        "version's scored checkpoints, or the version has none, or the record is not a LoRA.",
    },
    401: ERROR_RESPONSES[401],
    403: {
        "model": ErrorResponse,
        "description": "The caller does not act for the record's owner (code forbidden), or this API does "
        "not promote (code create_disabled: only `contentgen api --local` does).",
    },
    404: {"model": ErrorResponse, "description": "No such record visible to the caller, or no such version."},
    409: ERROR_RESPONSES[409],
    502: {
        "model": ErrorResponse,
        "description": "The store failed (code store_error; nothing was recorded).",
    },
    503: ERROR_RESPONSES[503],
}


def _promote(svc: Services, who: Caller, ref: str, version: int, wanted: PromoteRequest) -> dict[str, Any]:
    doc = find_record(svc, who, ref)
    creator = svc.creator
    if creator is None or not creator.local:
        raise ApiError(
            403,
            "create_disabled",
            "this API does not promote checkpoints (only `contentgen api --local` does, whose runs use it); "
            f"in a cluster, annotate the LoraTraining: kubectl annotate loratraining/{doc.get('name')} "
            f"{PROMOTED_ANNOTATION}='{{\"{version}\": {wanted.step}}}' --overwrite",
        )
    if not who.may_act_for(str(doc.get("owner", ""))):
        raise ApiError(
            403, "forbidden", f"{who.user} does not act for {doc.get('owner')!r}, the record's owner"
        )
    try:
        entry = promote.promote(
            svc.catalog, svc.store(), doc, version, wanted.step, by=who.user, at=now(), note=wanted.note
        )
    except promote.NotPromotable as exc:
        text = str(exc)
        if text.startswith("version:"):
            raise ApiError(404, "version_not_found", text) from None
        field = "step" if text.startswith("step:") else "ref"
        raise ApiError(400, "invalid", text, fields=[{"field": field, "message": text}]) from None
    except ContentgenError as exc:
        raise ApiError(502, "store_error", f"{exc.reason}: {exc}; nothing was recorded") from None
    return {"id": doc["_id"], **entry}


@router.post(
    "/{ref:path}/versions/{version}/promote",
    response_model=Promotion,
    response_model_by_alias=True,
    summary="Make a scored checkpoint a LoRA version's model, over the automatic choice",
    responses=RESPONSES,
)
async def promote_checkpoint(
    ref: RefPath,
    version: Annotated[int, Path(ge=1, description="The LoRA version.")],
    wanted: Annotated[PromoteRequest, Body()],
    svc: ServicesDep,
    who: CallerDep,
) -> dict[str, Any]:
    """The checkpoint `step`'s LoRA becomes the version's model: a loraRef to the version uses it
    from then on. Stored as a numbered promotion beside the version (who, when, the automatic
    choice, kept); promote the automatic step again to go back."""
    return await run_in_threadpool(_promote, svc, who, ref, version, wanted)
