"""Retries for provider calls: exponential backoff with full jitter, and what counts as transient.

Transient, retried: HTTP 408, 429 (waiting as long as Retry-After asks), 5xx, timeouts and
connection errors. Permanent, raised at once: the other 4xx and provider-side job errors; 401 and
403 become `MissingCredentials` naming the key's environment variable.

Messages that leave this module have URL query strings (presigned signatures) and keys redacted,
and the SDK's exception is not chained to ours: its text may hold the very URL we redacted.
"""

from __future__ import annotations

import logging
import random as _random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx

from contentgen.errors import ContentgenError, MissingCredentials, PermanentError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

_URL_QUERY = re.compile(r"\b([a-z][a-z0-9+.-]*://[^\s?#'\"<>]+)\?[^\s#'\"<>]*", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without URL query strings (where presigned URLs keep their signature) or `secrets`."""
    text = _URL_QUERY.sub(r"\1?<redacted>", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


class RetryableError(TransientError):
    """A transient failure; `retry_after` is the wait in seconds the provider asked for, if it did."""

    def __init__(self, message: str, *, reason: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The Retry-After header in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_for_status(
    status: int,
    detail: str,
    *,
    provider: str,
    key_env: str | None,
    retry_after: float | None = None,
    secrets: Iterable[str] = (),
) -> ContentgenError:
    """The error for an HTTP failure status. `key_env` names the variable holding the key the call
    was made with; None for calls made without one (downloads), where 401/403 is just a refusal."""
    detail = redact(detail.strip(), secrets) or httpx.codes.get_reason_phrase(status) or "no detail"
    if status in (401, 403) and key_env:
        return MissingCredentials(
            f"{provider} refused the API key in {key_env} (HTTP {status}: {detail}): "
            f"set a valid key in {key_env} or run with --offline"
        )
    if status == 429:
        return RetryableError(
            f"{provider} is rate limiting requests (HTTP 429: {detail})",
            reason="RateLimited",
            retry_after=retry_after,
        )
    if status == 408 or status >= 500:
        return RetryableError(
            f"{provider} is unavailable (HTTP {status}: {detail})",
            reason="ProviderUnavailable",
            retry_after=retry_after,
        )
    return PermanentError(
        f"{provider} rejected the request (HTTP {status}: {detail})", reason="ProviderRejected"
    )


def error_for_transport(exc: BaseException, *, provider: str) -> RetryableError | None:
    """The error for a timeout or a broken connection, None for anything else."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return RetryableError(
            f"{provider} did not answer in time ({type(exc).__name__})", reason="ProviderTimeout"
        )
    if isinstance(exc, httpx.TransportError | ConnectionError):
        return RetryableError(
            f"could not reach {provider} ({type(exc).__name__})", reason="ProviderUnreachable"
        )
    return None


Classify = Callable[[Exception], ContentgenError | None]


@dataclass
class Retry:
    """How often and how long to retry. `sleep` and `random` are injectable so tests never wait.

    The n-th retry waits a uniformly random time in [0, min(max_delay, base_delay * 2**(n-1)))
    ("full jitter"), or exactly what the provider's Retry-After asked for. A Retry-After longer than
    `max_retry_after` is not waited for: the call fails as transient at once.
    """

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 300.0
    sleep: Callable[[float], None] = field(default=time.sleep)
    random: Callable[[], float] = field(default=_random.random)

    def backoff(self, retry: int) -> float:
        return self.random() * min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))

    def call(self, fn: Callable[[], T], *, classify: Classify, what: str) -> T:
        """`fn()`, retried while it fails transiently.

        `classify` turns a foreign exception into our error, or returns None to let it through
        untouched. A `ContentgenError` raised by `fn` itself is judged by its class.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except Exception as exc:
                error = exc if isinstance(exc, ContentgenError) else classify(exc)
                if error is None:
                    raise
                if not isinstance(error, TransientError):
                    if error is exc:
                        raise
                    raise error from None
                wait = getattr(error, "retry_after", None)
                if attempt >= self.attempts or (wait is not None and wait > self.max_retry_after):
                    raise TransientError(
                        f"{what}: gave up after {attempt} attempt{'s' if attempt > 1 else ''}: {error}",
                        reason=error.reason,
                    ) from None
                delay = wait if wait is not None else self.backoff(attempt)
                log.warning(
                    "%s: %s; retry %d of %d in %.1f s", what, error, attempt, self.attempts - 1, delay
                )
                self.sleep(delay)
