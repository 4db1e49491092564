"""Notification: a namespace's webhook subscription (docs/notifications.md).

Not a kind of work: it makes no Job, has no owner and no phase, and is not in the `contentgen`
category (`kubectl get contentgen` lists work). The operator reads every Notification, delivers the
events of the resources in its namespace that its filters match to `url`, signed as the Standard
Webhooks specification says with the keys of the Secret `secretRef` names, and reports in its status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from .base import ApiModel, Timestamp, regex_rule
from .common import MAX_URL_LENGTH, OWNER_PATTERN, Condition, ObjectName
from .kinds import CATEGORY, GROUP
from .schema import definition, openapi_schema

KIND = "Notification"
PLURAL = "notifications"
SHORT_NAMES = ("notif",)
ANNOTATION_REPLAY = f"{GROUP}/replay"  # an event id: deliver that event to this Notification again
EVENTS = ("succeeded", "failed", "likenessPoor", "budgetReached", "queued")
EventName = Literal["succeeded", "failed", "likenessPoor", "budgetReached", "queued"]
DEFAULT_SECRET_KEYS = ("secret", "previous")

_WEBHOOK_URL = r"https?://[^\s/?#@]+(?:[/?#]\S*)?"
WEBHOOK_URL_RULE = regex_rule(
    _WEBHOOK_URL, "must be an http:// or https:// URL, without spaces or user:password@"
)

SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]
OwnerName = Annotated[str, Field(max_length=63, pattern=OWNER_PATTERN)]
KindName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Z][A-Za-z0-9]*$")]


class SecretRef(ApiModel):
    """The Secret, in the Notification's namespace, whose keys sign the deliveries."""

    name: Annotated[
        ObjectName,
        Field(
            description="The Secret's name. The operator may read only the Secret names the chart "
            "allows (`notifications.secretNames`, default contentgen-webhook).",
        ),
    ]
    keys: Annotated[
        list[SecretKey],
        Field(
            min_length=1,
            max_length=2,
            description="The Secret's keys that hold signing secrets (`whsec_` and base64, as the "
            "Standard Webhooks specification writes them). Every one present signs each delivery, "
            "and the signatures go space-separated in `webhook-signature`: put the new secret under "
            "the first and keep the old one under the second while receivers move over.",
        ),
    ] = list(DEFAULT_SECRET_KEYS)


class NotificationSpec(ApiModel):
    """Where to deliver which events of this namespace's resources."""

    url: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_URL_LENGTH,
            description="The receiver: an http:// or https:// URL. Like every user URL, hosts that "
            "resolve to internal addresses are refused unless the operator allows private sources.",
        ),
        WEBHOOK_URL_RULE,
    ]
    secret_ref: Annotated[SecretRef, Field(description="The signing keys.")]
    events: Annotated[
        list[EventName],
        Field(
            max_length=len(EVENTS),
            description="Which events: succeeded, failed, likenessPoor, budgetReached, queued "
            "(a run's Job held suspended, by Kueue). Empty: all of them.",
        ),
    ] = []
    kinds: Annotated[
        list[KindName],
        Field(max_length=20, description="Which kinds (e.g. LoraTraining). Empty: every kind."),
    ] = []
    owners: Annotated[
        list[OwnerName],
        Field(max_length=100, description="Which owners' resources. Empty: every owner's."),
    ] = []
    paused: Annotated[
        bool,
        Field(description="Enqueue matching events but send nothing until it is false again."),
    ] = False


class LastDelivery(ApiModel):
    """The newest delivery attempt."""

    event_id: Annotated[str, Field(max_length=256, description="The event's id (webhook-id).")]
    type: Annotated[str, Field(max_length=256, description="The event's type.")]
    status: Annotated[
        Literal["pending", "retrying", "delivered", "failed", "disabled"],
        Field(description="Where the delivery stands."),
    ]
    attempts: Annotated[int, Field(ge=0, description="Attempts made.")]
    code: Annotated[int, Field(ge=0, description="The receiver's last HTTP status (0: no answer).")] = 0
    at: Annotated[Timestamp, Field(description="When the last attempt was made.")]


class NotificationStatus(ApiModel):
    """What the operator delivered; set by the operator."""

    observed_generation: Annotated[int, Field(ge=0)] = 0
    conditions: Annotated[
        list[Condition], Field(max_length=8, description="Ready, and Failing while deliveries fail.")
    ] = []
    last_delivery: Annotated[LastDelivery | None, Field(description="The newest delivery attempt.")] = None
    pending: Annotated[int, Field(ge=0, description="Deliveries waiting for their next attempt.")] = 0
    replayed: Annotated[
        str, Field(max_length=256, description=f"The last {ANNOTATION_REPLAY} value acted on.")
    ] = ""


def notification_crd() -> dict[str, Any]:
    """The Notification CRD (crd.py renders it beside the kinds')."""
    columns: list[Mapping[str, object]] = [
        {"name": "URL", "type": "string", "jsonPath": ".spec.url", "description": "The receiver."},
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
            "description": "Whether deliveries succeed.",
        },
        {
            "name": "Last",
            "type": "string",
            "jsonPath": ".status.lastDelivery.status",
            "description": "How the newest delivery went.",
        },
        {"name": "Pending", "type": "integer", "jsonPath": ".status.pending", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return definition(
        KIND,
        PLURAL,
        SHORT_NAMES,
        f"{CATEGORY}-config",
        columns,
        "Delivers this namespace's contentgen events to a webhook (Standard Webhooks signatures, "
        "CloudEvents bodies).",
        spec={"description": "The desired Notification.", **openapi_schema(NotificationSpec)},
        status={
            "description": "What the operator delivered; set by the operator.",
            **openapi_schema(NotificationStatus),
        },
    )
