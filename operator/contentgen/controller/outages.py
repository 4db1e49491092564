"""What is away when a call fails: the operator's dependencies (the API server, the catalog, the
object store) go away and come back, and it says so in one line and retries; only what is none of
these (a bug) is logged with its traceback."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from contentgen.catalog.base import CatalogUnavailable
from contentgen.errors import ContentgenError

from .kube import KubeError

log = logging.getLogger("contentgen.operator")

STORE_REASONS = ("StoreUnavailable", "StoreAccessDenied")

# How soon a resource is looked at again while the API server does not yet know its kind: its
# garbage-collector admission reads kinds from a discovery cache it refreshes every 30 seconds.
KIND_UNKNOWN_RETRY_SECONDS = 5.0


def kind_not_yet_known(exc: BaseException) -> bool:
    """kube-apiserver refused a Job's owner reference (blockOwnerDeletion) to a kind its admission's
    discovery cache does not hold yet: the CRDs were installed moments ago, or the server has just
    started. It passes by itself within 30 seconds; it is not the operator lacking a permission."""
    return isinstance(exc, KubeError) and exc.status == 403 and "cannot find RESTMapping" in str(exc)


def away(exc: BaseException) -> str:
    """'the API server', 'the catalog' or 'the object store' when `exc` says it cannot be reached
    (or answers 5xx, or times out); "" for anything else."""
    if isinstance(exc, CatalogUnavailable):
        return "the catalog"
    if isinstance(exc, ContentgenError) and exc.reason in STORE_REASONS:
        return "the object store"
    if kind_not_yet_known(exc):
        return "the API server"  # not ready for the kind yet: what it says is in the line logged
    if isinstance(exc, KubeError):
        return "the API server" if exc.status in (0, 429) or exc.status >= 500 else ""
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | ConnectionError):
        return "the API server"  # the operator's only aiohttp peer
    try:
        import pymongo.errors
    except ImportError:  # pragma: no cover - the operator's image has pymongo
        return ""
    if isinstance(exc, pymongo.errors.ConnectionFailure):
        return "the catalog"
    return ""


def deleted_meanwhile(exc: BaseException, plural: str, name: str) -> bool:
    """The API server answered 404 Not Found for the resource itself (`plural`/`name`): it was
    deleted while its reconcile ran (its deletion is handled on its own; nothing to retry, nothing
    to report). Any other 404 (a CRD or a Secret missing) is not this."""
    if not isinstance(exc, KubeError) or exc.status != 404 or not isinstance(exc.body, dict):
        return False
    details = exc.body.get("details") or {}
    return bool(details.get("kind") == plural and details.get("name") == name)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def report(what: str, exc: BaseException, then: str) -> None:
    """`what` failed: one line when a dependency is away (`then`: what happens next), else the
    traceback too (a bug, to be reported)."""
    gone = away(exc)
    if gone:
        log.warning("%s: %s is away (%s); %s", what, gone, one_line(exc), then)
    else:
        log.warning("%s failed: %s; %s", what, one_line(exc), then, exc_info=exc)
