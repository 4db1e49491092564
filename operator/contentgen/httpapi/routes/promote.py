"""POST /api/assets/REF/versions/N/promote: a person makes a scored checkpoint the LoRA version's
model, over the automatic choice (pipeline/likeness/promote.py, docs/likeness.md#choosing-a-
checkpoint-yourself). Where this API creates on a laptop (`contentgen api --local`), whose runs
resolve a loraRef from the store, it is recorded as a numbered promotion beside the version, naming
the caller and the automatic choice, which stays (200). In a cluster the LoraTraining's annotation
contentgen.io/promoted-checkpoints says it (the operator resolves loraRefs from the resource): the
API merges the version's entry, with the caller, the time and the note, into that annotation through
the Kubernetes API under its own ServiceAccount (a merge patch on the resourceVersion it read) and
answers 202; the operator follows it into status.versions[].promotion. The same checks refuse the
same steps in both places, in the same words."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from contentgen.api import now
from contentgen.api.lora import PROMOTED_ANNOTATION
from contentgen.pipeline.likeness import promote

from ..creators import KubeCreator
from ..deps import CallerDep, RefPath, Services, ServicesDep, find_record
from ..errors import ApiError, Responses, documented_error
from ..identity import Caller
from .common import (
    ANNOTATING_OUTAGES,
    ANNOTATING_REFUSALS,
    annotating_creator,
    creator_answers,
    recorded_or_nothing,
)

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


class PromotionAsked(BaseModel):
    """In a cluster: the LoraTraining's annotation now asks for the checkpoint; the operator makes it
    the version's model (status.versions[].promotion, with `by`, `at` and `note`)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(description="The LoRA's record (the LoraTraining's uid).")
    version: int
    step: int
    model_uri: str = Field(alias="modelUri", description="The checkpoint's LoRA, as the record lists it.")
    by: str = Field(description="The caller, kept in the annotation's entry.")
    at: str
    automatic_step: int | None = Field(alias="automaticStep", description="The automatic choice, kept.")
    note: str = ""
    annotation: str = Field(description="The annotation it set (contentgen.io/promoted-checkpoints).")
    message: str = Field(description="What was done, and where the operator shows it.")


RESPONSES: Responses = {
    200: {
        "model": Promotion,
        "description": "On a laptop (`contentgen api --local`): promoted, stored beside the version and "
        "recorded.",
    },
    202: {
        "model": PromotionAsked,
        "description": "In a cluster: the LoraTraining's annotation contentgen.io/promoted-checkpoints "
        "now names the step for the version (merged with its other entries, with the caller, the time "
        "and the note); the operator makes it the version's model.",
    },
    400: documented_error(
        "A bad field, named in `error.fields` (code invalid): the step is not one of the "
        "version's scored checkpoints, or the version has none, or the record is not a LoRA."
    ),
    **ANNOTATING_REFUSALS,
    409: documented_error(
        "An ambiguous reference (code ambiguous); in a cluster, the LoraTraining's "
        "annotation is not a JSON object of version to step (fix or remove it), or the LoraTraining "
        "kept changing while it was annotated (code conflict: promote again)."
    ),
    **ANNOTATING_OUTAGES,
}


def _checked(doc: dict[str, Any], version: int, step: int, *, in_cluster: bool) -> tuple[dict[str, Any], str]:
    """The version and the checkpoint's LoRA, or the refusal the laptop and the cluster share."""
    try:
        return promote.target(doc, version, step, in_cluster=in_cluster)
    except promote.NotPromotable as exc:
        text = str(exc)
        if text.startswith("version:"):
            raise ApiError(404, "version_not_found", text) from None
        field = "step" if text.startswith("step:") else "ref"
        raise ApiError(400, "invalid", text, fields=[{"field": field, "message": text}]) from None


def _promote(
    svc: Services, who: Caller, ref: str, version: int, wanted: PromoteRequest, response: Response
) -> dict[str, Any]:
    doc = find_record(svc, who, ref)
    annotation = f"{PROMOTED_ANNOTATION}='{{\"{version}\": {wanted.step}}}'"
    creator = annotating_creator(svc, who, doc, "promote", annotation)
    if isinstance(creator, KubeCreator):
        return _annotate(creator, doc, who, version, wanted, response)
    if not creator.local:
        raise ApiError(403, "create_disabled", "this API promotes only on a laptop or in a cluster")
    _checked(doc, version, wanted.step, in_cluster=False)
    with recorded_or_nothing():
        entry = promote.promote(
            svc.catalog, svc.store(), doc, version, wanted.step, by=who.user, at=now(), note=wanted.note
        )
    return {"id": doc["_id"], **entry}


def _annotate(
    creator: KubeCreator,
    doc: dict[str, Any],
    who: Caller,
    version: int,
    wanted: PromoteRequest,
    response: Response,
) -> dict[str, Any]:
    """In a cluster: the step checked as on a laptop, then the LoraTraining annotated."""
    chosen, model_uri = _checked(doc, version, wanted.step, in_cluster=True)
    automatic_step, _ = promote.automatic_choice(chosen)
    at = now().isoformat().replace("+00:00", "Z")
    note = wanted.note[:500]
    with creator_answers():
        message = creator.promote(doc, version, wanted.step, by=who.user, at=at, note=note)
    entry: dict[str, Any] = {"step": wanted.step, "by": who.user, "at": at}
    if note:
        entry["note"] = note
    response.status_code = 202
    return {
        "id": doc["_id"],
        "version": version,
        "step": wanted.step,
        "modelUri": model_uri,
        "by": who.user,
        "at": at,
        "automaticStep": automatic_step,
        "note": note,
        "annotation": PROMOTED_ANNOTATION,
        "message": message,
    }


@router.post(
    "/{ref:path}/versions/{version}/promote",
    response_model=None,
    summary="Make a scored checkpoint a LoRA version's model, over the automatic choice",
    responses=RESPONSES,
)
async def promote_checkpoint(
    ref: RefPath,
    version: Annotated[int, Path(ge=1, description="The LoRA version.")],
    wanted: Annotated[PromoteRequest, Body()],
    svc: ServicesDep,
    who: CallerDep,
    response: Response,
) -> dict[str, Any]:
    """The checkpoint `step`'s LoRA becomes the version's model: a loraRef to the version uses it
    from then on. On a laptop, stored as a numbered promotion beside the version (who, when, the
    automatic choice, kept: 200); in a cluster, the LoraTraining's annotation
    contentgen.io/promoted-checkpoints gets the version's entry (who, when, the note: 202), which the
    operator follows. Promote the automatic step again to go back."""
    return await run_in_threadpool(_promote, svc, who, ref, version, wanted, response)
