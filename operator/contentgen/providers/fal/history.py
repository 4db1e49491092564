"""fal's list of the account's requests: how a lost submit or a forgotten request is found again.

GET https://api.fal.ai/v1/models/requests/by-endpoint (https://fal.ai/docs/platform-apis/v1/
models/requests/by-endpoint) lists the requests made on an endpoint, with the same API key:
request_id, sent_at, ended_at, status_code and, with expand=payloads, json_input and
json_output. The window starts 24 hours back by default, 90 days when a request_id is asked for.
It is sorted by end time, so we read it as listing only requests that have ended: a request
still queued does not show until it finishes, which is why a search may wait.

fal offers no idempotency key, and a submit carries nothing of ours but its input, so a lost
submit is recognised by its input: the digest of the arguments with URL query strings removed
(presigned links are signed anew by every attempt).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import httpx

from contentgen.errors import ContentgenError

from ..retry import Retry, bad_response, describe_body, error_for_status, error_for_transport, redact

PLATFORM_API = "https://api.fal.ai/v1"
MAX_PAGES = 20  # 2 000 requests: beyond that a search is not worth making


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
        """The ended requests on `app` sent since `start`, with their inputs and outputs."""
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
