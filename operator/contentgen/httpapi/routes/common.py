"""Helpers the route modules share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from contentgen.catalog import ResultPage, to_record

from ..creators import Conflict, Gone, Refused
from ..errors import ApiError
from ..kube import KubeUnavailable


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
