"""Erasing a record's copies at its provider, for `assets delete`.

- AssemblyAI keeps every transcript until it is deleted: DELETE /v2/transcript/{id} removes its
  data, and a file sent to /v2/upload is deleted with it
  (https://assemblyai.com/docs/api-reference/transcripts/delete). Done for every transcript the
  record's cost counted (status.cost.countedRequests).
- fal keeps request payloads 30 days by default and input uploads and output files on its CDN
  (https://fal.ai/docs/documentation/model-apis/media-expiration). Not erased here; the report
  says so, with where to erase them by hand.

Nothing here raises: what could not be erased is reported, line by line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

ASSEMBLYAI_API = "https://api.assemblyai.com"


@dataclass
class Erasure:
    erased: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # what could not be erased, and why


def erase_provider_copies(
    record: Mapping[str, Any], env: Mapping[str, str] | None = None, http: httpx.Client | None = None
) -> Erasure:
    """Deletes what the provider of `record` (a catalog record) still holds, where it can."""
    env = os.environ if env is None else env
    provider = str(record.get("provider") or "")
    requests = [str(r) for r in ((record.get("cost") or {}).get("countedRequests") or []) if r]
    result = Erasure()
    if provider == "assemblyai":
        key = env.get("ASSEMBLYAI_API_KEY", "").strip()
        for transcript_id in requests:
            if not key:
                result.kept.append(f"AssemblyAI transcript {transcript_id}: ASSEMBLYAI_API_KEY is not set")
                continue
            result_line = _delete_transcript(transcript_id, key, http)
            (result.erased if result_line is None else result.kept).append(
                f"AssemblyAI transcript {transcript_id}" + ("" if result_line is None else f": {result_line}")
            )
    elif provider == "fal" and requests:
        result.kept.append(
            f"fal requests {', '.join(requests)}: fal keeps their inputs and outputs (30 days by default) "
            "and the files on its CDN until they expire; delete them at https://fal.ai/dashboard"
        )
    return result


def _delete_transcript(transcript_id: str, key: str, http: httpx.Client | None) -> str | None:
    """None when AssemblyAI no longer holds it; else why it could not be deleted."""
    client = http or httpx.Client(timeout=30.0)
    try:
        response = client.delete(
            f"{ASSEMBLYAI_API}/v2/transcript/{transcript_id}", headers={"authorization": key}
        )
    except httpx.HTTPError as exc:
        return f"could not reach AssemblyAI ({type(exc).__name__}); run the delete again"
    finally:
        if http is None:
            client.close()
    if response.status_code in (200, 400, 404):  # deleted, or already unknown to AssemblyAI
        return None
    return f"AssemblyAI answered HTTP {response.status_code}; run the delete again"
