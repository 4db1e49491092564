"""Evaluating a LoRA version's likeness again (docs/likeness.md): POST
/api/assets/REF/versions/N/evaluate. Without ?confirm=true it only says what it would cost; with it:
- on a laptop (`contentgen api --local`), the evaluation runs in this process (as `contentgen
  assets evaluate` does, pipeline/likeness/rescore.py) and the answer comes when it is recorded;
- in a cluster, a LoraEvaluation is created through the Kubernetes API (as the creates are,
  create.py), which the operator runs as a Job like any resource: the answer (202) names it, and
  its record and the LoRA version's likeness history get the result.
Paid work, so only where this API creates: elsewhere 403 create_disabled. Finding the version and
estimating it need no numpy or OpenCV (reevaluate's plain part), so the operator's image answers
them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from contentgen.api import now
from contentgen.api.common import NAME_PATTERN
from contentgen.api.lora import LikenessPromptSet, Seed
from contentgen.errors import ContentgenError, InvalidInput
from contentgen.pipeline.likeness import reevaluate
from contentgen.pipeline.likeness.reevaluate import Target
from contentgen.providers import IMAGE_GENERATORS

from ..deps import CallerDep, RefPath, Services, ServicesDep, find_record
from ..errors import ERROR_RESPONSES, ApiError, ErrorResponse
from ..identity import Caller
from ..making import Wanted, new_name
from .create import CREATE_ERRORS, Created, create_for

router = APIRouter(prefix="/api/assets", tags=["create"])


class EvaluateRequest(BaseModel):
    """How to evaluate; every field optional."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    prompt_set: LikenessPromptSet | None = Field(
        default=None, alias="promptSet", description="The prompt set (default likeness-v1)."
    )
    seeds: list[Seed] | None = Field(
        default=None, min_length=1, max_length=4, description="1 to 4 different seeds (default [1, 2])."
    )
    provider: str | None = Field(
        default=None,
        max_length=40,
        description="fal, offline or (in a cluster) cluster (default: the provider that trained the "
        "version; offline when the API runs with --offline).",
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=NAME_PATTERN,
        description="In a cluster: the LoraEvaluation's name; asking again with the same name and "
        "settings answers with the one that exists (nothing is paid twice), with other settings 409. "
        "Unset: a fresh name.",
    )


class EvaluationPlan(BaseModel):
    """What an evaluation would do and cost (a dry run), or what it did."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    version: int
    dry_run: bool = Field(alias="dryRun")
    provider: str
    prompt_set: str = Field(alias="promptSet")
    seeds: list[int]
    estimate_usd: float = Field(alias="estimateUsd", description="What it bills at most (USD).")
    estimate: str = Field(description="How the estimate was reckoned.")
    baseline_cached: bool = Field(
        alias="baselineCached",
        description="The pictures without the LoRA are stored already (not paid again).",
    )
    evaluation: int = Field(default=0, description="Its number (1, 2, ...); 0 in a dry run.")
    ran: bool = Field(
        default=False, description="False: an earlier attempt had made it; it was recorded now."
    )
    recorded: bool = Field(default=False, description="It is in the version's likeness history.")
    adopted: list[int] = Field(default=[], description="Earlier attempts' evaluations recorded now.")
    cost_usd: float | None = Field(default=None, alias="costUsd", description="What it cost (USD).")
    likeness: dict[str, Any] | None = Field(default=None, description="Its report, as a version's likeness.")
    resource: Created | None = Field(
        default=None,
        description="In a cluster: the LoraEvaluation made (or found made with these settings), which "
        "the operator runs; its record and the version's likeness history get the result.",
    )


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": EvaluationPlan,
        "description": "A dry run (no ?confirm=true): what it would cost. In a cluster, also a repeat "
        "of a named evaluation that exists with these settings (`resource.created` false).",
    },
    201: {
        "model": EvaluationPlan,
        "description": "On a laptop: evaluated and recorded (or found finished and recorded).",
    },
    202: {
        "model": EvaluationPlan,
        "description": "In a cluster: a LoraEvaluation was created (`resource`); the operator runs it, and "
        "its record and the version's likeness history get the result. Its spend is the operator's to "
        "allow (budgets: the LoraEvaluation waits as BudgetExceeded).",
    },
    400: {
        "model": ErrorResponse,
        "description": "A bad field (named), the record is not a LoRA, its version cannot be evaluated, or "
        "the provider cannot take its LoRA from this store (nothing was paid); in a cluster, also "
        "admission's refusal of the LoraEvaluation (as the creates', with `error.fields`).",
    },
    401: ERROR_RESPONSES[401],
    403: {
        "model": ErrorResponse,
        "description": "The caller does not act for the record's owner; the budget (CONTENTGEN_BUDGETS) "
        "cannot cover the estimate (code over_budget, with the numbers; nothing was paid); or this API "
        "does not create (code create_disabled); in a cluster, also a refusal of the cluster's RBAC or "
        "owner policy (the message says).",
    },
    404: {"model": ErrorResponse, "description": "No such record visible to the caller, or no such version."},
    409: {
        "model": ErrorResponse,
        "description": "An ambiguous reference, or the version is being evaluated already (code busy); in a "
        "cluster, a LoraEvaluation of that name with other settings (code conflict).",
    },
    502: {
        "model": ErrorResponse,
        "description": "The provider or the store failed (what was paid is kept in its checkpoints: the same "
        "request again resumes it without paying twice).",
    },
    503: {
        "model": ErrorResponse,
        "description": CREATE_ERRORS[503]["description"] + " " + ERROR_RESPONSES[503]["description"],
    },
}


def _goal(svc: Services, who: Caller, ref: str, version: int, body: EvaluateRequest) -> Target:
    doc = find_record(svc, who, ref)
    creator = svc.creator
    provider = "offline" if getattr(creator, "offline", False) else body.provider
    try:
        plan = reevaluate.check_plan(body.prompt_set, body.seeds)
    except ValueError as exc:
        field = "seeds" if str(exc).startswith("seeds") else "promptSet"
        raise ApiError(400, "invalid", str(exc), fields=[{"field": field, "message": str(exc)}]) from None
    if provider is not None and provider not in IMAGE_GENERATORS:
        message = f"no image generator {provider!r}; use one of {', '.join(IMAGE_GENERATORS)}"
        raise ApiError(
            400, "invalid", f"provider: {message}", fields=[{"field": "provider", "message": message}]
        )
    try:
        target: Target = reevaluate.target(doc, version, provider, plan)
        return target
    except reevaluate.NotEvaluable as exc:
        status = 404 if str(exc).startswith("version:") else 400
        raise ApiError(status, "version_not_found" if status == 404 else "invalid", str(exc)) from None


def _evaluate(
    svc: Services, who: Caller, ref: str, version: int, body: EvaluateRequest, confirm: bool
) -> dict[str, Any]:
    goal = _goal(svc, who, ref, version, body)
    creator = svc.creator
    settings = getattr(creator, "settings", None)
    in_cluster = creator is not None and not creator.local
    if confirm and not in_cluster and (creator is None or settings is None):
        raise ApiError(
            403,
            "create_disabled",
            "this API does not run paid work (it creates only with `contentgen api --local`, or in a "
            "cluster): evaluate with `contentgen assets evaluate` where the provider's key is",
        )
    if not who.may_act_for(goal.owner):
        raise ApiError(403, "forbidden", f"{who.user} does not act for {goal.owner!r}, the record's owner")
    store = svc.store()
    prices = settings.prices if settings is not None else svc.settings.prices
    planned = reevaluate.estimate(store, goal, prices)
    answer: dict[str, Any] = {
        "id": goal.uid,
        "version": goal.version,
        "dryRun": not confirm,
        "provider": goal.provider,
        "promptSet": goal.plan.prompt_set,
        "seeds": list(goal.plan.seeds),
        "estimateUsd": planned.usd,
        "estimate": planned.detail,
        "baselineCached": planned.baseline_cached,
    }
    if not confirm:
        return answer
    if in_cluster:
        made = create_for(svc, who, _resource(goal, body))
        return {**answer, "resource": made.wire()}
    from contentgen.pipeline.likeness import rescore  # generating and scoring: the worker's set

    assert settings is not None
    try:
        outcome = rescore.evaluate_again(
            svc.catalog,
            store,
            goal,
            prices=prices,
            budgets=svc.settings.budgets,
            work_dir=settings.work_dir,
            presign_seconds=settings.presign_seconds,
            by="api",
            now=now,
            planned=planned,
        )
    except rescore.Busy as exc:
        raise ApiError(409, "busy", str(exc)) from None
    except rescore.OverBudget as exc:
        raise ApiError(403, "over_budget", str(exc)) from None
    except InvalidInput as exc:  # refused before anything was asked of the provider
        raise ApiError(400, "invalid", f"{exc}; nothing was paid") from None
    except ContentgenError as exc:
        raise ApiError(
            502,
            "provider_error",
            f"{exc.reason}: {exc}; what was paid is kept in its checkpoints: the same request again resumes "
            "it without paying twice",
        ) from None
    entry = outcome.entry
    return {
        **answer,
        "evaluation": outcome.number,
        "ran": outcome.ran,
        "recorded": outcome.recorded,
        "adopted": outcome.adopted,
        "costUsd": entry.get("costUsd"),
        "likeness": entry.get("likeness"),
    }


@router.post(
    "/{ref:path}/versions/{version}/evaluate",
    response_model=EvaluationPlan,
    response_model_by_alias=True,
    status_code=201,
    summary="Evaluate a LoRA version's likeness again (a dry run unless ?confirm=true)",
    responses=RESPONSES,
)
async def evaluate_version(
    ref: RefPath,
    version: Annotated[int, Path(ge=1, description="The version to evaluate.")],
    svc: ServicesDep,
    who: CallerDep,
    response: Response,
    body: Annotated[EvaluateRequest | None, Body()] = None,
    confirm: Annotated[
        bool, Query(description="Evaluate and pay; without it the answer only says what it would cost.")
    ] = False,
) -> dict[str, Any]:
    """The version's LoRA and the same prompts without it (the baseline, reused when stored),
    scored against its dataset's faces and recorded in its likeness history; its earlier
    evaluations stay. Paid once (checkpointed per picture), within CONTENTGEN_BUDGETS."""
    answer = await run_in_threadpool(_evaluate, svc, who, ref, version, body or EvaluateRequest(), confirm)
    made = answer.get("resource")
    if answer["dryRun"] or (made is not None and not made["created"]):
        response.status_code = 200
    else:
        response.status_code = 201 if made is None else 202
    return answer


def _resource(goal: Target, body: EvaluateRequest) -> Wanted:
    """The LoraEvaluation of `goal`, in its LoRA's namespace, pinning its version; without a
    provider asked for, the operator takes the version's (as the laptop's default)."""
    spec: dict[str, Any] = {
        "owner": goal.owner,
        "loraRef": {"name": goal.name, "version": goal.version},
        "evaluation": {"promptSet": goal.plan.prompt_set, "seeds": list(goal.plan.seeds)},
    }
    if body.provider is not None:
        spec["provider"] = body.provider
    name = body.name or new_name("LoraEvaluation", f"{goal.name}-v{goal.version}")
    return Wanted("LoraEvaluation", name, goal.namespace, spec, named_by_client=body.name is not None)
