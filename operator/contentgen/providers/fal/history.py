"""fal's list of the account's requests: how a lost submit or a forgotten request is found again.

GET https://api.fal.ai/v1/models/requests/by-endpoint (https://fal.ai/docs/platform-apis/v1/
models/requests/by-endpoint) lists the requests made on an endpoint, with the same API key:
request_id, endpoint_id, sent_at, ended_at, status_code and, with expand=payloads, json_input
and json_output. The window starts 24 hours back by default, 90 days when a request_id is asked
for. What the documentation leaves open, and what this module therefore does not assume:

- Whether requests still queued or running are listed ("sorted by end time" only): they may be,
  with no ended_at and a null status_code, and are then adopted and waited on like any other.
- Whether inputs are listed: fal stores a request's payloads per the account's setting unless
  the submit sends X-Fal-Store-IO (https://fal.ai/docs/documentation/model-apis/media-expiration:
  30 days by default). A request listed without its input cannot be recognised.
- Whether json_input is exactly what was sent: defaults may be filled in and URLs rewritten, so
  inputs are compared field by field on what we sent, URLs without their query strings, and a
  URL that differs only weakens the match.
- The list is the account's, not this deployment's: other workloads' requests are in it. Time
  (sent_at near our submit), endpoint (fal may reroute to a fallback endpoint,
  https://docs.fal.ai/model-apis/model-endpoints/reliability) and the request ids this run already
  knows are evidence too. A request is adopted only when exactly one candidate fits best.

fal offers no idempotency key: a submit carries nothing of ours but its input.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from contentgen.errors import ContentgenError, MissingCredentials

from ..retry import Retry, bad_response, describe_body, error_for_status, error_for_transport, redact

PLATFORM_API = "https://api.fal.ai/v1"
MAX_PAGES = 20  # 2 000 requests: beyond that a search is not worth making
EARLY = timedelta(minutes=10)  # fal's sent_at may be this far before our clock's (skew)
LATE = timedelta(minutes=15)  # ... or this far after (our submit retries before it left)


def arguments_digest(arguments: Any) -> str:
    """What identifies a request's input across attempts (signatures and tokens left out)."""
    return hashlib.sha256(redact(json.dumps(arguments, sort_keys=True)).encode()).hexdigest()


class History:
    def __init__(self, key: str, retry: Retry, http: httpx.Client | None = None) -> None:
        self._key = key
        self._retry = retry
        # No redirects: the key is for api.fal.ai only.
        self._http = http or httpx.Client(timeout=httpx.Timeout(60.0, connect=15.0), follow_redirects=False)

    def since(self, app: str, start: datetime) -> list[dict[str, Any]]:
        """The requests fal lists on `app` since `start`, with their inputs and outputs."""
        params: dict[str, Any] = {
            "endpoint_id": app,
            "start": start.isoformat(),
            "expand": "payloads",
            "limit": 100,
        }
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = self._page(params, f"listing fal's requests on {app}")
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                break
            params["cursor"] = cursor
        return items

    def find(self, app: str, request_id: str) -> dict[str, Any] | None:
        """The request in fal's list (the last 90 days), None when it is not there."""
        params = {"endpoint_id": app, "request_id": request_id, "expand": "payloads", "limit": 10}
        page = self._page(params, f"looking up fal request {request_id}")
        return next((i for i in page["items"] if i.get("request_id") == request_id), None)

    def _page(self, params: dict[str, Any], what: str) -> dict[str, Any]:
        def get() -> dict[str, Any]:
            response = self._http.get(
                f"{PLATFORM_API}/models/requests/by-endpoint",
                params=params,
                headers={"Authorization": f"Key {self._key}", "Accept": "application/json"},
            )
            if response.status_code == 403:
                raise MissingCredentials(
                    "fal's Platform API refused the key in FAL_KEY (HTTP 403): the key lacks the scope "
                    "needed to read the account's request list. Create a key with the ADMIN scope at "
                    "https://fal.ai/dashboard/keys and set it in FAL_KEY"
                )
            if response.status_code >= 400:
                raise error_for_status(
                    response.status_code,
                    response.text[:300],
                    provider="fal",
                    key_env="FAL_KEY",
                    secrets=(self._key,),
                )
            try:
                body = response.json()
            except ValueError:
                body = None
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise bad_response("fal", "a request list", describe_body(response))
            return dict(body)

        def classify(exc: Exception) -> ContentgenError | None:
            return error_for_transport(exc, provider="fal")

        page: dict[str, Any] = self._retry.call(get, classify=classify, what=what)
        return page


def succeeded(item: dict[str, Any]) -> bool:
    code = item.get("status_code")
    return isinstance(code, int) and 200 <= code < 300


def in_flight(item: dict[str, Any]) -> bool:
    """Queued or running: listed before it ended, without a status code."""
    return item.get("status_code") is None


# --- recognising our request among the account's -------------------------------------------


def without_queries(value: Any) -> Any:
    """`value` with every URL's query string and fragment removed (presigned links are signed anew
    by every attempt, and a signature has no place in a checkpoint)."""
    if isinstance(value, dict):
        return {k: without_queries(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_queries(v) for v in value]
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return value.split("#", 1)[0].split("?", 1)[0]
    return value


SAME, REWRITTEN, DIFFERS = 0, 1, 2


def compare(ours: Any, theirs: Any) -> int:
    """How fal's json_input `theirs` stands to the input we sent: SAME (every field we sent is
    there with our value; fields fal added are ignored), REWRITTEN (the same but for URLs fal
    may have rewritten) or DIFFERS."""
    if isinstance(ours, dict):
        return _compare_fields(ours, theirs)
    if isinstance(ours, list):
        return _compare_items(ours, theirs)
    if isinstance(ours, str) and ours.startswith(("https://", "http://")):
        return _compare_url(ours, theirs)
    return _compare_value(ours, theirs)


def _compare_fields(ours: dict[str, Any], theirs: Any) -> int:
    """Each field we sent (but nulls) against fal's; the fields fal added are ignored."""
    if not isinstance(theirs, dict):
        return DIFFERS
    return max(
        (compare(v, theirs[k]) if k in theirs else DIFFERS for k, v in ours.items() if v is not None),
        default=SAME,
    )


def _compare_items(ours: list[Any], theirs: Any) -> int:
    if not isinstance(theirs, list) or len(ours) != len(theirs):
        return DIFFERS
    return max((compare(a, b) for a, b in zip(ours, theirs, strict=True)), default=SAME)


def _compare_url(ours: str, theirs: Any) -> int:
    """A URL we sent: SAME where fal's is it but for a query string, else REWRITTEN (fal may
    rewrite the URLs it was sent)."""
    if not isinstance(theirs, str):
        return DIFFERS
    return SAME if without_queries(theirs) == ours else REWRITTEN


def _compare_value(ours: Any, theirs: Any) -> int:
    """A scalar: a number as a number (1 and 1.0 are the same), a boolean only as a boolean."""
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return SAME if ours is theirs else DIFFERS
    if isinstance(ours, int | float) and isinstance(theirs, int | float):
        return SAME if float(ours) == float(theirs) else DIFFERS
    return SAME if ours == theirs else DIFFERS


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass
class Verdict:
    """What fal's list says about a lost submit."""

    found: dict[str, Any] | None = None  # exactly one best candidate
    rivals: list[dict[str, Any]] = field(default_factory=list)  # several fit equally well
    blind: int = 0  # candidates listed without their input
    listed: int = 0  # requests looked at


def recognise(sent: dict[str, Any], items: list[dict[str, Any]], app: str, known: set[str]) -> Verdict:
    """Our lost request among `items`: the candidates are those sent near `sent["at"]` that this
    run does not already know; ranked by how their input compares (SAME before REWRITTEN) and
    then by endpoint (the one we submitted to before a fallback). Adopted only when the best rank
    holds exactly one."""
    at = datetime.fromisoformat(sent["at"])
    ours = sent.get("input")
    verdict = Verdict(listed=len(items))
    ranked: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for item in items:
        if str(item.get("request_id")) in known:
            continue
        sent_at = _when(item.get("sent_at"))
        if sent_at is not None and not at - EARLY <= sent_at <= at + LATE:
            continue
        theirs = item.get("json_input")
        if not isinstance(theirs, dict):
            verdict.blind += 1
            continue
        if ours is not None:
            fit = compare(ours, without_queries(theirs))
        else:  # an intent saved before inputs were kept: its digest only
            fit = SAME if arguments_digest(theirs) == sent.get("digest") else DIFFERS
        if fit == DIFFERS:
            continue
        rerouted = int(bool(item.get("endpoint_id")) and item.get("endpoint_id") != app)
        ranked.setdefault((fit, rerouted), []).append(item)
    if ranked:
        best = ranked[min(ranked)]
        if len(best) == 1:
            verdict.found = best[0]
        else:
            verdict.rivals = best
    return verdict
