"""Every record: /api/jobs (filtered, sorted, paged) and /api/jobs/{id}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from contentgen.catalog import AnyRecord, JobPage, to_record

from ..deps import CallerDep, IdPath, ListQueryDep, ServicesDep, TypeName, record_scope
from ..errors import ERROR_RESPONSES, not_found
from .common import page_of

router = APIRouter(prefix="/api", tags=["jobs"], responses=ERROR_RESPONSES)


@router.get("/jobs", response_model=JobPage, summary="List records")
def list_jobs(
    svc: ServicesDep,
    query: ListQueryDep,
    type_: Annotated[TypeName | None, Query(alias="type", description="Only this kind of asset.")] = None,
) -> dict[str, Any]:
    """The caller's records (an admin's: everyone's, or ?owner=), newest first by default."""
    return page_of(svc.catalog.find(query.filters(type=type_), query.sort, query.page))


@router.get("/jobs/{id}", response_model=AnyRecord, summary="Get one record")
def get_job(id: IdPath, svc: ServicesDep, who: CallerDep) -> dict[str, Any]:
    doc = svc.catalog.get(id, owner=record_scope(who))
    if doc is None:
        raise not_found(id)
    return to_record(doc).wire()
