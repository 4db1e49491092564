"""Retries for provider calls: exponential backoff with full jitter, and what counts as transient.

Every call is either *idempotent* (reading a status, a result, a list; uploading a file, which
no provider bills) or *billed* (a submit that starts paid work). The difference is what a lost
answer means:

- Before the request left (connection refused, DNS, connect or pool timeout, a body that could
  not be written whole), nothing happened at the provider: retried, whatever the call.
- After it left (a read timeout, a dropped connection, a 5xx without a header that says "retry"),
  an idempotent call is retried; a billed call raises `Ambiguous`: the provider may have accepted
  it, so the caller must find out (see the providers) before it may submit again. `Retry.call`
  never retries an `Ambiguous`.
- HTTP 408 and 429 say the request was not taken: retried (429 waits as long as Retry-After
  asks). The other 4xx are permanent; 401 and 403 become `MissingCredentials` naming the key's
  environment variable.

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


class Ambiguous(ContentgenError):
    """A billed request left, and its answer was lost: the provider may or may not have accepted
    it. Never retried; if it escapes the provider it fails the run as ProviderOutcomeUnknown."""

    reason = "ProviderOutcomeUnknown"


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
    billed: bool = False,
    retry_says: bool = False,
) -> ContentgenError:
    """The error for an HTTP failure status. `key_env` names the variable holding the key the call
    was made with; None for calls made without one (downloads), where 401/403 is just a refusal.
    A 5xx answer to a `billed` call is `Ambiguous` unless the provider said to retry (`retry_says`)."""
    detail = redact(detail.strip(), secrets) or httpx.codes.get_reason_phrase(status) or "no detail"
    if status in (401, 403) and key_env:
        return MissingCredentials(
            f"{provider} refused the API key in {key_env} (HTTP {status}: {detail}): "
            f"set a valid key in {key_env} or {MissingCredentials.OFFLINE}"
        )
    if status == 429:
        return RetryableError(
            f"{provider} is rate limiting requests (HTTP 429: {detail})",
            reason="RateLimited",
            retry_after=retry_after,
        )
    if status >= 500 and billed and not retry_says:
        return Ambiguous(f"{provider} answered HTTP {status} ({detail}) after the request was sent")
    if status == 408 or status >= 500:
        return RetryableError(
            f"{provider} is unavailable (HTTP {status}: {detail})",
            reason="ProviderUnavailable",
            retry_after=retry_after,
        )
    return PermanentError(
        f"{provider} rejected the request (HTTP {status}: {detail})", reason="ProviderRejected"
    )


# Failures that happen before a request has left whole: the provider cannot have acted on it.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
    ConnectionRefusedError,
)


def not_sent(exc: BaseException) -> bool:
    """Whether `exc` is a failure before the request left whole (nothing reached the provider)."""
    return isinstance(exc, _NOT_SENT)


def error_for_transport(
    exc: BaseException, *, provider: str, billed: bool = False
) -> RetryableError | Ambiguous | None:
    """The error for a timeout or a broken connection, None for anything else. After a `billed`
    request left, a lost answer is `Ambiguous`."""
    if not isinstance(exc, httpx.TransportError | TimeoutError | ConnectionError):
        return None
    name = type(exc).__name__
    if billed and not not_sent(exc):
        return Ambiguous(f"the answer from {provider} was lost after the request was sent ({name})")
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return RetryableError(f"{provider} did not answer in time ({name})", reason="ProviderTimeout")
    return RetryableError(f"could not reach {provider} ({name})", reason="ProviderUnreachable")


def bad_response(provider: str, what: str, problem: str) -> PermanentError:
    """A provider's answer that makes no sense (HTML, a truncated body, a result without outputs).
    Not retried: the same request asked again would be answered the same way, or paid twice."""
    return PermanentError(f"{provider} answered {what} with {problem}", reason="ProviderBadResponse")


def describe_body(response: httpx.Response | None) -> str:
    """What a body that is not the expected JSON looks like, for an error message (redacted)."""
    if response is None:
        return "no body"
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    try:
        text = response.text
    except Exception:  # an undecodable or unread body
        text = ""
    sample = " ".join(redact(text[:80]).split())
    shown = f": {sample!r}" if sample else ""
    return f"HTTP {response.status_code} {kind} ({len(response.content)} bytes{shown})"


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
                if not isinstance(error, TransientError):  # Ambiguous included: never retried
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
