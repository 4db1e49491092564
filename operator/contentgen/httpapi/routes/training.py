"""A LoRA training's controls while it runs and after (docs/cluster-training.md#stopping-early,
#continuing-a-training; the web UI's live view):

- POST /api/jobs/REF/stop: stop the training under way at its next step boundary and keep its
  best-scoring checkpoint so far as the version's model, billed for the steps it ran. Without
  ?confirm=true it says what it would keep. In a cluster the LoraTraining is annotated
  contentgen.io/stop=keep-best through the API's ServiceAccount (the operator hands it to the
  worker and removes it once the run has ended: 202); on a laptop the run of this process is asked
  to stop (202).
- POST /api/assets/REF/versions/N/continue: train on from version N, its LoRA and optimizer state,
  for `steps` more steps, as a new version. Without ?confirm=true it says what it would run and
  cost. In a cluster the LoraTraining's spec.training gets continueFrom and steps (a merge patch on
  the resourceVersion read: a new generation, which the operator trains: 202); on a laptop it runs
  here as the resource's next version, as `contentgen run` of the changed manifest does (202).

Both act only where this API creates (elsewhere 403 create_disabled, naming the kubectl command)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from contentgen.api.kinds.lora_training import KIND as LORA_TRAINING
from contentgen.api.lora import STOP_ANNOTATION
from contentgen.errors import InvalidInput
from contentgen.pipeline import training_controls as controls
from contentgen.pricing import estimated

from ..creators import KubeCreator, StoreFailed
from ..deps import CallerDep, RefPath, Services, ServicesDep, acting_for, find_record
from ..errors import ERROR_RESPONSES, ApiError, documented_error
from ..identity import Caller
from ..manifests import NOT_APPLICABLE, Invalid, JsonBody
from .common import creator_answers
from .create import Created

router = APIRouter(prefix="/api", tags=["create"])

MAX_STEPS = 100_000
ConfirmQuery = Annotated[bool, Query(description="Act; without it, only say what it would do.")]


class Kept(BaseModel):
    """The checkpoint a stop keeps: the best-scoring so far."""

    step: int
    verdict: str = ""
    median: float | None = None


class _DryRunnable(BaseModel):
    """An answer of a route that says what it would do without ?confirm=true (a dry run)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    dry_run: bool = Field(alias="dryRun")


class StopAnswer(_DryRunnable):
    """What stopping does (a dry run), or what was done."""

    version: int = Field(description="The version the stopped run makes.")
    step: int = Field(description="The last step trained, as last reported.")
    steps: int = Field(description="The step it would have ended at.")
    keeps: Kept | None = Field(
        description="The checkpoint it keeps as the version's model; null: none was scored yet, so the "
        "run ends Failed (StoppedBeforeCheckpoint), keeping nothing but what it was billed for."
    )
    message: str = Field(description="What it keeps, what it costs, what happens next.")
    annotation: str = Field(default="", description="In a cluster: the annotation set (contentgen.io/stop).")


class ContinueRequest(JsonBody):
    model_config = ConfigDict(extra="forbid", strict=True)

    steps: int = Field(ge=1, le=MAX_STEPS, description="How many steps to train on for.")
    step: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="One of the version's stored checkpoints to go on from (its step). Unset: the step "
        "its training ended at.",
    )


class ContinueAnswer(_DryRunnable):
    """What continuing runs and costs (a dry run), or what was done."""

    version: int = Field(description="The version it goes on from.")
    steps: int = Field(description="The steps it adds.")
    training: dict[str, Any] = Field(description="The spec's training as it will run.")
    estimate_usd: float = Field(alias="estimateUsd", description="What the run is expected to cost (USD).")
    estimate: str = Field(description="How the estimate was reckoned.")
    message: str = Field(description="What it does, or did.")
    changed: bool = Field(
        default=True, description="False: the spec asked for this already; nothing changed."
    )
    resource: Created | None = Field(
        default=None, description="On a laptop: the run started here, as the resource's next version."
    )


def _lora(svc: Services, who: Caller, ref: str) -> dict[str, Any]:
    """The LoRA record `ref` names, visible to and changed for `who`."""
    try:
        doc = controls.lora_record(find_record(svc, who, ref))
    except InvalidInput as exc:
        raise _refusal(exc) from None
    acting_for(who, str(doc.get("owner", "")))
    return doc


def _creates(svc: Services, command: str) -> Any:
    if svc.creator is None:
        raise ApiError(
            403,
            "create_disabled",
            f"this API does not create, stop or train (CONTENTGEN_API_CREATE=off); in a cluster: {command}",
        )
    return svc.creator


# --- stop -----------------------------------------------------------------------------------------


def _refusal(exc: InvalidInput) -> ApiError:
    """training_controls' refusals as this API's answers: of a request the document allows, a 400
    with the code of what the document cannot state (a record that is not a LoRA, a version that
    kept no training state: not_applicable, docs/creating.md)."""
    text = str(exc)
    if isinstance(exc, controls.NotALora):
        return ApiError(400, NOT_APPLICABLE, text)
    if isinstance(exc, controls.NotNow):
        return ApiError(409, "not_running", text)
    if "has no usable version" in text:
        return ApiError(404, "version_not_found", text)
    return ApiError(400, NOT_APPLICABLE, text, fields=[{"field": "version", "message": text}])


def _stop(svc: Services, who: Caller, ref: str, confirm: bool, response: Response) -> dict[str, Any]:
    doc = _lora(svc, who, ref)
    creator = _creates(svc, controls.stop_command(doc))
    try:
        planned = controls.stop_plan(doc)
    except InvalidInput as exc:
        raise _refusal(exc) from None
    keeps = planned.keeps.wire() if planned.keeps is not None else None
    plan = {"id": doc["_id"], "version": planned.version, "step": planned.step, "steps": planned.steps}
    plan |= {"keeps": keeps, "message": planned.message}
    if not confirm:
        return {**plan, "dryRun": True}
    try:
        with creator_answers():
            message = creator.stop(doc, who.user)
    except InvalidInput as exc:  # a laptop's run that no process holds any more
        raise _refusal(exc) from None
    response.status_code = 202
    annotation = STOP_ANNOTATION if isinstance(creator, KubeCreator) else ""
    return {**plan, "dryRun": False, "message": message, "annotation": annotation}


@router.post(
    "/jobs/{ref:path}/stop",
    response_model=StopAnswer,
    summary="Stop a LoRA training now, keeping its best checkpoint so far",
    responses={
        202: {"model": StopAnswer, "description": "Asked: it stops at its next step boundary."},
        400: documented_error("A bad parameter, or the record is not a LoraTraining (code not_applicable)."),
        401: ERROR_RESPONSES[401],
        403: documented_error(
            "The caller does not act for the record's owner, this API does not create (code "
            "create_disabled, naming the kubectl command), or the cluster refused the API's ServiceAccount."
        ),
        404: documented_error(
            "No such record visible to the caller; in a cluster, its LoraTraining is gone."
        ),
        409: documented_error(
            "No training is under way (code not_running: on a laptop also a run its record shows Running "
            "that no process holds, killed), the LoraTraining kept changing (code conflict), or an "
            "ambiguous reference."
        ),
        503: documented_error("The catalog, or in a cluster the Kubernetes API, cannot be reached."),
    },
)
async def stop_training(
    ref: RefPath, svc: ServicesDep, who: CallerDep, response: Response, confirm: ConfirmQuery = False
) -> dict[str, Any]:
    """Without ?confirm=true: which checkpoint a stop keeps, and what the run has cost so far. With
    it: the training stops at its next step boundary and ends Succeeded with that checkpoint's LoRA
    as the version's model (Failed, StoppedBeforeCheckpoint, where none was scored yet), billed for
    the steps it ran. In a cluster the LoraTraining is annotated contentgen.io/stop=keep-best."""
    return await run_in_threadpool(_stop, svc, who, ref, confirm, response)


# --- continue -------------------------------------------------------------------------------------


def _continue(
    svc: Services,
    who: Caller,
    ref: str,
    version: int,
    wanted: ContinueRequest,
    confirm: bool,
    response: Response,
) -> dict[str, Any]:
    doc = _lora(svc, who, ref)
    creator = _creates(svc, controls.continue_command(doc, version, wanted.steps))
    try:
        spec = controls.continued_spec(doc, version, wanted.steps, wanted.step)
    except InvalidInput as exc:
        raise _refusal(exc) from None
    settings = getattr(creator, "settings", None)
    prices = settings.prices if settings is not None else svc.settings.prices
    cost = estimated(LORA_TRAINING.kind, spec, prices, None)
    plan = {
        "id": doc["_id"],
        "version": version,
        "steps": wanted.steps,
        "training": spec["training"],
        "estimateUsd": cost.estimated_usd,
        "estimate": cost.detail,
        "message": controls.continue_message(doc, version, wanted.steps, cost.estimated_usd),
    }
    if not confirm:
        return {**plan, "dryRun": True}
    try:
        with creator_answers():
            made = creator.continue_training(doc, spec, by=who.user)
    except StoreFailed as exc:
        raise ApiError(502, "store_error", str(exc)) from None
    except Invalid as exc:
        raise ApiError(400, exc.code, str(exc), fields=[p.wire() for p in exc.problems]) from None
    response.status_code = 202 if made.changed else 200
    resource = made.resource.wire() if made.resource is not None else None
    return {**plan, "dryRun": False, "message": made.message, "changed": made.changed, "resource": resource}


@router.post(
    "/assets/{ref:path}/versions/{version}/continue",
    response_model=ContinueAnswer,
    summary="Train a LoRA on from a version, for more steps, as a new version",
    responses={
        200: {
            "model": ContinueAnswer,
            "description": "A dry run (no ?confirm=true): what it would run and cost; or, in a cluster, the "
            "spec asked for this already (changed false).",
        },
        202: {
            "model": ContinueAnswer,
            "description": "Started: in a cluster the LoraTraining's spec.training now goes on from the "
            "version (the operator trains the new generation); on a laptop the run goes here (`resource`).",
        },
        400: documented_error(
            "A bad field (named, code bad_request), the version kept no training state or the record is "
            "not a LoraTraining (code not_applicable), or admission refused the changed spec (with "
            "`error.fields`: a provider that cannot continue, a base model, rank or targets that "
            "differ, ...)."
        ),
        401: ERROR_RESPONSES[401],
        403: documented_error(
            "The caller does not act for the record's owner, this API does not create (code "
            "create_disabled, naming the kubectl command), or the cluster refused the API's ServiceAccount."
        ),
        404: documented_error(
            "No such record visible to the caller, or no such version; in a cluster, its resource is gone."
        ),
        409: documented_error(
            "The LoraTraining kept changing (code conflict), a run of it goes on on this machine, or an "
            "ambiguous reference."
        ),
        502: documented_error("On a laptop, the store failed while the run was resolved (code store_error)."),
        503: documented_error("The catalog, or in a cluster the Kubernetes API, cannot be reached."),
    },
)
async def continue_training(
    ref: RefPath,
    version: Annotated[int, Path(ge=1, description="The version to go on from.")],
    wanted: Annotated[ContinueRequest, Body()],
    svc: ServicesDep,
    who: CallerDep,
    response: Response,
    confirm: ConfirmQuery = False,
) -> dict[str, Any]:
    """Go on training from version N (its LoRA, optimizer state and random generator as its training
    left them) for `steps` more steps, as a new version whose lineage names N. Without ?confirm=true:
    what it would run and cost. In a cluster the LoraTraining's spec.training.continueFrom and steps
    are set (the operator trains the new generation); on a laptop it runs here."""
    return await run_in_threadpool(_continue, svc, who, ref, version, wanted, confirm, response)
