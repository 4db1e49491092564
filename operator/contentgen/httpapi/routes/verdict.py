"""POST /api/assets/REF/versions/N/verdict: a person makes one of a LoRA version's evaluations its
verdict, over its run's own (docs/likeness.md#one-verdict-per-version), as promote.py makes a
checkpoint its model. On a laptop (`contentgen api --local`) the choice is a numbered write-once
object beside the version and the record's from then on (pipeline/likeness/promote.choose_verdict,
what `contentgen assets promote --evaluation` does: 200). In a cluster the LoraTraining's
annotation contentgen.io/verdicts says it: the API merges the version's entry, with the caller,
the time and the note, through the Kubernetes API under its own ServiceAccount and answers 202;
the operator follows it (status.versions[].verdictChoice) and the record shows it. The same check
refuses the same evaluations in both places, in the same words (catalog/verdicts.choosable)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from contentgen.api import now
from contentgen.api.lora import VERDICTS_ANNOTATION
from contentgen.catalog.kinds import makes_loras
from contentgen.catalog.migrate import upgrade
from contentgen.catalog.verdicts import choosable
from contentgen.pipeline.likeness import promote

from ..creators import KubeCreator
from ..deps import CallerDep, RefPath, Services, ServicesDep, find_record
from ..errors import ApiError, Responses, documented_error
from ..identity import Caller
from ..manifests import NOT_APPLICABLE, UNRESOLVED, JsonBody
from .common import (
    ANNOTATING_OUTAGES,
    ANNOTATING_REFUSALS,
    annotating_creator,
    creator_answers,
    recorded_or_nothing,
)

router = APIRouter(prefix="/api/assets", tags=["create"])


class VerdictRequest(JsonBody):
    model_config = ConfigDict(extra="forbid", strict=True)

    evaluation: int = Field(
        ge=0,
        le=1_000_000,
        description="The evaluation (e{K}: 0 its training run's own, 1, 2, ... its re-evaluations) to be "
        "the verdict: one of pictures the LoRA generated that measured something.",
    )
    note: str = Field(default="", max_length=500, description="Why, kept with the choice.")


class VerdictChoiceMade(BaseModel):
    """The choice as stored beside the version (likeness/choices/c{k}.json) and recorded."""

    id: str = Field(description="The LoRA's record.")
    version: int
    choice: int = Field(description="Its number among the version's choices.")
    evaluation: int
    by: str
    at: str
    note: str = ""


class VerdictChoiceAsked(BaseModel):
    """In a cluster: the LoraTraining's annotation now names the evaluation; the operator follows it
    (status.versions[].verdictChoice) and the record shows it as the version's verdict."""

    id: str = Field(description="The LoRA's record (the LoraTraining's uid).")
    version: int
    evaluation: int
    by: str = Field(description="The caller, kept in the annotation's entry.")
    at: str
    note: str = ""
    annotation: str = Field(description="The annotation it set (contentgen.io/verdicts).")
    message: str = Field(description="What was done, and where the operator shows it.")


RESPONSES: Responses = {
    200: {
        "model": VerdictChoiceMade,
        "description": "On a laptop (`contentgen api --local`): chosen, stored beside the version and "
        "recorded; the record's verdict for the version is that evaluation's from now on.",
    },
    202: {
        "model": VerdictChoiceAsked,
        "description": "In a cluster: the LoraTraining's annotation contentgen.io/verdicts now names the "
        "evaluation for the version (merged with its other entries, with the caller, the time and the "
        "note); the operator follows it.",
    },
    400: documented_error(
        "A bad field, named in `error.fields` (code bad_request), or what the document cannot state: "
        "the evaluation is not one of the version's (code unresolved), scored pictures made elsewhere or "
        "measured nothing, or the record is not a LoRA (code not_applicable)."
    ),
    **ANNOTATING_REFUSALS,
    409: documented_error(
        "An ambiguous reference (code ambiguous); in a cluster, the LoraTraining's "
        "annotation is not a JSON object of version to evaluation (fix or remove it), or the "
        "LoraTraining kept changing while it was annotated (code conflict: ask again)."
    ),
    **ANNOTATING_OUTAGES,
}


def _refusal(text: str) -> ApiError:
    """choose_verdict's and choosable's refusal as the API's answer: a request the document allows,
    so a 400 with the code of what the document cannot state (docs/creating.md): an evaluation the
    version does not have (unresolved), or one that cannot be a verdict, or a record that is not a
    LoRA (not_applicable)."""
    if text.startswith("version:"):
        return ApiError(404, "version_not_found", text)
    if not text.startswith("evaluation:"):
        return ApiError(400, NOT_APPLICABLE, text, fields=[{"field": "ref", "message": text}])
    code = UNRESOLVED if " is not an evaluation of " in text else NOT_APPLICABLE
    return ApiError(400, code, text, fields=[{"field": "evaluation", "message": text}])


def _checked(doc: dict[str, Any], version: int, evaluation: int) -> None:
    """In a cluster, the laptop's checks (pipeline/likeness/promote.choose_verdict), in its words."""
    doc = upgrade(doc)
    if not makes_loras(doc.get("kind")):
        raise _refusal(f"{doc.get('name')!r} is a {doc.get('kind')}: only a LoRA version has a verdict")
    entry = next((v for v in doc.get("versions") or [] if int(v.get("version") or 0) == version), None)
    if entry is None:
        have = ", ".join(f"v{v['version']}" for v in doc.get("versions") or []) or "none"
        raise _refusal(f"version: {doc['name']} has no usable version {version} (usable: {have})")
    why = choosable(entry, evaluation)
    if why:
        raise _refusal(why)


def _choose(
    svc: Services, who: Caller, ref: str, version: int, wanted: VerdictRequest, response: Response
) -> dict[str, Any]:
    doc = find_record(svc, who, ref)
    annotation = f"{VERDICTS_ANNOTATION}='{{\"{version}\": {wanted.evaluation}}}'"
    creator = annotating_creator(svc, who, doc, "choose", annotation)
    if isinstance(creator, KubeCreator):
        return _annotate(creator, doc, who, version, wanted, response)
    if not creator.local:
        raise ApiError(403, "create_disabled", "this API chooses verdicts only on a laptop or in a cluster")
    with recorded_or_nothing():
        try:
            entry = promote.choose_verdict(
                svc.catalog,
                svc.store(),
                doc,
                version,
                wanted.evaluation,
                by=who.user,
                at=now(),
                note=wanted.note,
            )
        except promote.NotPromotable as exc:
            raise _refusal(str(exc)) from None
    return {"id": doc["_id"], **entry}


def _annotate(
    creator: KubeCreator,
    doc: dict[str, Any],
    who: Caller,
    version: int,
    wanted: VerdictRequest,
    response: Response,
) -> dict[str, Any]:
    """In a cluster: the evaluation checked as on a laptop, then the LoraTraining annotated."""
    _checked(doc, version, wanted.evaluation)
    at = now().isoformat().replace("+00:00", "Z")
    with creator_answers():
        message = creator.choose_verdict(
            doc, version, wanted.evaluation, by=who.user, at=at, note=wanted.note
        )
    response.status_code = 202
    return {
        "id": doc["_id"],
        "version": version,
        "evaluation": wanted.evaluation,
        "by": who.user,
        "at": at,
        "note": wanted.note,
        "annotation": VERDICTS_ANNOTATION,
        "message": message,
    }


@router.post(
    "/{ref:path}/versions/{version}/verdict",
    response_model=None,
    summary="Make one of a LoRA version's evaluations its verdict, over its run's own",
    responses=RESPONSES,
)
async def choose_verdict(
    ref: RefPath,
    version: Annotated[int, Path(ge=1, description="The LoRA version.")],
    wanted: Annotated[VerdictRequest, Body()],
    svc: ServicesDep,
    who: CallerDep,
    response: Response,
) -> dict[str, Any]:
    """Evaluation `evaluation`'s report becomes the version's verdict (its record's `likeness`). On a
    laptop, stored as a numbered choice beside the version (200); in a cluster, the LoraTraining's
    annotation contentgen.io/verdicts gets the version's entry (who, when, the note: 202), which the
    operator follows. Choose 0 to go back to the run's own evaluation."""
    return await run_in_threadpool(_choose, svc, who, ref, version, wanted, response)
