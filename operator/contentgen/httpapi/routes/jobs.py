"""Every record: /api/jobs (filtered, sorted, paged) and /api/jobs/{ref}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from contentgen.catalog import AnyRecord, JobPage, to_record

from ..deps import CallerDep, ListQueryDep, RefPath, ServicesDep, TypeQuery, accessed, find_readable
from ..errors import ERROR_RESPONSES
from .common import page_of

router = APIRouter(prefix="/api", tags=["jobs"], responses=ERROR_RESPONSES)


@router.get("/jobs", response_model=JobPage, summary="List records")
def list_jobs(svc: ServicesDep, query: ListQueryDep, type_: TypeQuery = None) -> dict[str, Any]:
    """The caller's records (an admin's: everyone's, or ?owner=), newest first by default."""
    return page_of(svc.catalog.find(query.with_type(type_), query.sort, query.page))


@router.get("/jobs/{ref:ref}", response_model=AnyRecord, summary="Get one record")
def get_job(ref: RefPath, svc: ServicesDep, who: CallerDep, type_: TypeQuery = None) -> dict[str, Any]:
    """By id, a unique prefix of it, or namespace/name (add ?type= when kinds share the name); a
    record another owner shared with the caller too (its `shares` shown to its owner only)."""
    doc = find_readable(svc, who, ref, type_)
    if not who.may_act_for(str(doc.get("owner") or "")):
        doc = {**doc, "shares": []}
    accessed(svc, doc)
    return to_record(doc).wire()
