"""GET /api/notifications/deliveries: the webhook delivery log (docs/notifications.md), each
delivery with its attempts, for the caller's owners' resources only. The operator writes it; the
API only reads (a replay is the Notification's annotation contentgen.io/replay)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from contentgen.catalog.deliveries import Deliveries

from ..deps import CallerDep, ServicesDep
from ..errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/notifications", tags=["notifications"], responses=ERROR_RESPONSES)
NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class Attempt(BaseModel):
    attempt: int = Field(
        description="Its number (0: the delivery was given up, e.g. its Notification deleted)."
    )
    at: str = Field(description="When it was made (RFC 3339).")
    code: int = Field(description="The receiver's HTTP status; 0: no answer (see error).")
    answer: str = Field(description="The start of the receiver's answer (at most 512 bytes).")
    error: str = Field(description="Why there was no answer: refused address, timeout, connection error.")


class Delivery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    notification: dict[str, str] = Field(description="namespace, name and uid of the Notification.")
    event_id: str = Field(alias="eventId", description="The event's id (webhook-id, CloudEvents id).")
    type: str = Field(description="The event's type, e.g. io.contentgen.loratraining.succeeded.")
    owner: str
    resource: dict[str, Any] = Field(description="kind, name and uid of the resource the event is about.")
    status: Literal["pending", "retrying", "delivered", "failed", "disabled"]
    attempt_count: int = Field(alias="attemptCount")
    attempts: list[Attempt] = Field(description="The newest 20 attempts, oldest first.")
    next_attempt_at: str | None = Field(alias="nextAttemptAt", description="None: no attempt is due.")
    created_at: str = Field(alias="createdAt")
    replays: int = 0


class DeliveryList(BaseModel):
    items: list[Delivery]


def _time(seconds: Any) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(float(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shown(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored delivery as the API shows it (no claim, no event body)."""
    return {
        "id": doc["_id"],
        "notification": dict(doc.get("notification") or {}),
        "eventId": doc["eventId"],
        "type": str(doc.get("type") or ""),
        "owner": str(doc.get("owner") or ""),
        "resource": dict(doc.get("resource") or {}),
        "status": doc["status"],
        "attemptCount": int(doc.get("attemptCount") or 0),
        "attempts": [
            {
                "attempt": int(a.get("attempt") or 0),
                "at": _time(a.get("at")),
                "code": int(a.get("code") or 0),
                "answer": str(a.get("answer") or ""),
                "error": str(a.get("error") or ""),
            }
            for a in doc.get("attempts") or []
        ],
        "nextAttemptAt": _time(doc.get("nextAttemptAt")),
        "createdAt": _time(doc.get("createdAt")) or "",
        "replays": int(doc.get("replays") or 0),
    }


@router.get("/deliveries", response_model=DeliveryList, response_model_by_alias=True)
async def deliveries(
    svc: ServicesDep,
    who: CallerDep,
    namespace: Annotated[
        str | None, Query(max_length=63, pattern=NAME, description="The Notification's namespace.")
    ] = None,
    notification: Annotated[
        str | None, Query(max_length=253, pattern=NAME, description="The Notification's name.")
    ] = None,
    event: Annotated[
        str | None, Query(max_length=64, pattern=r"^evt_[0-9a-f]{1,60}$", description="An event id.")
    ] = None,
    status: Annotated[
        Literal["pending", "retrying", "delivered", "failed", "disabled"] | None, Query()
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Webhook deliveries of events about the caller's owners' resources, newest first."""
    owners = None if who.admin else list(who.owners)
    found = await run_in_threadpool(
        Deliveries(svc.catalog).find,
        owners,
        namespace=namespace,
        notification=notification,
        event_id=event,
        status=status,
        limit=limit,
    )
    return {"items": [shown(d) for d in found]}
