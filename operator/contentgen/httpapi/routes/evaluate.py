"""Evaluating a LoRA version's likeness again (docs/likeness.md): POST
/api/assets/REF/versions/N/evaluate. Without ?confirm=true it only says what it would cost; with it:
- on a laptop (`contentgen api --local`), the evaluation runs in this process (as `contentgen
  assets evaluate` does, pipeline/likeness/rescore.py) and the answer comes when it is recorded;
- in a cluster, a LoraEvaluation is created through the Kubernetes API (as the creates are,
  create.py), which the operator runs as a Job like any resource: the answer (202) names it, and
  its record and the LoRA version's likeness history get the result.
Paid work, so only where this API creates: elsewhere 403 create_disabled. Finding the version and
estimating it need no numpy or OpenCV (reevaluate's plain part), so the operator's image answers
them.

POST /api/assets/REF/versions/N/score scores pictures made elsewhere (a multipart/form-data upload)
against the version's subject, free, as `contentgen assets evaluate --pictures` does
(pipeline/likeness/pictures.py): on a laptop's API only, which stores evaluations; the upload is
checked (caps, what each part is) in plain Python, and the scoring modules are imported when it
runs."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from contentgen.api import now
from contentgen.api.common import NAME_PATTERN
from contentgen.api.kinds.lora_evaluation import KIND as LORA_EVALUATION
from contentgen.api.lora import LikenessPromptSet, Seed
from contentgen.api.providers import OFFLINE
from contentgen.errors import ContentgenError, InvalidInput
from contentgen.pipeline.likeness import pictures, reevaluate
from contentgen.pipeline.likeness.reevaluate import Target
from contentgen.pricing import PriceTable
from contentgen.providers import IMAGE_GENERATORS
from contentgen.store import ObjectStore

from ..deps import CallerDep, RefPath, Services, ServicesDep, acting_for, find_record
from ..errors import ERROR_RESPONSES, ApiError, Responses, documented_error
from ..identity import Caller
from ..manifests import Wanted, new_name
from .create import CREATE_ERRORS, Created, create_for

if TYPE_CHECKING:
    from contentgen.pipeline.settings import PipelineSettings

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


RESPONSES: Responses = {
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
    400: documented_error(
        "A bad field (named), the record is not a LoRA, its version cannot be evaluated, or "
        "the provider cannot take its LoRA from this store (nothing was paid); in a cluster, also "
        "admission's refusal of the LoraEvaluation (as the creates', with `error.fields`)."
    ),
    401: ERROR_RESPONSES[401],
    403: documented_error(
        "The caller does not act for the record's owner; the budget (CONTENTGEN_BUDGETS) "
        "cannot cover the estimate (code over_budget, with the numbers; nothing was paid); or this API "
        "does not create (code create_disabled); in a cluster, also a refusal of the cluster's RBAC or "
        "owner policy (the message says)."
    ),
    404: documented_error("No such record visible to the caller, or no such version."),
    409: documented_error(
        "An ambiguous reference, or the version is being evaluated already (code busy); in a "
        "cluster, a LoraEvaluation of that name with other settings (code conflict)."
    ),
    502: documented_error(
        "The provider or the store failed (what was paid is kept in its checkpoints: the same "
        "request again resumes it without paying twice)."
    ),
    503: documented_error(CREATE_ERRORS[503]["description"] + " " + ERROR_RESPONSES[503]["description"]),
}


def _goal(svc: Services, who: Caller, ref: str, version: int, body: EvaluateRequest) -> Target:
    doc = find_record(svc, who, ref)
    creator = svc.creator
    provider = OFFLINE.name if creator is not None and creator.offline else body.provider
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
    acting_for(who, goal.owner)
    store = svc.store()
    prices = settings.prices if settings is not None else svc.settings.prices
    planned = reevaluate.estimate(store, goal, prices)
    answer = _plan(goal, planned, confirm)
    if not confirm:
        return answer
    if in_cluster:
        made = create_for(svc, who, _resource(goal, body))
        return {**answer, "resource": made.wire()}
    assert settings is not None
    return {**answer, **_evaluated_here(svc, store, goal, settings, prices, planned)}


def _plan(goal: Target, planned: reevaluate.Estimate, confirm: bool) -> dict[str, Any]:
    """What the evaluation will ask for and is expected to cost (a dry run's whole answer)."""
    return {
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


def _evaluated_here(
    svc: Services,
    store: ObjectStore,
    goal: Target,
    settings: PipelineSettings,
    prices: PriceTable,
    planned: reevaluate.Estimate,
) -> dict[str, Any]:
    """Evaluate in this process (`contentgen api --local`), each refusal or failure as the API
    answers it."""
    from contentgen.pipeline.likeness import rescore  # generating and scoring: the worker's set

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
    return {
        "evaluation": outcome.number,
        "ran": outcome.ran,
        "recorded": outcome.recorded,
        "adopted": outcome.adopted,
        "costUsd": outcome.entry.get("costUsd"),
        "likeness": outcome.entry.get("likeness"),
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
    name = body.name or new_name(LORA_EVALUATION.kind, f"{goal.name}-v{goal.version}")
    return Wanted(LORA_EVALUATION.kind, name, goal.namespace, spec, named_by_client=body.name is not None)


# --- scoring pictures made elsewhere (pipeline/likeness/pictures.py) ---------------------------------

# The whole upload, the pictures' caps and the multipart's own lines (boundaries, part headers).
MAX_UPLOAD_BYTES = pictures.MAX_TOTAL_BYTES + 1024 * 1024
PICTURE_FIELDS = ("pictures", "baseline")
_CAPS = (
    f"at most {pictures.MAX_PICTURES} pictures in each field, each a PNG, JPEG or WebP file (by its "
    f"content) of at most {pictures.MAX_PICTURE_BYTES // 2**20} MiB and {pictures.MAX_PIXELS // 1_000_000} "
    f"megapixels, {pictures.MAX_TOTAL_BYTES // 2**20} MiB in all"
)
SCORE_BODY: dict[str, Any] = {
    "required": True,
    "description": f"The pictures, as multipart/form-data (RFC 7578): {_CAPS}.",
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["pictures"],
                "additionalProperties": False,
                "properties": {
                    "pictures": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": pictures.MAX_PICTURES,
                        "items": {"type": "string", "format": "binary"},
                        "description": "The pictures to score, one file part each (made with the LoRA, "
                        "elsewhere); each one's largest face is taken for the subject's.",
                    },
                    "baseline": {
                        "type": "array",
                        "maxItems": pictures.MAX_PICTURES,
                        "items": {"type": "string", "format": "binary"},
                        "description": "Optional: pictures made the same way without the LoRA, to "
                        "measure its gain (baselineMedian, gain).",
                    },
                },
            },
            "encoding": {
                "pictures": {"contentType": "image/png, image/jpeg, image/webp"},
                "baseline": {"contentType": "image/png, image/jpeg, image/webp"},
            },
        }
    },
}


class PictureInfo(BaseModel):
    name: str = Field(description="Its file name in the upload (else picture-N).")
    sha256: str
    size_bytes: int = Field(alias="sizeBytes")
    format: str = Field(description="png, jpeg or webp, read from its content.")
    width: int
    height: int

    model_config = ConfigDict(populate_by_name=True)


class PictureScore(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str
    faces: int = Field(description="Faces found in it.")
    similarity: float | None = Field(
        description="Its largest face's similarity to the subject (null: no face)."
    )
    nearest_training: str | None = Field(
        default=None, alias="nearestTraining", description="The training image most alike to that face."
    )
    nearest_similarity: float | None = Field(default=None, alias="nearestSimilarity")


class PicturesScored(BaseModel):
    """Pictures made elsewhere, scored against a LoRA version's subject and recorded as one of its
    evaluations (`source: pictures`)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    version: int
    evaluation: int = Field(description="Its number among the version's evaluations (1, 2, ...).")
    recorded: bool = Field(description="It is in the version's likeness history.")
    source: str = Field(description="pictures")
    pictures: list[PictureInfo]
    baseline: list[PictureInfo] = []
    cost_usd: float = Field(alias="costUsd", description="0: nothing was generated.")
    likeness: dict[str, Any] = Field(description="Its report, as a version's likeness.")
    scores: list[PictureScore] = Field(description="Each picture's score, in the order given.")


SCORE_RESPONSES: Responses = {
    201: {"model": PicturesScored, "description": "Scored, stored beside the version and recorded."},
    400: documented_error(
        "A bad field, named in `error.fields`: a part that is not a picture, is damaged, or "
        f"is over a cap (code not_a_picture; {_CAPS}), no picture (code invalid, field pictures), a field "
        "other than pictures and baseline, or a body that is not multipart (code bad_request); the record "
        "is not a LoRA or its version has no dataset to take the faces from (code invalid)."
    ),
    401: ERROR_RESPONSES[401],
    403: documented_error(
        "The caller does not act for the record's owner (code forbidden), or this API does "
        "not store evaluations (code create_disabled: only `contentgen api --local` does; in a cluster, "
        "score with `contentgen assets evaluate --pictures`)."
    ),
    404: documented_error("No such record visible to the caller, or no such version."),
    409: ERROR_RESPONSES[409],
    413: documented_error(f"The upload is over {MAX_UPLOAD_BYTES // 2**20} MiB (code too_large)."),
    415: documented_error(
        "The body is not multipart/form-data with a boundary (code unsupported_media_type)."
    ),
    502: documented_error("The store failed (nothing was recorded)."),
    503: ERROR_RESPONSES[503],
}


def _score_target(svc: Services, who: Caller, ref: str, version: int) -> Target:
    doc = find_record(svc, who, ref)
    try:
        goal: Target = reevaluate.target(doc, version, None, reevaluate.check_plan(None, None), draws=False)
    except reevaluate.NotEvaluable as exc:
        status = 404 if str(exc).startswith("version:") else 400
        raise ApiError(status, "version_not_found" if status == 404 else "invalid", str(exc)) from None
    creator = svc.creator
    if creator is None or not creator.local or getattr(creator, "settings", None) is None:
        raise ApiError(
            403,
            "create_disabled",
            "this API does not store evaluations (only `contentgen api --local` does): score the pictures "
            "with `contentgen assets evaluate REF --pictures DIR`",
        )
    acting_for(who, goal.owner)
    return goal


async def _upload(request: Request) -> bytes:
    """The body, refused past MAX_UPLOAD_BYTES (413) as it arrives."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise ApiError(413, "too_large", f"the upload is {declared} bytes, over {MAX_UPLOAD_BYTES}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPLOAD_BYTES:
            raise ApiError(413, "too_large", f"the upload is over {MAX_UPLOAD_BYTES} bytes")
    return bytes(body)


def _field_error(field: str, message: str, code: str = "invalid") -> ApiError:
    return ApiError(400, code, f"{field}: {message}", fields=[{"field": field, "message": message}])


def _parts(content_type: str, body: bytes) -> dict[str, list[pictures.Picture]]:
    """The pictures of each field of a multipart/form-data body, checked (pictures.check)."""
    import email.parser
    import email.policy

    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the pictures as multipart/form-data (fields pictures, baseline)",
        )
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ApiError(400, "bad_request", "the body is not multipart/form-data with the boundary it names")
    found: dict[str, list[pictures.Picture]] = {field: [] for field in PICTURE_FIELDS}
    for part in message.iter_parts():
        field = str(part.get_param("name", header="content-disposition") or "")
        if field not in found:
            raise _field_error(
                field or "(unnamed)", "not a field: send pictures (and baseline)", "bad_request"
            )
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            raise _field_error(field, "a part without content", "not_a_picture")
        index = len(found[field])
        given = str(part.get_filename() or "").replace("\\", "/")
        name = PurePosixPath(given).name or f"picture-{index + 1}"
        if index >= pictures.MAX_PICTURES:
            raise _field_error(field, f"more than {pictures.MAX_PICTURES} pictures", "not_a_picture")
        try:
            found[field].append(pictures.check(name, data, label=f"{field}[{index}] ({name})"))
        except pictures.PictureError as exc:
            raise _field_error(field, str(exc), "not_a_picture") from None
    if not found["pictures"]:
        raise _field_error("pictures", "no picture to score: send 1 or more PNG, JPEG or WebP files")
    try:
        pictures.check_all(found["pictures"], found["baseline"])
    except pictures.PictureError as exc:
        raise _field_error(str(exc).partition(":")[0], str(exc), "not_a_picture") from None
    return found


def _score(
    svc: Services, who: Caller, goal: Target, given: dict[str, list[pictures.Picture]]
) -> dict[str, Any]:
    settings = getattr(svc.creator, "settings", None)
    assert settings is not None
    try:
        done = pictures.score_pictures(
            svc.catalog,
            svc.store(),
            goal,
            given["pictures"],
            given["baseline"],
            work_dir=settings.work_dir,
            by="api",
            now=now,
        )
    except pictures.PictureError as exc:  # a picture that cannot be decoded
        field = "baseline" if any(exc.args[0].startswith(p.name) for p in given["baseline"]) else "pictures"
        raise _field_error(field, str(exc), "not_a_picture") from None
    except InvalidInput as exc:  # the dataset's faces cannot be read
        raise ApiError(400, "invalid", str(exc)) from None
    except ContentgenError as exc:
        raise ApiError(502, "store_error", f"{exc.reason}: {exc}; nothing was recorded") from None
    return done.answer(goal)


@router.post(
    "/{ref:path}/versions/{version}/score",
    response_model=PicturesScored,
    response_model_by_alias=True,
    status_code=201,
    summary="Score pictures made elsewhere against a LoRA version's subject (nothing is generated or paid)",
    responses=SCORE_RESPONSES,
    openapi_extra={"requestBody": SCORE_BODY},
)
async def score_pictures(
    ref: RefPath,
    version: Annotated[int, Path(ge=1, description="The version whose subject they are scored against.")],
    svc: ServicesDep,
    who: CallerDep,
    request: Request,
) -> dict[str, Any]:
    """The pictures' faces scored against the version's dataset faces as its evaluations score
    generated ones (verdict, median, percent, reasons, each picture's score, a grid), stored beside
    the version as a new numbered evaluation (`likeness/e{k}/`, nothing written over) and recorded
    in its likeness history with `source: pictures` and each picture's name and SHA-256."""
    goal = await run_in_threadpool(_score_target, svc, who, ref, version)
    given = _parts(request.headers.get("content-type", ""), await _upload(request))
    return await run_in_threadpool(_score, svc, who, goal, given)
