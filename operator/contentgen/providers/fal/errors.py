"""How fal reports failures, and which of them a new attempt may get past."""

from __future__ import annotations

from typing import Any

import fal_client
import httpx

from contentgen.errors import ContentgenError, PermanentError, TransientError

from ..retry import (
    Ambiguous,
    bad_response,
    error_for_status,
    error_for_transport,
    redact,
    retry_after,
)

KEY_ENV = "FAL_KEY"

# error_type values of fal's infrastructure failures (runner lost, timed out, not scheduled):
# the request failed, but the same input may well succeed when submitted again.
_INFRASTRUCTURE_ERRORS = frozenset(
    {
        "request_timeout",
        "startup_timeout",
        "runner_scheduling_failure",
        "runner_connection_timeout",
        "runner_disconnected",
        "runner_connection_refused",
        "runner_connection_error",
        "runner_incomplete_response",
        "internal_error",
    }
)


def job_error(
    app: str, request_id: str, detail: str, error_type: str | None, status: int | None = None
) -> ContentgenError:
    detail = redact(detail) or "no detail"
    kind = f" ({error_type})" if error_type else ""
    if error_type in _INFRASTRUCTURE_ERRORS:
        return TransientError(
            f"fal request {request_id} on {app} failed{kind}: {detail}; a new attempt submits it again",
            reason="ProviderUnavailable",
        )
    return PermanentError(
        f"fal's {app} failed request {request_id}{kind}: {detail}", reason="ProviderJobFailed"
    )


def outcome_unknown(app: str, at: str, why: str, detail: str, where: str) -> PermanentError:
    """A request fal may have taken, that nothing can tell us about: never submitted again."""
    sent = f"sent at {at} " if at else ""
    since = f", from {at}" if at else ""
    return PermanentError(
        f"fal may have accepted a request to {app} {sent}({why}), and {detail}. Nothing was submitted "
        f"again. Check fal's request history (https://fal.ai/dashboard, requests of {app}{since}): if the "
        f"request is there, it was paid for; to submit again anyway, delete {where} or change the spec",
        reason="ProviderOutcomeUnknown",
    )


def output_lost(app: str, request_id: str, why: str, where: str) -> PermanentError:
    """A request that succeeded (and was paid for) whose output can no longer be fetched."""
    return PermanentError(
        f"fal request {request_id} on {app} succeeded and was paid for, but {why}; nothing was "
        f"submitted again. To generate anew (and pay again), delete {where} or change the spec",
        reason="ProviderOutputExpired",
    )


def validation_errors(exc: fal_client.FalClientHTTPError) -> list[dict[str, Any]]:
    """fal's structured error items ({loc, msg, type}) of a failed request, when it sent them."""
    try:
        body = exc.response.json() if exc.response is not None else None
    except ValueError:
        return []
    detail = body.get("detail") if isinstance(body, dict) else None
    return [item for item in detail if isinstance(item, dict)] if isinstance(detail, list) else []


def input_unreachable(errors: list[dict[str, Any]], field: str) -> bool:
    """Whether fal reported that it could not download the URL given as `field`."""
    return any(
        item.get("type") == "file_download_error" and field in (item.get("loc") or []) for item in errors
    )


def classify(exc: Exception, *, key: str, what: str, billed: bool = False) -> ContentgenError | None:
    """What a failed call to fal's API means (see retry.py); `what` names the call for messages.
    A 2xx the SDK could not read is nonsense for a read, and a lost answer for a `billed` call."""
    if isinstance(exc, fal_client.FalClientHTTPError):
        headers = {k.lower(): v for k, v in exc.response_headers.items()}
        # documented as "1"/"0" (https://fal.ai/docs/documentation/serverless/reliability/retries);
        # "true" and "yes" are read the same, as fal reads its own x-fal-no-retry
        says_retry = any(
            headers.get(name, "").strip().lower() in ("1", "true", "yes")
            for name in ("x-fal-retryable", "x-fal-needs-retry")
        )
        return error_for_status(
            exc.status_code,
            error_detail(exc),
            provider="fal",
            key_env=KEY_ENV,
            retry_after=retry_after(exc.response_headers),
            secrets=(key,),
            billed=billed,
            retry_says=says_retry,
        )
    if isinstance(exc, httpx.HTTPStatusError):  # fal-client's CDN token request raises these
        return error_for_status(
            exc.response.status_code,
            response_detail(exc.response),
            provider="fal",
            key_env=KEY_ENV,
            retry_after=retry_after(exc.response.headers),
            secrets=(key,),
        )
    if isinstance(exc, ValueError | KeyError | TypeError):  # the SDK could not read a 2xx
        problem = (
            f"a body that is not what fal's API returns ({type(exc).__name__}: {redact(str(exc))[:120]})"
        )
        return (
            Ambiguous(f"fal answered {what} with {problem}") if billed else bad_response("fal", what, problem)
        )
    return error_for_transport(exc, provider="fal", billed=billed)


def error_detail(exc: fal_client.FalClientHTTPError) -> str:
    return response_detail(exc.response) if exc.response is not None else str(exc.message)


def response_detail(response: httpx.Response) -> str:
    """fal's `detail`: a sentence, or a list of {loc, msg} validation errors."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", item)))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)[:500]
