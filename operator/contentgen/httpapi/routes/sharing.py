"""Sharing, collections and per-asset usage (issue 38; docs/sharing.md): who may see what is
decided in api/sharing.py, kept in catalog/sharing.py; these routes only check who asks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, ConfigDict, Field

from contentgen.api import now
from contentgen.api.sharing import (
    GRANTEE_PATTERN,
    GROUP_GRANTEE_PATTERN,
    OWNER_GRANTEE_PATTERN,
    BadGrant,
    Grant,
    grant,
    grantee,
    grants_of,
)
from contentgen.catalog import JobPage, ResultPage
from contentgen.catalog.sharing import NotShareable, change_record_shares, kubectl_share, shared_with
from contentgen.catalog.usage import AssetUsage, usage_of

from ..deps import (
    CallerDep,
    RefPath,
    ServicesDep,
    TypeQuery,
    find_readable,
    record_scope,
)
from ..errors import ERROR_RESPONSES, ApiError, Responses, bad_request, documented_error
from ..identity import Caller
from .common import page_of

router = APIRouter(tags=["sharing"], responses=ERROR_RESPONSES)


def _one_shape_per_grantee(schema: dict[str, Any]) -> None:
    """What the server takes, exactly: an owner is given read or use, a group read only."""
    schema["oneOf"] = [
        {
            "title": "To an owner",
            "properties": {"to": {"pattern": OWNER_GRANTEE_PATTERN}, "access": {"enum": ["read", "use"]}},
        },
        {
            "title": "To a group",
            "properties": {"to": {"pattern": GROUP_GRANTEE_PATTERN}, "access": {"const": "read"}},
        },
    ]


class ShareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_shape_per_grantee)

    to: str = Field(
        max_length=210,
        pattern=GRANTEE_PATTERN,
        description="owner:NAME (an owner) or group:NAME (an identity group: read only).",
    )
    access: Literal["read", "use"] = Field(
        description="read: see it and download its files; use: see it and use it in a loraRef (a LoRA), "
        "without its files. A group is given read only (a loraRef is checked against an owner)."
    )


class ShareEntry(BaseModel):
    to: str
    access: Literal["read", "use"]
    by: str = ""
    at: str = ""


class Shares(BaseModel):
    id: str
    owner: str
    shares: list[ShareEntry]
    annotation: str = Field(
        default="",
        description="A cluster resource: the kubectl command that gives it these grants (its annotation).",
    )


GranteePath = Annotated[
    str,
    Path(max_length=210, pattern=GRANTEE_PATTERN, description="The grantee: owner:NAME or group:NAME."),
]

SHARE_RESPONSES: Responses = {
    400: documented_error(
        "A bad field (named): an unknown access, or use given to a group (groups are read only)."
    ),
    403: documented_error(
        "The caller does not act for its owner (code forbidden): only its owner shares it."
    ),
    404: documented_error("No such record visible to the caller (or no such grant, code grant_not_found)."),
    409: documented_error(
        "A cluster resource (code share_in_cluster): its grants are its annotation "
        "contentgen.io/shared-with; the message has the kubectl command. Or an ambiguous reference "
        "(code ambiguous)."
    ),
}


def _owned(svc: Any, who: Caller, ref: str) -> dict[str, Any]:
    doc = find_readable(svc, who, ref)
    if not who.may_act_for(str(doc.get("owner") or "")):
        raise ApiError(
            403,
            "forbidden",
            f"{who.user} does not act for {doc.get('owner')!r}, its owner: only its owner shares it",
        )
    return doc


def _shares(doc: dict[str, Any], grants: tuple[Grant, ...]) -> dict[str, Any]:
    cluster = doc.get("origin") == "operator"
    return {
        "id": doc["_id"],
        "owner": doc.get("owner", ""),
        "shares": [g.wire() for g in grants],
        "annotation": kubectl_share(doc, grants) if cluster else "",
    }


def checked_grant(wanted: ShareRequest, who: Caller) -> Grant:
    try:
        return grant(wanted.to, wanted.access, by=who.user, at=now().isoformat().replace("+00:00", "Z"))
    except BadGrant as exc:
        raise ApiError(400, "invalid", str(exc), fields=[{"field": "to", "message": str(exc)}]) from None


@router.get("/api/shared", response_model=JobPage, summary="Records other owners shared with the caller")
def shared(svc: ServicesDep, who: CallerDep, type_: TypeQuery = None) -> dict[str, Any]:
    """Every record of another owner shared with one of the caller's owners or groups (newest first,
    at most 500), read or use."""
    docs = shared_with(svc.catalog, who.owners, who.groups, type_)
    for doc in docs:
        doc["shares"] = []
    return page_of(ResultPage(total=len(docs), limit=len(docs), offset=0, docs=docs))


@router.get(
    "/api/assets/{ref:path}/shares",
    response_model=Shares,
    summary="Who an asset is shared with",
    responses={403: SHARE_RESPONSES[403]},
)
def shares_of(ref: RefPath, svc: ServicesDep, who: CallerDep) -> dict[str, Any]:
    doc = _owned(svc, who, ref)
    return _shares(doc, grants_of(doc))


@router.put(
    "/api/assets/{ref:path}/shares",
    response_model=Shares,
    summary="Share an asset with an owner or a group",
    responses=SHARE_RESPONSES,
)
def share(
    ref: RefPath, wanted: Annotated[ShareRequest, Body()], svc: ServicesDep, who: CallerDep
) -> dict[str, Any]:
    """Gives (or replaces) the grantee's grant. A laptop's record keeps it in the catalog; a cluster
    resource's grants are its annotation (409 share_in_cluster with the kubectl command), which the
    operator checks for loraRef and copies into the record."""
    doc = _owned(svc, who, ref)
    given = checked_grant(wanted, who)
    try:
        after, _ = change_record_shares(svc.catalog, doc, give=given)
    except NotShareable as exc:
        raise ApiError(409, "share_in_cluster", str(exc)) from None
    except BadGrant as exc:
        raise ApiError(400, "invalid", str(exc), fields=[{"field": "to", "message": str(exc)}]) from None
    return _shares(doc, after)


@router.delete(
    "/api/assets/{ref:path}/shares/{grantee_}",
    response_model=Shares,
    summary="Take a grant back",
    responses=SHARE_RESPONSES,
)
def unshare(ref: RefPath, grantee_: GranteePath, svc: ServicesDep, who: CallerDep) -> dict[str, Any]:
    doc = _owned(svc, who, ref)
    try:
        after, had = change_record_shares(svc.catalog, doc, take=grantee(grantee_))
    except NotShareable as exc:
        raise ApiError(409, "share_in_cluster", str(exc)) from None
    except BadGrant as exc:
        raise bad_request("grantee", str(exc)) from None
    if not had:
        raise ApiError(404, "grant_not_found", f"{doc.get('name')} is not shared with {grantee_}")
    return _shares(doc, after)


@router.get(
    "/api/assets/{ref:path}/usage",
    response_model=AssetUsage,
    summary="An asset's usage: downloads, last access, storage and its cost, where it was used",
)
def usage(ref: RefPath, svc: ServicesDep, who: CallerDep, type_: TypeQuery = None) -> dict[str, Any]:
    """Owner-scoped: what was made with it is listed where the caller may see it; its owner also
    learns how many records of other owners used it (a shared LoRA). The monthly cost is totalBytes
    in GiB times CONTENTGEN_PRICE_PER_GB_MONTH."""
    doc = find_readable(svc, who, ref, type_)
    mine = who.may_act_for(str(doc.get("owner") or ""))
    return usage_of(
        svc.catalog,
        doc,
        record_scope(who),
        svc.settings.price_per_gb_month,
        owner_view=mine,
        owners=who.owners,
        groups=tuple(who.groups),
    ).wire()
