"""/api/stream/job/{id}: a job's phase and progress as server-sent events, until it ends.

The catalog is polled (every CONTENTGEN_STREAM_POLL_SECONDS); an event goes out when status,
progress, stage or message change, and a comment line keeps idle connections open through proxies:

    event: status
    data: {"id": "…", "status": "Running", "progress": 40, "stage": "train", "message": "…", …}

    event: end
    data: {"id": "…", "status": "Succeeded"}

The stream ends after Succeeded, Failed or Deleted (or `event: error` if the record disappears or
the catalog stops answering). A browser's EventSource can follow it: the web UI's session cookie
authenticates it like the Authorization header.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from contentgen.catalog import TERMINAL_STATUSES, Catalog, CatalogUnavailable, to_record

from ..deps import CallerDep, RefPath, ServicesDep, find_record, record_scope
from ..errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/stream", tags=["stream"], responses=ERROR_RESPONSES)


def event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def status_of(doc: dict[str, Any]) -> dict[str, Any]:
    record = to_record(doc).wire()
    state = {k: record[k] for k in ("id", "status", "progress", "stage", "message", "updatedAt")}
    if record.get("error"):
        state["error"] = record["error"]
    return state


async def job_events(
    read: Callable[[], Awaitable[dict[str, Any] | None]],
    first: dict[str, Any],
    sleep: Callable[[float], Awaitable[None]],
    poll_seconds: float,
    heartbeat_every: int,
) -> AsyncIterator[str]:
    """Events from `first` on, reading the record again with `read` after each `sleep`."""
    doc: dict[str, Any] | None = first
    last: dict[str, Any] | None = None
    idle = 0
    while doc is not None:
        state = status_of(doc)
        # updatedAt alone changing (a write without news) is no event.
        if last is None or {**state, "updatedAt": None} != {**last, "updatedAt": None}:
            yield event("status", state)
            last, idle = state, 0
        else:
            idle += 1
            if idle >= heartbeat_every:
                yield ": keep-alive\n\n"
                idle = 0
        if state["status"] in TERMINAL_STATUSES:
            yield event("end", {"id": state["id"], "status": state["status"]})
            return
        await sleep(poll_seconds)
        try:
            doc = await read()
        except CatalogUnavailable as exc:  # the browser's EventSource reconnects by itself
            yield event("error", {"code": "catalog_unavailable", "message": str(exc)})
            return
    yield event("error", {"code": "not_found", "message": "the record is gone"})


@router.get(
    "/job/{ref:path}",
    summary="Follow a job's progress (server-sent events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "status events, then end."}},
)
async def stream_job(ref: RefPath, svc: ServicesDep, who: CallerDep) -> StreamingResponse:
    """Works from a browser's EventSource too: the web UI's session cookie authenticates it."""
    owner = record_scope(who)
    catalog: Catalog = svc.catalog
    first = await run_in_threadpool(find_record, svc, who, ref)
    uid = first["_id"]

    async def read() -> dict[str, Any] | None:
        return await run_in_threadpool(catalog.get, uid, owner)

    settings = svc.settings
    heartbeat_every = max(1, math.ceil(settings.stream_heartbeat_seconds / settings.stream_poll_seconds))
    return StreamingResponse(
        job_events(read, first, svc.sleep, settings.stream_poll_seconds, heartbeat_every),
        media_type="text/event-stream",
        # No caching, and no buffering in nginx-style proxies, or events arrive in bursts.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
