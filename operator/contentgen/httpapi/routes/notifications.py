"""GET /api/notifications/deliveries: the webhook delivery log (docs/notifications.md), each
delivery with its attempts, for the caller's owners' resources only. The operator writes it (a
laptop's `contentgen run`, there); the API reads it. POST /api/notifications/deliveries/ID/replay
sends a delivery's event again: in a cluster the API sets the Notification's annotation
contentgen.io/replay to the event's id (a new value, `EVENT_ID#n`, where it names that event
already) through the Kubernetes API under its own ServiceAccount, as a promotion annotates a
LoraTraining (a merge patch on the resourceVersion read, 202), and the operator's notifier acts on
it; on a laptop (`contentgen api --local`) the delivery waits again in the local catalog, which the
next `contentgen run` (or `contentgen notifications send`) sends (202)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from contentgen.api.notification import ANNOTATION_REPLAY, PLURAL
from contentgen.api.reading import Count, Reading, Text
from contentgen.api.validation import said
from contentgen.catalog.deliveries import Deliveries
from contentgen.catalog.laptop_notifications import KeptNotifications

from ..creators import PATCH_ATTEMPTS, KubeCreator
from ..deps import CallerDep, Services, ServicesDep
from ..errors import ERROR_RESPONSES, ApiError, Responses, documented_error
from ..identity import Caller
from ..kube import Kube, KubeError, KubeUnavailable

router = APIRouter(prefix="/api/notifications", tags=["notifications"], responses=ERROR_RESPONSES)
NAME = said(
    r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    "a Kubernetes name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
)
EVENT_ID = said(r"^evt_[0-9a-f]{1,60}$", "an event's id: evt_ and up to 60 hexadecimal digits")


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


class _StoredAttempt(Reading):
    attempt: Count = 0
    at: Any = None  # epoch seconds
    code: Count = 0
    answer: Text = ""
    error: Text = ""


class _StoredDelivery(Reading):
    """A delivery as the notifier stores it (catalog/deliveries.py), as far as the API shows it."""

    id: str = Field(alias="_id")
    notification: dict[str, Any] = {}
    event_id: str
    type: Text = ""
    owner: Text = ""
    resource: dict[str, Any] = {}
    status: str
    attempt_count: Count = 0
    attempts: tuple[_StoredAttempt, ...] = ()
    next_attempt_at: Any = None  # epoch seconds
    created_at: Any = None
    replays: Count = 0


def shown(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored delivery as the API shows it (no claim, no event body)."""
    stored = _StoredDelivery.of(doc)
    return {
        "id": stored.id,
        "notification": stored.notification,
        "eventId": stored.event_id,
        "type": stored.type,
        "owner": stored.owner,
        "resource": stored.resource,
        "status": stored.status,
        "attemptCount": stored.attempt_count,
        "attempts": [
            {"attempt": a.attempt, "at": _time(a.at), "code": a.code, "answer": a.answer, "error": a.error}
            for a in stored.attempts
        ],
        "nextAttemptAt": _time(stored.next_attempt_at),
        "createdAt": _time(stored.created_at) or "",
        "replays": stored.replays,
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
    event: Annotated[str | None, Query(max_length=64, pattern=EVENT_ID, description="An event id.")] = None,
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


# --- sending an event again -------------------------------------------------------------------------

DELIVERY_ID = said(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}:evt_[0-9a-f]{1,60}$",
    "a delivery's id as the delivery log lists it: NOTIFICATION_UID:EVENT_ID",
)


class ReplayAsked(BaseModel):
    """In a cluster, the Notification's annotation now asks for the event again; the operator's
    notifier sends it (the delivery back to pending, its log kept, `replays` counted) and notes the
    value acted on in the Notification's status.replayed. On a laptop the delivery is back to
    pending in the local catalog, and the next `contentgen run` (or `contentgen notifications send`)
    sends it."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(description="The delivery.")
    notification: dict[str, str] = Field(description="namespace, name and uid of the Notification.")
    event_id: str = Field(alias="eventId")
    annotation: str | None = Field(
        description="The annotation set (contentgen.io/replay); null on a laptop, where none is."
    )
    value: str | None = Field(
        description="Its new value: the event's id, with #n where it named that event already; null on "
        "a laptop."
    )
    message: str = Field(description="What was done, and what sends it.")


def _err(description: str) -> dict[str, Any]:
    return documented_error(description)


REPLAY_RESPONSES: Responses = {
    202: {
        "model": ReplayAsked,
        "description": "In a cluster: the Notification's annotation contentgen.io/replay now names the "
        "event (a new value); the operator sends it again. On a laptop (`contentgen api --local`): the "
        "delivery waits again in the local catalog; the next `contentgen run` on the machine sends it, "
        "or `contentgen notifications send` at once.",
    },
    400: _err("A bad delivery id (NOTIFICATION_UID:EVENT_ID, as the delivery log lists it)."),
    401: ERROR_RESPONSES[401],
    403: _err("The Kubernetes API refused the API's ServiceAccount (code forbidden)."),
    404: _err(
        "No such delivery visible to the caller (code not_found: the same answer for another owner's), "
        "or its Notification is gone (code gone)."
    ),
    409: _err(
        "Nothing here to send it (code not_in_cluster): this API neither has the Kubernetes API "
        "(CONTENTGEN_API_CREATE=off) nor runs a laptop's catalog; the message has the kubectl command. Or "
        "the Notification kept changing while it was annotated (code conflict: send again)."
    ),
    503: _err("The catalog, or the Kubernetes API, cannot be reached."),
}


def _number(value: str) -> int:
    """A replay value's count: EVENT_ID is the first, EVENT_ID#n the n-th (1 where n is no number)."""
    _, mark, rest = value.partition("#")
    return int(rest) if mark and rest.strip().isdigit() else 1


def replay_value(event_id: str, *taken: str) -> str:
    """The annotation's value that asks for `event_id` again: the id, or `EVENT_ID#n` past every
    value of that event in `taken` (the annotation's value, the one the operator last acted on), so
    that it is a new value (each is acted on once; the operator reads the id before '#')."""
    same = [t for t in taken if t and t.split("#", 1)[0].strip() == event_id]
    if not same:
        return event_id
    return f"{event_id}#{max(_number(t) for t in same) + 1}"


def _visible(svc: Services, who: Caller, delivery_id: str) -> dict[str, Any]:
    owners = None if who.admin else list(who.owners)
    event_id = delivery_id.rpartition(":")[2]
    for doc in Deliveries(svc.catalog).find(owners, event_id=event_id, limit=200):
        if doc["_id"] == delivery_id:
            return doc
    raise ApiError(404, "not_found", f"no delivery {delivery_id!r}")


def _annotate(kube: Kube, notification: dict[str, str], event_id: str) -> str:
    """The Notification's contentgen.io/replay set to a new value naming `event_id`, by a merge patch
    on the resourceVersion read (read again when another writer came first): the value."""
    namespace, name = notification.get("namespace", ""), notification.get("name", "")
    where = f"Notification {namespace}/{name}"
    gone = f"the {where} of this delivery is gone"
    for _ in range(PATCH_ATTEMPTS):
        try:
            live = kube.get(PLURAL, namespace, name)
        except KubeError as exc:
            raise _refused(exc, gone) from None
        meta = live.get("metadata") or {}
        if meta.get("uid") != notification.get("uid"):
            raise ApiError(404, "gone", f"{gone}: the one of that name now is another Notification")
        value = replay_value(
            event_id,
            str((meta.get("annotations") or {}).get(ANNOTATION_REPLAY) or ""),
            str((live.get("status") or {}).get("replayed") or ""),
        )
        patch = {
            "metadata": {
                "resourceVersion": meta.get("resourceVersion"),
                "annotations": {ANNOTATION_REPLAY: value},
            }
        }
        try:
            kube.merge_patch(PLURAL, namespace, name, patch)
        except KubeError as exc:
            if exc.status == 409:  # changed since it was read: read it again
                continue
            raise _refused(exc, gone) from None
        return value
    raise ApiError(
        409, "conflict", f"{where} changed {PATCH_ATTEMPTS} times while it was annotated: send again"
    )


def _refused(exc: KubeError, gone: str) -> ApiError:
    if exc.status == 404:
        return ApiError(404, "gone", gone)
    if exc.status == 403:
        return ApiError(403, "forbidden", exc.message)
    return ApiError(403, "forbidden", f"the Kubernetes API answered {exc.status}: {exc.message}")


def _replay(svc: Services, who: Caller, delivery_id: str) -> dict[str, Any]:
    doc = _visible(svc, who, delivery_id)
    notification = {k: str(v) for k, v in (doc.get("notification") or {}).items()}
    event_id = str(doc["eventId"])
    creator = svc.creator
    if creator is not None and creator.local:
        return _replay_on_a_laptop(svc, doc, notification, event_id)
    if not isinstance(creator, KubeCreator):
        raise ApiError(
            409,
            "not_in_cluster",
            "notifications are delivered by the operator in a cluster, and this API has none to ask; there: "
            f"kubectl annotate -n {notification.get('namespace')} notification/{notification.get('name')} "
            f"{ANNOTATION_REPLAY}={event_id} --overwrite",
        )
    try:
        value = _annotate(creator.kube, notification, event_id)
    except KubeUnavailable as exc:
        raise ApiError(503, "cluster_unavailable", str(exc), {"Retry-After": "5"}) from None
    where = f"Notification {notification.get('namespace')}/{notification.get('name')}"
    return {
        "id": doc["_id"],
        "notification": notification,
        "eventId": event_id,
        "annotation": ANNOTATION_REPLAY,
        "value": value,
        "message": f"annotated {where}: {ANNOTATION_REPLAY}={value}; the operator sends the event again "
        "(the delivery's status goes back to pending, its attempts are kept, and the Notification's "
        "status.replayed names the value acted on)",
    }


def _replay_on_a_laptop(
    svc: Services, doc: dict[str, Any], notification: dict[str, str], event_id: str
) -> dict[str, Any]:
    """The laptop's path (cli/laptop_notifications.py): the delivery waits again in the local catalog,
    for the next `contentgen run` there, or `contentgen notifications send`, to send."""
    where = f"{notification.get('namespace')}/{notification.get('name')}"
    kept = KeptNotifications(svc.catalog).by_uid(notification.get("uid", ""))
    if kept is None:
        raise ApiError(404, "gone", f"the Notification {where} of this delivery is no longer kept here")
    if not Deliveries(svc.catalog).replay(kept, event_id):
        raise ApiError(404, "gone", f"the event {event_id} is no longer kept (events are kept 30 days)")
    paused = (
        " It is paused: `contentgen notifications resume " + where + "` first."
        if kept["spec"].get("paused")
        else ""
    )
    return {
        "id": doc["_id"],
        "notification": notification,
        "eventId": event_id,
        "annotation": None,
        "value": None,
        "message": f"{event_id} waits again for Notification {where}: the next `contentgen run` on this "
        f"machine sends it, or now: contentgen notifications send {where}.{paused}",
    }


@router.post(
    "/deliveries/{delivery_id}/replay",
    response_model=ReplayAsked,
    response_model_by_alias=True,
    status_code=202,
    summary="Send a delivery's event again (the Notification's annotation contentgen.io/replay)",
    responses=REPLAY_RESPONSES,
)
async def replay(
    delivery_id: Annotated[
        str,
        Path(max_length=200, pattern=DELIVERY_ID, description="The delivery's id, as the log lists it."),
    ],
    svc: ServicesDep,
    who: CallerDep,
) -> dict[str, Any]:
    """Sends the delivery's event to its Notification again, whatever the delivery came to (after
    fixing a receiver): in a cluster the Notification's annotation contentgen.io/replay is set to the
    event's id (EVENT_ID#n where it named that event already, so that it is a new value) through the
    Kubernetes API (202), and the operator acts on it once. Only a delivery the caller may see (of
    their owners' resources; an admin's: any)."""
    return await run_in_threadpool(_replay, svc, who, delivery_id)
