"""Live progress as server-sent events, read from the catalog (polled every
CONTENTGEN_STREAM_POLL_SECONDS; the operator writes each resource's state at most about once a
second, so every state it writes is seen). A comment line keeps idle connections open through
proxies. A browser's EventSource can follow both: the web UI's session cookie authenticates it.

/api/stream/jobs: every record of the caller (of ?type=, an admin's ?owner=) that is created or
changes, one stream for a whole list:

    event: ready
    data: {"since": "2025-…Z"}             (then, for each change)
    event: job
    data: {"id": …, "name": …, "status": "Succeeded", "latestVersion": 2, "versionCount": 2,
           "latestRun": {"version": 3, "phase": "Running", "progress": 42, "stage": "dataset", …}, …}

/api/stream/job/{ref}: one record, until its latest run ends:

    event: status
    data: {"id": …, "status": …, "latestRun": {…}, …}
    event: end
    data: {"id": …, "status": "Succeeded", "phase": "Failed"}

It ends when the latest run has ended (Succeeded, Failed, Cancelled, Interrupted) or the record is
Deleted (or with `event: error` if the record disappears or the catalog stops answering).
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from contentgen.api import format_time
from contentgen.catalog import DELETED, TERMINAL_RUN_PHASES, Catalog, CatalogUnavailable, Filters, to_record

from ..deps import (
    CallerDep,
    OwnerQuery,
    RefPath,
    Services,
    ServicesDep,
    TypeQuery,
    find_record,
    owner_scope,
    record_scope,
)
from ..errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/stream", tags=["stream"], responses=ERROR_RESPONSES)
# How far back each look at the catalog reaches behind the newest write it saw: a write stamped a
# little earlier than one already seen (another writer's clock, a slow write) is still caught.
LOOKBACK = timedelta(seconds=5)
BATCH = 500  # changes read per look
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no buffering in nginx-style proxies
SUMMARY = (
    "id", "type", "kind", "name", "namespace", "owner", "tags", "status", "latestVersion", "latestRun",
    "deleted", "createdAt", "updatedAt", "placeholder",
)  # fmt: skip


def event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def status_of(doc: dict[str, Any]) -> dict[str, Any]:
    """What a stream says of a record: its status, versions and latest run."""
    record = to_record(doc).wire()
    state = {k: record.get(k) for k in SUMMARY}
    state["versionCount"] = len(record.get("versions") or [])
    return state


def _news(state: dict[str, Any]) -> dict[str, Any]:
    """A state without its write time: a write that changed nothing shown is no event."""
    return {k: v for k, v in state.items() if k != "updatedAt"}


def _ended(state: dict[str, Any]) -> bool:
    return state["status"] == DELETED or state["latestRun"]["phase"] in TERMINAL_RUN_PHASES


async def job_events(
    read: Callable[[], Awaitable[dict[str, Any] | None]],
    first: dict[str, Any],
    sleep: Callable[[float], Awaitable[None]],
    poll_seconds: float,
    heartbeat_every: int,
) -> AsyncIterator[str]:
    """Events of one record from `first` on, reading it again with `read` after each `sleep`."""
    doc: dict[str, Any] | None = first
    last: dict[str, Any] | None = None
    idle = 0
    while doc is not None:
        state = status_of(doc)
        if last is None or _news(state) != _news(last):
            yield event("status", state)
            last, idle = state, 0
        else:
            idle += 1
            if idle >= heartbeat_every:
                yield ": keep-alive\n\n"
                idle = 0
        if _ended(state):
            yield event(
                "end", {"id": state["id"], "status": state["status"], "phase": state["latestRun"]["phase"]}
            )
            return
        await sleep(poll_seconds)
        try:
            doc = await read()
        except CatalogUnavailable as exc:  # the browser's EventSource reconnects by itself
            yield _unavailable(exc)
            return
    yield event("error", {"code": "not_found", "message": "the record is gone"})


async def list_events(
    read: Callable[[datetime | None], Awaitable[list[dict[str, Any]]]],
    newest: datetime | None,
    sleep: Callable[[float], Awaitable[None]],
    poll_seconds: float,
    heartbeat_every: int,
) -> AsyncIterator[str]:
    """A `job` event for every record that is written after the stream starts with something new
    to show. `read(since)` gives the records written at or after `since`, oldest write first;
    `newest` is the newest write when the stream starts."""
    seen = _Seen(newest)
    try:
        seen.remember(await read(seen.since()) if newest is not None else [])
    except CatalogUnavailable as exc:
        yield _unavailable(exc)
        return
    yield event("ready", {"since": format_time(newest) if newest is not None else None})
    idle = 0
    while True:
        await sleep(poll_seconds)
        try:
            docs = await read(seen.since())
        except CatalogUnavailable as exc:
            yield _unavailable(exc)
            return
        news = seen.news(docs)
        for state in news:
            yield event("job", state)
        idle = 0 if news else idle + 1
        if idle >= heartbeat_every:
            yield ": keep-alive\n\n"
            idle = 0


class _Seen:
    """What a list stream has shown of each record, and the newest write it has seen."""

    def __init__(self, newest: datetime | None) -> None:
        self.cursor = newest
        # id -> (its write, what it showed)
        self.shown: dict[str, tuple[datetime | None, dict[str, Any]]] = {}

    def since(self) -> datetime | None:
        """Where the next look starts: LOOKBACK behind the newest write seen."""
        return self.cursor - LOOKBACK if self.cursor is not None else None

    def remember(self, docs: list[dict[str, Any]]) -> None:
        """What the records showed when the stream started (not news)."""
        for doc in docs:
            self.shown[doc["_id"]] = (doc.get("updatedAt"), _news(status_of(doc)))

    def news(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The states of the records in `docs` with something new to show, in their order."""
        news = []
        for doc in docs:
            state = status_of(doc)
            before = self.shown.get(doc["_id"])
            if before is None or before[1] != _news(state):
                news.append(state)
            self.shown[doc["_id"]] = (doc.get("updatedAt"), _news(state))
            written = doc.get("updatedAt")
            if written is not None and (self.cursor is None or written > self.cursor):
                self.cursor = written
        if self.cursor is not None:  # what is behind the look-back can no longer come back
            horizon = self.cursor - 2 * LOOKBACK
            self.shown = {k: v for k, v in self.shown.items() if v[0] is None or v[0] >= horizon}
        return news


def _unavailable(exc: CatalogUnavailable) -> str:
    return event("error", {"code": "catalog_unavailable", "message": str(exc)})


def _heartbeat_every(svc: Services) -> int:
    settings = svc.settings
    return max(1, math.ceil(settings.stream_heartbeat_seconds / settings.stream_poll_seconds))


@router.get(
    "/jobs",
    summary="Follow every job of a list (server-sent events)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "ready, then a job event per change."}
    },
)
async def stream_jobs(
    svc: ServicesDep,
    who: CallerDep,
    owner: OwnerQuery = None,
    type_: TypeQuery = None,
    limit: Annotated[int, Query(ge=1, le=BATCH, description="Changes read per look.")] = BATCH,
) -> StreamingResponse:
    """One stream for a whole list (the web UI's Jobs page): a `job` event whenever one of the
    caller's records is created or shows something new (status, versions, the latest run's phase,
    progress and stage), deleted records included. Apply your own filters to what arrives."""
    filters = Filters(owner=owner_scope(who, owner), type=type_)
    catalog: Catalog = svc.catalog

    async def read(since: datetime | None) -> list[dict[str, Any]]:
        return await run_in_threadpool(catalog.changed_since, filters, since, limit)

    newest = await run_in_threadpool(catalog.last_change, filters)
    return StreamingResponse(
        list_events(read, newest, svc.sleep, svc.settings.stream_poll_seconds, _heartbeat_every(svc)),
        media_type="text/event-stream",
        headers=HEADERS,
    )


@router.get(
    "/job/{ref:ref}",
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

    return StreamingResponse(
        job_events(read, first, svc.sleep, svc.settings.stream_poll_seconds, _heartbeat_every(svc)),
        media_type="text/event-stream",
        headers=HEADERS,
    )
