"""Helpers the route modules share."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from contentgen.catalog import ResultPage, to_record
from contentgen.errors import ContentgenError

from ..creators import Conflict, Creator, Gone, Refused
from ..deps import Services, acting_for
from ..errors import ERROR_RESPONSES, ApiError, Responses, documented_error
from ..identity import Caller
from ..kube import KubeUnavailable

# What a route that annotates a LoraTraining for its owner (a promotion, a verdict) answers, besides
# its own 200, 202, 400 and 409.
ANNOTATING_REFUSALS: Responses = {
    401: ERROR_RESPONSES[401],
    403: documented_error(
        "The caller does not act for the record's owner (code forbidden), or this API does "
        "not create at all (code create_disabled: CONTENTGEN_API_CREATE=off; the message names the "
        "kubectl command), or the Kubernetes API refused the API's ServiceAccount (code forbidden)."
    ),
    404: documented_error(
        "No such record visible to the caller, or no such version; in a cluster, the "
        "record's LoraTraining is gone (code gone)."
    ),
}
ANNOTATING_OUTAGES: Responses = {
    502: documented_error("On a laptop, the store failed (code store_error; nothing was recorded)."),
    503: documented_error("The catalog, or in a cluster the Kubernetes API, cannot be reached."),
}


def page_of(result: ResultPage) -> dict[str, Any]:
    return {
        "total": result.total,
        "limit": result.limit,
        "offset": result.offset,
        "items": [to_record(doc).wire() for doc in result.docs],
    }


@contextmanager
def creator_answers(gone: tuple[int, str] = (404, "gone")) -> Iterator[None]:
    """What a creator's refusal is as an answer: the resource gone (`gone`: its status and code),
    changed meanwhile (409), refused to the API's ServiceAccount (403), the cluster unreachable (503)."""
    try:
        yield
    except Gone as exc:
        raise ApiError(*gone, str(exc)) from None
    except Conflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except Refused as exc:
        raise ApiError(403, "forbidden", str(exc)) from None
    except KubeUnavailable as exc:
        raise ApiError(503, "cluster_unavailable", str(exc), {"Retry-After": "5"}) from None


def annotating_creator(
    svc: Services, who: Caller, doc: Mapping[str, Any], does: str, annotation: str
) -> Creator:
    """The API's creator, for `who` to change the LoraTraining of `doc`'s record as the annotation
    `annotation` (`name='value'`) does: refused where the API does not create (naming that kubectl
    annotate, which `does` the same in a cluster) or `who` does not act for the record's owner."""
    creator: Creator | None = svc.creator
    if creator is None:
        raise ApiError(
            403,
            "create_disabled",
            f"this API does not create or {does} (CONTENTGEN_API_CREATE=off); in a cluster, annotate the "
            f"LoraTraining: kubectl annotate loratraining/{doc.get('name')} {annotation} --overwrite",
        )
    acting_for(who, str(doc.get("owner", "")))
    return creator


@contextmanager
def recorded_or_nothing() -> Iterator[None]:
    """A store's failure while a laptop records a change is a 502 that says nothing was recorded."""
    try:
        yield
    except ContentgenError as exc:
        raise ApiError(502, "store_error", f"{exc.reason}: {exc}; nothing was recorded") from None
