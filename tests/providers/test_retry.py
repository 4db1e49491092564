"""The retry policy: backoff with full jitter, Retry-After, what is transient, what is permanent."""

from __future__ import annotations

import logging

import httpx
import pytest

from contentgen.errors import MissingCredentials, PermanentError, TransientError
from contentgen.providers.retry import (
    Ambiguous,
    Retry,
    RetryableError,
    describe_body,
    error_for_status,
    error_for_transport,
    redact,
    retry_after,
)

from .fakes import FakeSleep


class Flaky:
    """Fails with the given exceptions, then returns "ok"."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def classify(exc: Exception):
    if isinstance(exc, LookupError):
        return error_for_status(int(exc.args[0]), "detail", provider="p", key_env="P_KEY")
    return error_for_transport(exc, provider="p")


def policy(sleep: FakeSleep, draw: float = 0.5, **kwargs) -> Retry:
    return Retry(sleep=sleep, random=lambda: draw, **kwargs)


def test_backoff_is_exponential_with_full_jitter_and_capped():
    sleep = FakeSleep()
    retry = policy(sleep, draw=0.5, base_delay=1.0, max_delay=6.0, attempts=6)
    assert retry.call(Flaky(*[httpx.ConnectError("no")] * 5), classify=classify, what="x") == "ok"
    assert sleep.waits == [0.5, 1.0, 2.0, 3.0, 3.0]  # 0.5 * min(6, 1, 2, 4, 8, 16)

    # the draw spans [0, ceiling): the whole range, not a band around it
    assert policy(sleep, draw=0.0).backoff(3) == 0.0
    assert policy(sleep, draw=0.999, base_delay=1.0).backoff(3) == pytest.approx(3.996)


def test_the_default_jitter_stays_within_the_ceiling():
    retry = Retry(base_delay=2.0, max_delay=10.0)
    assert all(0 <= retry.backoff(n) < min(10.0, 2.0 * 2 ** (n - 1)) for n in range(1, 8) for _ in range(50))


def test_retry_after_is_honoured():
    sleep = FakeSleep()
    rate_limited = RetryableError("slow down", reason="RateLimited", retry_after=42.0)
    assert policy(sleep).call(Flaky(rate_limited), classify=classify, what="x") == "ok"
    assert sleep.waits == [42.0]


def test_a_retry_after_beyond_the_limit_is_not_waited_for():
    sleep = FakeSleep()
    flaky = Flaky(RetryableError("come back tomorrow", reason="RateLimited", retry_after=86400.0))
    with pytest.raises(TransientError, match="gave up after 1 attempt: come back tomorrow") as raised:
        policy(sleep, max_retry_after=300.0).call(flaky, classify=classify, what="x")
    assert sleep.waits == [] and raised.value.reason == "RateLimited"


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": " 120 "}, 120.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: no wait
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_header(headers, seconds):
    assert retry_after(headers) == seconds
    assert retry_after(httpx.Headers(headers)) == seconds


def test_persistent_transient_failures_end_as_transient_after_the_attempts():
    sleep = FakeSleep()
    flaky = Flaky(*[LookupError(503)] * 5)
    with pytest.raises(TransientError) as raised:
        policy(sleep, attempts=4).call(flaky, classify=classify, what="polling p")
    assert flaky.calls == 4 and len(sleep.waits) == 3
    assert str(raised.value) == "polling p: gave up after 4 attempts: p is unavailable (HTTP 503: detail)"
    assert raised.value.reason == "ProviderUnavailable"


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_client_errors_fail_at_once(status):
    sleep = FakeSleep()
    flaky = Flaky(LookupError(status))
    with pytest.raises(PermanentError) as raised:
        policy(sleep).call(flaky, classify=classify, what="x")
    assert flaky.calls == 1 and sleep.waits == []
    assert raised.value.reason == "ProviderRejected" and f"HTTP {status}" in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize("status", [401, 403])
def test_refused_keys_name_the_variable_and_the_offline_flag(status):
    error = error_for_status(status, "Invalid API key", provider="fal", key_env="FAL_KEY")
    assert isinstance(error, MissingCredentials) and error.reason == "MissingCredentials"
    assert str(error) == (
        f"fal refused the API key in FAL_KEY (HTTP {status}: Invalid API key): "
        "set a valid key in FAL_KEY or run with --offline"
    )


def test_a_refusal_without_a_key_is_just_a_rejection():
    error = error_for_status(403, "AccessDenied", provider="a CDN", key_env=None)
    assert type(error) is PermanentError and error.reason == "ProviderRejected"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (408, "ProviderUnavailable"),
        (429, "RateLimited"),
        (500, "ProviderUnavailable"),
        (502, "ProviderUnavailable"),
        (503, "ProviderUnavailable"),
        (504, "ProviderUnavailable"),
    ],
)
def test_transient_statuses(status, reason):
    error = error_for_status(status, "", provider="p", key_env="K", retry_after=3.0)
    assert isinstance(error, RetryableError) and error.reason == reason and error.retry_after == 3.0


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (httpx.ReadTimeout("t"), "ProviderTimeout"),
        (httpx.ConnectTimeout("t"), "ProviderTimeout"),
        (TimeoutError(), "ProviderTimeout"),
        (httpx.ConnectError("refused"), "ProviderUnreachable"),
        (httpx.RemoteProtocolError("closed"), "ProviderUnreachable"),
    ],
)
def test_timeouts_and_connection_errors_are_transient(exc, reason):
    error = error_for_transport(exc, provider="p")
    assert isinstance(error, TransientError) and error.reason == reason


def test_unknown_exceptions_pass_through_untouched():
    sleep = FakeSleep()
    with pytest.raises(ValueError, match="a bug"):
        policy(sleep).call(Flaky(ValueError("a bug")), classify=classify, what="x")
    assert sleep.waits == []


def test_our_own_errors_are_judged_by_their_class():
    sleep = FakeSleep()
    assert policy(sleep).call(Flaky(TransientError("blip")), classify=classify, what="x") == "ok"
    permanent = PermanentError("no", reason="InvalidInput")
    with pytest.raises(PermanentError) as raised:
        policy(sleep).call(Flaky(permanent), classify=classify, what="x")
    assert raised.value is permanent and len(sleep.waits) == 1


def test_retries_are_logged_without_secrets(caplog):
    caplog.set_level(logging.WARNING)
    error = error_for_status(
        503,
        "upstream failed for https://b.s3.amazonaws.com/k.mp3?X-Amz-Signature=abc123 with key sk-live-1",
        provider="p",
        key_env="K",
        secrets=("sk-live-1",),
    )
    policy(FakeSleep()).call(Flaky(error), classify=classify, what="polling p")
    assert "https://b.s3.amazonaws.com/k.mp3?<redacted>" in caplog.text
    assert "abc123" not in caplog.text and "sk-live-1" not in caplog.text


def test_redact():
    text = "GET https://h/p?sig=1&x=2#frag failed, s3://b/k?versionId=3 too, 'https://q/r?a=b' K123"
    assert redact(text, ["K123", ""]) == (
        "GET https://h/p?<redacted>#frag failed, s3://b/k?<redacted> too, 'https://q/r?<redacted>' <redacted>"
    )
    assert redact("https://v3.fal.media/files/x.png") == "https://v3.fal.media/files/x.png"


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("t"),
        httpx.PoolTimeout("t"),
        httpx.WriteTimeout("t"),
    ],
)
def test_a_billed_request_that_never_left_is_retried(exc):
    error = error_for_transport(exc, provider="p", billed=True)
    assert isinstance(error, RetryableError)


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("t"), httpx.RemoteProtocolError("closed"), httpx.ReadError("reset")]
)
def test_a_billed_request_whose_answer_was_lost_is_ambiguous_and_never_retried(exc):
    error = error_for_transport(exc, provider="p", billed=True)
    assert isinstance(error, Ambiguous) and error.reason == "ProviderOutcomeUnknown"
    sleep = FakeSleep()
    flaky = Flaky(exc)
    with pytest.raises(Ambiguous):
        policy(sleep).call(
            flaky, classify=lambda e: error_for_transport(e, provider="p", billed=True), what="x"
        )
    assert flaky.calls == 1 and sleep.waits == []


def test_a_5xx_to_a_billed_request_is_ambiguous_unless_the_provider_says_retry():
    assert isinstance(error_for_status(502, "bad gateway", provider="p", key_env="K", billed=True), Ambiguous)
    retried = error_for_status(503, "busy", provider="p", key_env="K", billed=True, retry_says=True)
    assert isinstance(retried, RetryableError)
    # 408 and 429 say the request was not taken
    for status in (408, 429):
        assert isinstance(
            error_for_status(status, "", provider="p", key_env="K", billed=True), RetryableError
        )


def test_a_body_that_is_not_json_is_described_without_secrets():
    response = httpx.Response(
        200, text="<html>see https://h/x?sig=abc</html>", headers={"content-type": "text/html; charset=utf-8"}
    )
    text = describe_body(response)
    assert text.startswith("HTTP 200 text/html (") and "sig=abc" not in text and "<html>" in text
