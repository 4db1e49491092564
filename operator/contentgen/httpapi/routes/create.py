"""Making things: create (kind-generic and the seeds' routes), re-run, compare a LoRA's versions,
cancel and delete. In a cluster each creates a custom resource through the Kubernetes API, on a
laptop each is a local run (creators.py). A create names its owner in `spec.owner` (default: the
caller's); it must be one the caller acts for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from contentgen.errors import ContentgenError

from ..creators import Creator, Made, StoreFailed, make, store_failure
from ..deps import CallerDep, RefPath, Services, ServicesDep, find_record, stored_spec
from ..errors import ERROR_RESPONSES, ApiError, FieldError, Responses, documented_error
from ..identity import Caller
from ..manifests import (
    ANNOTATION_CREATED_BY,
    CompareRequest,
    ImagesGenerateRequest,
    Invalid,
    LoraTrainRequest,
    RerunRequest,
    ResourceRequest,
    TranscribeRequest,
    Wanted,
    compare,
    from_images_generate,
    from_lora_train,
    from_request,
    from_transcribe,
    rerun,
)
from .common import creator_answers

router = APIRouter(prefix="/api", tags=["create"])


class CreateErrorBody(BaseModel):
    code: Literal[
        "bad_request",
        "invalid",
        "invalid_combination",
        "unresolved",
        "not_applicable",
        "provider_unavailable",
    ]
    message: str
    fields: list[FieldError] | None = Field(default=None, description="Every problem, one per field.")


class CreateErrorResponse(BaseModel):
    error: CreateErrorBody


CREATE_ERRORS: Responses = {
    400: {
        "model": CreateErrorResponse,
        "description": "Refused, every problem in `error.fields` named as in a manifest (spec.numImages), "
        "with what admission or `contentgen validate` says of it; `error.code` says which kind. What "
        "this document forbids: `bad_request` (the body's shape: a type, a length, a pattern, an "
        "unknown field) or `invalid` (the spec, as admission judges it; in a cluster, admission's own "
        "refusal too). What it cannot state: `invalid_combination` (fields valid one by one but "
        "not together, e.g. dataset.minFrames above dataset.maxFrames), `unresolved` (a loraRef with "
        "no trained version, a version the record does not have), `not_applicable` (an option this "
        "record does not take: a seed for a transcription, comparing the versions of what is not a "
        "LoRA, or of a deleted one), `provider_unavailable` (on a laptop, a provider its local runs "
        "do not have, e.g. cluster).",
    },
    401: ERROR_RESPONSES[401],
    403: documented_error(
        "The caller does not act for that owner, the namespace does not allow the owner "
        "(the cluster's admission policy, naming its contentgen.io/owners annotation), the API may "
        "not create in that namespace, or this API does not create at all (code create_disabled: "
        "CONTENTGEN_API_CREATE=off), or a loraRef names another owner's LoRA not shared with this owner "
        "for use (code lora_not_shared, docs/sharing.md), or an address names another owner's output in "
        "the store that is not shared with this owner for what it needs (code input_not_shared, "
        "docs/security.md)."
    ),
    404: documented_error("No such namespace (or record, for re-runs)."),
    409: documented_error(
        "The name is taken by a resource with another spec; an ambiguous reference; on "
        "a laptop, a `contentgen run` of that resource goes on (its run lock is held)."
    ),
    502: documented_error(
        "The store failed or refused (code store_error: one line with the store's reason, "
        "StoreAccessDenied or StoreUnavailable, and what it said; nothing was created): on a laptop "
        "(`contentgen api --local`) while the run was resolved (its next version, a loraRef, an "
        "imageRef), or while a re-run read an older version's settings from its result.json."
    ),
    503: documented_error("The Kubernetes API or the catalog cannot be reached."),
}


class Created(BaseModel):
    """What a create made, or found made already with the same spec."""

    job_id: str = Field(alias="jobId", description="The resource's uid: the record's id once recorded.")
    kind: str
    name: str
    namespace: str
    owner: str
    created: bool = Field(description="False: it existed already with this spec (an idempotent repeat).")
    record: str = Field(description="The record's URL (it appears once the operator or the run writes it).")
    stream: str = Field(description="Its progress as server-sent events.")
    manifest: dict[str, Any] = Field(description="The resource as created.")


class Comparison(BaseModel):
    tag: str = Field(
        description="The tag every image generation of the comparison carries (?tag= lists them)."
    )
    created: list[Created]


class Done(BaseModel):
    id: str
    message: str = Field(description="What happened.")


def _creator(svc: Services) -> Creator:
    if svc.creator is None:
        raise ApiError(
            403,
            "create_disabled",
            "this API does not create resources (CONTENTGEN_API_CREATE=off, or no Kubernetes API to create "
            "them in): apply a manifest with kubectl, or run `contentgen api --local` on a laptop",
        )
    creator: Creator = svc.creator
    return creator


def _shared_loras(svc: Services, wanted: Wanted) -> None:
    """A loraRef to another owner's LoRA (loraRef.owner): refused here (403 lora_not_shared) unless
    its owner shared it with the resource's owner for use; the same answer whether the LoRA exists
    or not. In a cluster the operator checks it again, from the LoraTraining's annotation."""
    from contentgen.api.sharing import may_use, use_refusal
    from contentgen.catalog.sharing import lora_grants

    entries = list(wanted.spec.get("loras") or [])
    refs = [e["loraRef"] for e in entries if isinstance(e, dict) and isinstance(e.get("loraRef"), dict)]
    for index, ref in enumerate(refs):
        theirs = ref.get("owner")
        if not theirs or theirs == wanted.owner:
            continue
        where = str(ref.get("namespace") or wanted.namespace)
        grants = lora_grants(svc.catalog, where, str(ref.get("name")), str(theirs))
        if grants is None or not may_use(grants, str(theirs), wanted.owner):
            message = use_refusal(
                str(ref.get("name")), str(theirs), wanted.owner, "its owner's share (docs/sharing.md)"
            )
            field = f"spec.loras[{index}].loraRef"
            raise ApiError(
                403, "lora_not_shared", f"{field}: {message}", fields=[{"field": field, "message": message}]
            )


def _shared_inputs(svc: Services, wanted: Wanted) -> None:
    """An address of another owner's output in the store (an s3:// key, the store's https address,
    a presigned link): refused here (403 input_not_shared) unless that owner's record shares it
    with the resource's owner for the access it needs (store/access.py), in the same words as
    admission, the operator and the pipeline, whether it exists or not."""
    from contentgen.api import KINDS
    from contentgen.api.inputs import inputs
    from contentgen.api.sharing import grants_of
    from contentgen.store.access import crossings, first_refusal

    kind = KINDS.get(wanted.kind)
    if kind is None:
        return

    def grants(uid: str) -> Any:
        doc = svc.catalog.get(uid)
        return grants_of(doc) if doc is not None else ()

    found = inputs(kind.spec, wanted.spec)
    if not found:
        return
    refused = first_refusal(crossings(found, wanted.owner, svc.store().place(), grants))
    if refused is not None:
        field = refused.input.field
        message = refused.refusal.removeprefix(f"{field}: ")
        raise ApiError(
            403, "input_not_shared", refused.refusal, fields=[{"field": field, "message": message}]
        )


def create_for(svc: Services, who: Caller, wanted: Wanted) -> Made:
    """Create `wanted` for the caller (who must act for its owner); the API's errors otherwise."""
    if not who.may_act_for(wanted.owner):
        acts = ", ".join(who.owners) or "no owner"
        if who.via == "local":
            message = f"this API runs for its one local owner {who.owner} (contentgen api --owner NAME)"
            raise ApiError(
                403,
                "forbidden",
                f"spec.owner: {message}, not for {wanted.owner!r}",
                fields=[{"field": "spec.owner", "message": message}],
            )
        raise ApiError(
            403,
            "forbidden",
            f"spec.owner: {who.user} acts for {acts}, not for {wanted.owner!r}",
            fields=[{"field": "spec.owner", "message": f"not an owner {who.user} acts for ({acts})"}],
        )
    _shared_loras(svc, wanted)
    _shared_inputs(svc, wanted)
    wanted.annotations.setdefault(ANNOTATION_CREATED_BY, who.user)
    try:
        with creator_answers(gone=(404, "not_found")):
            return make(_creator(svc), wanted)
    except Invalid as exc:
        fields = [p.wire() for p in exc.problems]
        raise ApiError(400, exc.code, str(exc), fields=fields) from None
    except StoreFailed as exc:
        raise ApiError(502, "store_error", str(exc)) from None


def _built(svc: Services, build: Callable[..., Wanted], body: Any, owner: str) -> Wanted:
    """What a request asks for; a request the builder refuses is a 400 naming the field. A laptop's
    runs (creates local) take a local file as a source."""
    local = svc.creator is not None and svc.creator.local
    try:
        return build(body, owner, _namespace(svc), local=local)
    except Invalid as exc:
        raise ApiError(400, exc.code, str(exc), fields=[p.wire() for p in exc.problems]) from None


def _answer(made: Made, response: Response) -> dict[str, Any]:
    response.status_code = 201 if made.created else 200
    return made.wire()


def _namespace(svc: Services) -> str:
    return svc.settings.api_default_namespace


CREATED: Responses = {201: {"model": Created, "description": "Created."}}
# The creates: made (201), or found made already with the same spec (200), or refused.
CREATE_RESPONSES: Responses = {
    **CREATED,
    200: {"model": Created, "description": "It existed with this spec."},
    **CREATE_ERRORS,
}


@router.post(
    "/resources",
    response_model=Created,
    status_code=201,
    summary="Create a LoraTraining, ImageGeneration, VideoGeneration, Transcription or LoraEvaluation",
    responses=CREATE_RESPONSES,
)
async def create_resource(
    svc: ServicesDep, who: CallerDep, response: Response, body: Annotated[ResourceRequest, Body()]
) -> dict[str, Any]:
    """The body is a manifest (apiVersion optional). Validated as `contentgen validate` does, then
    created: in a cluster through the Kubernetes API (admission has the last word), on a laptop as
    a local run. Idempotent by `metadata.name`."""
    wanted = _built(svc, from_request, body, who.owner)
    return _answer(await run_in_threadpool(create_for, svc, who, wanted), response)


@router.post(
    "/lora/train",
    response_model=Created,
    status_code=201,
    summary="Train a LoRA (the predecessor's request shape)",
    responses=CREATE_RESPONSES,
)
async def lora_train(
    svc: ServicesDep, who: CallerDep, response: Response, body: LoraTrainRequest
) -> dict[str, Any]:
    """{userId, videoUrl, loraName, trigger, steps, learning_rate, metadata: {tags, description}}
    as a LoraTraining: owner, source.url, metadata.name, triggerWord, training.steps and
    training.learningRate, tags, description."""
    wanted = _built(svc, from_lora_train, body, who.owner)
    return _answer(await run_in_threadpool(create_for, svc, who, wanted), response)


@router.post(
    "/images/generate",
    response_model=Created,
    status_code=201,
    summary="Generate images (the predecessor's request shape)",
    responses=CREATE_RESPONSES,
)
async def images_generate(
    svc: ServicesDep, who: CallerDep, response: Response, body: ImagesGenerateRequest
) -> dict[str, Any]:
    """{model, inputs: {prompt, negative_prompt, num_images, image_size, seed, loras: [{path,
    scale}]}, userId} as an ImageGeneration (loras[].path: a LoRA's latestModelUri; with loras the
    model is flux-lora)."""
    wanted = _built(svc, from_images_generate, body, who.owner)
    return _answer(await run_in_threadpool(create_for, svc, who, wanted), response)


@router.post(
    "/transcribe",
    response_model=Created,
    status_code=201,
    summary="Transcribe (the predecessor's request shape)",
    responses=CREATE_RESPONSES,
)
async def transcribe(
    svc: ServicesDep, who: CallerDep, response: Response, body: TranscribeRequest
) -> dict[str, Any]:
    """{audioUrl (or url, videoUrl), language_code, speaker_labels, userId} as a Transcription."""
    wanted = _built(svc, from_transcribe, body, who.owner)
    return _answer(await run_in_threadpool(create_for, svc, who, wanted), response)


@router.post(
    "/jobs/{ref:path}/rerun",
    response_model=Created,
    status_code=201,
    summary="Run a version's settings again, as a new resource",
    responses={
        **CREATED,
        200: {"model": Created, "description": "A resource of that `name` exists with these settings."},
        **CREATE_ERRORS,
        404: documented_error(
            "No such record visible to the caller, no such usable version, or no such namespace."
        ),
    },
)
async def rerun_job(
    ref: RefPath, svc: ServicesDep, who: CallerDep, response: Response, body: RerunRequest
) -> dict[str, Any]:
    """The spec snapshot of `version` (default: the latest usable one; without versions, the
    record's spec), optionally with `newSeed` or `seed` (images), as a new resource named after the
    record (or `name`). The new resource's annotation contentgen.io/rerun-of names the record and
    version."""
    doc = await run_in_threadpool(find_record, svc, who, ref)
    try:  # in a thread: an older version's settings are read from the store
        wanted = await run_in_threadpool(lambda: rerun(doc, body, stored=stored_spec(svc, doc)))
    except ValueError as exc:
        if isinstance(exc, Invalid):
            raise ApiError(400, exc.code, str(exc), fields=[p.wire() for p in exc.problems]) from None
        raise ApiError(404, "version_not_found", str(exc)) from None
    except (ContentgenError, OSError) as exc:  # the store: unusable, refusing, away
        raise ApiError(502, "store_error", f"{store_failure(exc)}; nothing was created") from None
    return _answer(await run_in_threadpool(create_for, svc, who, wanted), response)


@router.post(
    "/jobs/{ref:path}/compare",
    response_model=Comparison,
    status_code=201,
    summary="Compare a LoRA's versions: the same prompt and seed with each",
    responses=CREATE_ERRORS,
)
async def compare_versions(
    ref: RefPath, svc: ServicesDep, who: CallerDep, body: CompareRequest
) -> dict[str, Any]:
    """One ImageGeneration per version (loraRef pinned to it, model flux-lora), all tagged with
    the comparison's `tag`; list them with /api/assets/images?tag=TAG."""
    doc = await run_in_threadpool(find_record, svc, who, ref)
    try:
        tag, wanted = compare(doc, body)
    except Invalid as exc:
        raise ApiError(400, exc.code, str(exc), fields=[p.wire() for p in exc.problems]) from None
    made = [(await run_in_threadpool(create_for, svc, who, w)).wire() for w in wanted]
    return {"tag": tag, "created": made}


def _act(svc: Services, who: Caller, ref: str, action: str) -> dict[str, Any]:
    doc = find_record(svc, who, ref)
    creator = _creator(svc)
    with creator_answers(gone=(404 if action == "delete" else 409, "gone")):
        message = creator.cancel(doc, who.user) if action == "cancel" else creator.delete(doc, who.user)
    return {"id": doc["_id"], "message": message}


ACT_ERRORS: Responses = {
    **{status: said for status, said in CREATE_ERRORS.items() if status != 502},
    400: ERROR_RESPONSES[400],
}


@router.post(
    "/jobs/{ref:path}/cancel",
    response_model=Done,
    status_code=202,
    summary="Stop the latest run",
    responses={
        **ACT_ERRORS,
        404: documented_error("No such record visible to the caller."),
        409: documented_error("Nothing to cancel, it cannot be stopped now, or an ambiguous reference."),
    },
)
async def cancel_job(ref: RefPath, svc: ServicesDep, who: CallerDep) -> dict[str, Any]:
    """In a cluster: deletes the resource (the operator stops its Job and cancels the provider's
    work where it can; earlier versions stay by its deletionPolicy). On a laptop: a queued run is
    dropped; a running one stops at its next stage, unless a provider request is under way (it is
    never paid for twice or thrown away)."""
    return await run_in_threadpool(_act, svc, who, ref, "cancel")


@router.delete(
    "/jobs/{ref:ref}",
    response_model=Done,
    status_code=202,
    summary="Delete the resource",
    responses={
        **ACT_ERRORS,
        404: documented_error("No such record, or its resource is gone already."),
        409: documented_error("A local run of it is under way (cancel it first), or an ambiguous reference."),
    },
)
async def delete_job(ref: RefPath, svc: ServicesDep, who: CallerDep) -> dict[str, Any]:
    """Deletes the resource; its deletionPolicy decides: Retain keeps the outputs and the record
    (marked deleted), Delete removes them. To remove versions only, DELETE
    /api/assets/REF/versions/N."""
    return await run_in_threadpool(_act, svc, who, ref, "delete")
