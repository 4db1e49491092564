"""Collections over HTTP (issue 38; docs/sharing.md#collections): a collection's owner makes,
fills, shares and deletes it; whoever it is shared with sees it, searches it and downloads its
archive (a zip of every member's latest version, streamed from the store)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from contentgen.api import now
from contentgen.api.sharing import COLLECTION_NAME_MAX, COLLECTION_NAME_PATTERN, BadGrant, grantee
from contentgen.catalog import AnyRecord, to_record
from contentgen.catalog.collections import (
    MAX_MEMBERS,
    Collection,
    CollectionError,
    Collections,
    archive_plan,
    downloadable,
    matches_words,
    visible_members,
    zipped,
)
from contentgen.catalog.queries import search_words

from ..deps import REF_PATTERN, SEARCH_PATTERN, CallerDep, ServicesDep, find_readable, matches
from ..errors import ERROR_RESPONSES, ApiError, Responses, bad_request, documented_error
from ..identity import Caller
from .sharing import SHARE_RESPONSES, GranteePath, ShareEntry, ShareRequest, checked_grant

router = APIRouter(tags=["sharing"], responses=ERROR_RESPONSES)


CollectionPath = Annotated[
    str,
    Path(
        max_length=200,
        pattern=COLLECTION_NAME_PATTERN,
        description="The collection: its id, or the name of one of the caller's own.",
    ),
]


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=COLLECTION_NAME_MAX,
        pattern=COLLECTION_NAME_PATTERN,
        description="Letters, digits, '.', '_' and '-', starting with a letter or digit "
        "(e.g. waves-and-lighthouses): how the collection is found, by the API's paths too.",
    )
    description: str = Field(default="", max_length=2000)
    owner: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$",
        description="Whose collection: one of the caller's owners (default: its first).",
    )


class MemberRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(
        min_length=1,
        max_length=400,
        pattern=REF_PATTERN,
        description="A record the caller may see: its id, a unique prefix of it (4+ characters), "
        "namespace/name, namespace/name@id-prefix, or a bare name (letters, digits, '.', '_', '-'; "
        "the same references as /api/assets/{ref}).",
    )


class CollectionMember(BaseModel):
    id: str
    added_at: str = Field(default="", alias="addedAt")
    by: str = ""

    model_config = ConfigDict(populate_by_name=True)


class CollectionInfo(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    name: str
    owner: str
    description: str = ""
    access: Literal["owner", "read", "use"] = Field(description="What the caller may do with it.")
    member_count: int = Field(alias="memberCount")
    shares: list[ShareEntry] = Field(default=[], description="Its grants (shown to its owner only).")
    created_at: str = Field(default="", alias="createdAt")
    updated_at: str = Field(default="", alias="updatedAt")


class CollectionList(BaseModel):
    items: list[CollectionInfo]


class CollectionDetail(CollectionInfo):
    items: list[AnyRecord] = Field(
        description="Its members the caller may see, in the order they were added."
    )
    total: int


def _info(found: Collection, access: str, shown: int | None = None) -> dict[str, Any]:
    return {
        "id": found.id,
        "name": found.name,
        "owner": found.owner,
        "description": found.description,
        "access": access,
        "memberCount": shown if shown is not None else len(found.members),
        "shares": found.shares_shown(access),
        "createdAt": found.created_at,
        "updatedAt": found.updated_at,
    }


def _collection(svc: Any, who: Caller, ref: str, *, owner: bool = False) -> tuple[Collection, str]:
    found = Collections(svc.catalog).find(ref, who.owners, who.groups, admin=who.admin)
    if found is None:
        raise ApiError(404, "not_found", f"no collection {ref!r}")
    collection, access = found
    if owner and access != "owner":
        raise ApiError(
            403,
            "forbidden",
            f"collection {collection.name!r} is {collection.owner}'s: only its owner changes it",
        )
    return found


def _visible_members(svc: Any, who: Caller, collection: Collection) -> list[dict[str, Any]]:
    members = Collections(svc.catalog).members(collection)
    return members if who.admin else visible_members(collection, members, who.owners, who.groups)


_COLLECTION_RESPONSES: Responses = {
    403: documented_error("Only the collection's owner changes it (code forbidden)."),
    404: documented_error("No such collection (or member) visible to the caller."),
}


@router.get(
    "/api/collections",
    response_model=CollectionList,
    summary="The caller's collections and those shared with it",
)
def collections(svc: ServicesDep, who: CallerDep) -> dict[str, Any]:
    found = Collections(svc.catalog).visible(who.owners, who.groups, admin=who.admin)
    return {"items": [_info(c, "owner" if who.admin else c.access(who.owners, who.groups)) for c in found]}


@router.post(
    "/api/collections",
    response_model=CollectionInfo,
    status_code=201,
    summary="Make a collection",
    responses={
        201: {"description": "Made."},
        403: documented_error("`owner` is not one the caller acts for (code forbidden)."),
        409: documented_error("The owner has a collection of that name already (code exists)."),
    },
)
def create_collection(
    wanted: Annotated[CollectionCreate, Body()], svc: ServicesDep, who: CallerDep
) -> dict[str, Any]:
    owner = wanted.owner or (who.owners[0] if who.owners else "")
    if not owner or not who.may_act_for(owner):
        raise ApiError(403, "forbidden", f"{who.user} does not act for owner {owner!r}")
    try:
        made = Collections(svc.catalog).create(owner, wanted.name, wanted.description, who.user, now())
    except CollectionError as exc:
        raise ApiError(409, "exists", str(exc)) from None
    return _info(made, "owner")


@router.get(
    "/api/collections/{cid}",
    response_model=CollectionDetail,
    summary="A collection and its members",
    responses={404: _COLLECTION_RESPONSES[404]},
)
def get_collection(cid: CollectionPath, svc: ServicesDep, who: CallerDep) -> dict[str, Any]:
    found, access = _collection(svc, who, cid)
    members = _visible_members(svc, who, found)
    items = [
        to_record({**m, "shares": []} if not who.may_act_for(str(m.get("owner"))) else m).wire()
        for m in members
    ]
    return {**_info(found, access, len(members)), "items": items, "total": len(items)}


@router.delete(
    "/api/collections/{cid}",
    status_code=204,
    response_class=Response,
    summary="Delete a collection (its members stay)",
    responses={204: {"description": "Deleted."}, **_COLLECTION_RESPONSES},
)
def delete_collection(cid: CollectionPath, svc: ServicesDep, who: CallerDep) -> Response:
    found, _ = _collection(svc, who, cid, owner=True)
    Collections(svc.catalog).delete(found.id)
    return Response(status_code=204)


@router.post(
    "/api/collections/{cid}/members",
    response_model=CollectionInfo,
    summary="Add an asset of any kind",
    responses={
        **_COLLECTION_RESPONSES,
        409: documented_error(
            f"An ambiguous reference (code ambiguous), or a collection full ({MAX_MEMBERS}; code full)."
        ),
    },
)
def add_member(
    cid: CollectionPath, wanted: Annotated[MemberRequest, Body()], svc: ServicesDep, who: CallerDep
) -> dict[str, Any]:
    found, _ = _collection(svc, who, cid, owner=True)
    record = find_readable(svc, who, wanted.ref)  # its pattern checked as the document states it
    try:
        after = Collections(svc.catalog).add(found.id, str(record["_id"]), who.user, now())
    except CollectionError as exc:
        raise ApiError(409, "full", str(exc)) from None
    return _info(after, "owner")


@router.delete(
    "/api/collections/{cid}/members/{member}",
    response_model=CollectionInfo,
    summary="Take an asset out (the asset stays)",
    responses=_COLLECTION_RESPONSES,
)
def remove_member(
    cid: CollectionPath,
    member: Annotated[
        str, Path(max_length=200, pattern=COLLECTION_NAME_PATTERN, description="The member's id.")
    ],
    svc: ServicesDep,
    who: CallerDep,
) -> dict[str, Any]:
    found, _ = _collection(svc, who, cid, owner=True)
    after, removed = Collections(svc.catalog).remove(found.id, member, now())
    if not removed:
        raise ApiError(404, "not_found", f"{member} is not in collection {found.name!r}")
    return _info(after, "owner")


@router.put(
    "/api/collections/{cid}/shares",
    response_model=CollectionInfo,
    summary="Share a collection with an owner or a group",
    responses={400: SHARE_RESPONSES[400], **_COLLECTION_RESPONSES},
)
def share_collection(
    cid: CollectionPath, wanted: Annotated[ShareRequest, Body()], svc: ServicesDep, who: CallerDep
) -> dict[str, Any]:
    """Its grantees see it and, through it, the members its owner owns (read: their files too, and
    the archive)."""
    found, _ = _collection(svc, who, cid, owner=True)
    given = checked_grant(wanted, who)
    try:
        after, _ = Collections(svc.catalog).share(found.id, now(), give=given)
    except (BadGrant, CollectionError) as exc:
        raise ApiError(400, "invalid", str(exc), fields=[{"field": "to", "message": str(exc)}]) from None
    return _info(after, "owner")


@router.delete(
    "/api/collections/{cid}/shares/{grantee_}",
    response_model=CollectionInfo,
    summary="Take a collection's grant back",
    responses={400: SHARE_RESPONSES[400], **_COLLECTION_RESPONSES},
)
def unshare_collection(
    cid: CollectionPath, grantee_: GranteePath, svc: ServicesDep, who: CallerDep
) -> dict[str, Any]:
    found, _ = _collection(svc, who, cid, owner=True)
    after, had = Collections(svc.catalog).share(found.id, now(), take=grantee(grantee_))
    if not had:
        raise ApiError(404, "grant_not_found", f"collection {found.name!r} is not shared with {grantee_}")
    return _info(after, "owner")


@router.get(
    "/api/collections/{cid}/search",
    response_model=CollectionDetail,
    summary="Search within a collection",
    responses={404: _COLLECTION_RESPONSES[404]},
)
def search_collection(
    cid: CollectionPath,
    svc: ServicesDep,
    who: CallerDep,
    q: Annotated[
        str,
        Query(
            max_length=500,
            description="Words that must all occur (any case) in a member's name, tags, description, prompt, "
            "trigger word or transcript.",
            json_schema_extra={"pattern": SEARCH_PATTERN},
        ),
    ],
) -> dict[str, Any]:
    found, access = _collection(svc, who, cid)
    try:
        words = [w.lower() for w in search_words(q)]
        if not matches(SEARCH_PATTERN, q):
            raise ValueError("control characters are not searched for: give 1 to 20 words")
    except ValueError as exc:
        raise bad_request("q", str(exc)) from None
    members = _visible_members(svc, who, found)
    hits = [m for m in members if matches_words(m, words)]
    items = [to_record({**m, "shares": []}).wire() for m in hits]
    return {**_info(found, access, len(members)), "items": items, "total": len(items)}


_UNSAFE = re.compile(r"[^0-9A-Za-z._-]+")


@router.get(
    "/api/collections/{cid}/archive",
    summary="Every member's latest version as one zip, streamed from the store",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "application/zip: a folder per member (NAMESPACE_NAME-vN/) with its latest "
            "version's files, each under its path in the version (likeness/e1/likeness.json), and "
            "manifest.json listing each member and file and the version's current likeness report.",
            "content": {"application/zip": {}},
        },
        403: documented_error(
            "The collection is shared with the caller for use only (code use_only): no files."
        ),
        404: _COLLECTION_RESPONSES[404],
    },
)
def archive(cid: CollectionPath, svc: ServicesDep, who: CallerDep) -> StreamingResponse:
    found, access = _collection(svc, who, cid)
    if access == "use":
        raise ApiError(
            403, "use_only", f"collection {found.name!r} is shared with you for use only: no files"
        )
    members = [
        m
        for m in _visible_members(svc, who, found)
        if who.admin or downloadable(found, m, who.owners, who.groups)
    ]
    store = svc.store()
    name = _UNSAFE.sub("_", found.name or "collection")
    return StreamingResponse(
        zipped(store, *archive_plan(store, found, members)),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{name}.zip"',
            "X-Content-Type-Options": "nosniff",
        },
    )
