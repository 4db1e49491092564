"""How fal reports failures, and which of them a new attempt may get past."""

from __future__ import annotations

import fal_client
import httpx

from contentgen.errors import ContentgenError, PermanentError, TransientError

from ..retry import redact

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


# Result-fetch failures that mean "the request ran and failed", not "fal could not answer".
def unknown_request(exc: Exception) -> bool:
    return isinstance(exc, fal_client.FalClientHTTPError) and exc.status_code == 404


def job_failed(exc: Exception) -> bool:
    """Whether a result fetch failed because the request ran and failed, rather than because fal
    could not answer: a client error, or any status that carries fal's error_type."""
    if not isinstance(exc, fal_client.FalClientHTTPError):
        return False
    return bool(exc.error_type) or exc.status_code in (400, 404, 409, 410, 413, 415, 422)


def job_error(
    app: str, request_id: str, detail: str, error_type: str | None, status: int | None = None
) -> ContentgenError:
    detail = redact(detail) or "no detail"
    kind = f" ({error_type})" if error_type else ""
    if error_type in _INFRASTRUCTURE_ERRORS or status == 404:
        return TransientError(
            f"fal request {request_id} on {app} failed{kind}: {detail}; a new attempt submits it again",
            reason="ProviderUnavailable",
        )
    return PermanentError(
        f"fal's {app} failed request {request_id}{kind}: {detail}", reason="ProviderJobFailed"
    )


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
