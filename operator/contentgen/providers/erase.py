"""Erasing a record's copies at its provider, for `assets delete`.

- AssemblyAI keeps every transcript until it is deleted: DELETE /v2/transcript/{id} removes its
  data, and a file sent to /v2/upload is deleted with it
  (https://assemblyai.com/docs/api-reference/transcripts/delete).
- fal keeps a request's input and output payloads (30 days by default) and its files on its CDN
  (https://fal.ai/docs/documentation/model-apis/inference/payloads). DELETE https://api.fal.ai/v1/
  models/requests/{request_id}/payloads, with an ADMIN key, deletes the payloads and "the CDN files
  found in the output of the request"; "the CDN files found in the input of the request are not
  deleted, as they may be used by other requests" (the dataset archive and caption images we
  uploaded). It answers {cdn_delete_results: [{link, exception}]}, one per output file, and takes
  an Idempotency-Key (https://fal.ai/docs/platform-apis/v1/models/requests/payloads).

Which requests: every one the record's runs used that is still known: the request ids in the
stored results' usage (every version's), in the run's checkpoints (those that failed or were
cancelled too, while temp/ keeps them) and in status.cost.countedRequests (`request_ids`, pure).
Nothing here raises: what could not be erased is reported, line by line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from contentgen.errors import ContentgenError

from .retry import Retry, error_for_status, error_for_transport, redact

ASSEMBLYAI_API = "https://api.assemblyai.com"
FAL_PLATFORM_API = "https://api.fal.ai/v1"
FAL_INPUTS_KEPT = (
    "fal does not delete the files uploaded to its CDN as inputs (the dataset archive, the images "
    'sent for captions): "they may be used by other requests" '
    "(https://fal.ai/docs/documentation/model-apis/inference/payloads); they stay until fal's CDN "
    "expires them"
)


@dataclass
class Erasure:
    erased: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # what could not be erased, and why


def request_ids(record: Mapping[str, Any], documents: Iterable[Any] = ()) -> list[tuple[str, str]]:
    """(provider, request id) of every request the record's runs used, as far as they are known:
    `documents` are its stored results (their usage) and its run's checkpoints (a request per
    document, or per part of one; the ids of requests that failed too), plus the record's
    countedRequests. In first-seen order, without repeats; offline ones left out."""
    found: dict[tuple[str, str], None] = {}

    def add(provider: Any, request: Any) -> None:
        if isinstance(provider, str) and isinstance(request, str) and request and provider != "offline":
            found.setdefault((provider, request), None)

    for document in documents:
        if not isinstance(document, Mapping):
            continue
        for line in document.get("usage") or []:
            if isinstance(line, Mapping):
                add(line.get("provider"), line.get("request"))
        parts = [document, *(v for v in document.values() if isinstance(v, Mapping))]
        for part in parts:
            provider = part.get("provider")
            for key in ("request_id", "transcript_id"):
                add(provider, part.get(key))
            for failed in part.get("failed") or []:
                add(provider, failed)
    provider = record.get("provider")
    for request in (record.get("cost") or {}).get("countedRequests") or []:
        add(provider, request)
    return list(found)


def erase_provider_copies(
    record: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    http: httpx.Client | None = None,
    *,
    documents: Iterable[Any] = (),
    retry: Retry | None = None,
) -> Erasure:
    """Deletes what the providers still hold of `record` (a catalog record) and of the requests
    in `documents` (see `request_ids`), where they offer a way to."""
    env = os.environ if env is None else env
    retry = retry or Retry(attempts=3, base_delay=1.0, max_delay=10.0, max_retry_after=30.0)
    result = Erasure()
    requests = request_ids(record, documents)
    client = http or httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False)
    try:
        for provider, request in requests:
            if provider == "assemblyai":
                _assemblyai(request, env.get("ASSEMBLYAI_API_KEY", "").strip(), client, result)
            elif provider == "fal":
                _fal(request, env.get("FAL_KEY", "").strip(), client, retry, result)
            else:
                result.kept.append(f"{provider} request {request}: no way to erase it is known")
    finally:
        if http is None:
            client.close()
    if any(provider == "fal" for provider, _ in requests):
        result.kept.append(FAL_INPUTS_KEPT)
    return result


# --- AssemblyAI ------------------------------------------------------------------------------------


def _assemblyai(transcript_id: str, key: str, http: httpx.Client, result: Erasure) -> None:
    what = f"AssemblyAI transcript {transcript_id}"
    if not key:
        result.kept.append(f"{what}: ASSEMBLYAI_API_KEY is not set")
        return
    try:
        response = http.delete(
            f"{ASSEMBLYAI_API}/v2/transcript/{transcript_id}", headers={"authorization": key}
        )
    except httpx.HTTPError as exc:
        result.kept.append(f"{what}: could not reach AssemblyAI ({type(exc).__name__}); run the delete again")
        return
    if response.status_code in (200, 400, 404):  # deleted, or already unknown to AssemblyAI
        result.erased.append(what)
    else:
        result.kept.append(f"{what}: AssemblyAI answered HTTP {response.status_code}; run the delete again")


# --- fal -------------------------------------------------------------------------------------------


def _fal(request_id: str, key: str, http: httpx.Client, retry: Retry, result: Erasure) -> None:
    what = f"fal request {request_id}"
    if not key:
        result.kept.append(f"{what}: FAL_KEY is not set; its payloads and output files stay at fal")
        return

    def delete() -> httpx.Response:
        response = http.delete(
            f"{FAL_PLATFORM_API}/models/requests/{request_id}/payloads",
            # the same key for every try: fal answers a repeated delete from its record (10 minutes)
            headers={"Authorization": f"Key {key}", "Idempotency-Key": f"contentgen-erase-{request_id}"},
        )
        if response.status_code in (429, 408) or response.status_code >= 500:
            raise error_for_status(
                response.status_code, response.text[:200], provider="fal", key_env="FAL_KEY", secrets=(key,)
            )
        return response

    try:
        response = retry.call(
            delete,
            classify=lambda exc: error_for_transport(exc, provider="fal"),
            what=f"deleting the payloads of {what}",
        )
    except ContentgenError as exc:
        result.kept.append(f"{what}: {redact(str(exc), (key,))}; run the delete again")
        return
    status = response.status_code
    if status == 404:  # fal does not know it (any more): nothing of it is left to delete
        result.erased.append(f"{what} (fal no longer holds it)")
        return
    if status == 403:
        result.kept.append(
            f"{what}: fal refused the key in FAL_KEY (HTTP 403): deleting payloads needs a key with the "
            "ADMIN scope; create one at https://fal.ai/dashboard/keys, set it in FAL_KEY and run the delete "
            "again"
        )
        return
    if status >= 400:
        detail = redact(response.text[:200], (key,))
        result.kept.append(f"{what}: fal answered HTTP {status} ({detail}); run the delete again")
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    files = body.get("cdn_delete_results") if isinstance(body, dict) else None
    if not isinstance(files, list):
        result.kept.append(f"{what}: fal's answer did not say what it deleted; run the delete again")
        return
    failed = [f for f in files if isinstance(f, dict) and f.get("exception")]
    deleted = len(files) - len(failed)
    result.erased.append(f"{what}: its payloads and {deleted} output file{'' if deleted == 1 else 's'}")
    for item in failed:
        link = redact(str(item.get("link") or "an output file"))
        result.kept.append(
            f"{what}: fal could not delete {link} ({item.get('exception')}); run the delete again"
        )
