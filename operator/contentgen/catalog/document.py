"""The catalog document: one per resource uid, written by the operator (in the cluster) or by
`contentgen run` (on a laptop), read by `contentgen assets` and the HTTP API.

    _id / jobId      the resource's uid
    type, kind       lora-training | image-generation | transcription, and the Kubernetes kind
    name, namespace, owner, provider, tags, description
    status           Pending | Running | Succeeded | Failed (the resource's phase), or Deleted
    progress, stage, message, error {reason, message}
    generation       the spec generation the record describes
    spec             the spec snapshot the latest run used
    artifacts        [{uri, sizeBytes, sha256, contentType}] of every stored output still current
    totalBytes       their sum (for storage statistics)
    placeholder      true when the offline provider made the outputs
    cost             the resource's status.cost: {estimatedUsd, actualUsd, byMonth {YYYY-MM: USD}, ...}
    LoraTraining:    triggerWord, versions [LoraVersion], latestVersion, latestModelUri
                     (versions keep their dataset, source video and contact sheet: lineage)
    ImageGeneration: prompt, model, images [GeneratedImage with thumbnailUri], loras [ResolvedLora]
                     (the LoRAs used: name, uid, version), loraUids and loraVersions ("uid/vN")
                     for finding every image made with a LoRA or one of its versions
    Transcription:   transcript {jsonUri, textUri, wordCount, durationSeconds, speakers, languageCode},
                     wordCount, durationSeconds, transcriptText (the first 20 000 characters)
    sourceUrl        LoraTraining and Transcription: the source of the latest run
    searchText       lowercased name, tags, description, prompt, trigger word and transcript text
    createdAt, updatedAt, startedAt, completedAt, deletedAt   (BSON dates)

Building it is a pure function of the resource, its status and the latest run result, so the
operator and local runs write the same thing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contentgen.api import KINDS, RunResult, parse_timestamp

COLLECTION = "jobs"
DELETED = "Deleted"
SEARCH_FIELDS = ("name", "description", "prompt", "triggerWord", "transcriptText")


def _search_text(doc: dict[str, Any]) -> str:
    parts = [str(doc.get(f) or "") for f in SEARCH_FIELDS] + list(doc.get("tags") or [])
    return " ".join(p for p in parts if p).lower()


def _artifacts(
    doc: dict[str, Any], result: RunResult | None, previous: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Current artifacts: for LoRAs every version's (versions accumulate); otherwise the latest run's."""
    mine = [a.wire() for a in (result.artifacts if result else [])]
    if doc["type"] != "lora-training" or previous is None:
        return mine or list((previous or {}).get("artifacts", []))
    merged = {a["uri"]: a for a in previous.get("artifacts", [])}
    merged.update({a["uri"]: a for a in mine})
    return list(merged.values())


def catalog_document(
    *,
    kind: str,
    name: str,
    namespace: str,
    uid: str,
    generation: int,
    spec: dict[str, Any],
    status: dict[str, Any],
    created_at: datetime,
    now: datetime,
    result: RunResult | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The document for a resource. `status` is the resource's status (wire form); `result` the
    latest run's result when one just finished; `previous` the stored document, if any."""
    info = KINDS[kind]
    error = None
    if status.get("phase") == "Failed":
        ready: dict[str, Any] = next(
            (c for c in status.get("conditions", []) if c.get("type") == "Ready"), {}
        )
        error = {"reason": ready.get("reason", "Failed"), "message": status.get("message", "")}
    doc: dict[str, Any] = {
        "_id": uid,
        "jobId": uid,
        "type": info.catalog_type,
        "kind": kind,
        "name": name,
        "namespace": namespace,
        "owner": spec.get("owner", ""),
        "provider": spec.get("provider", ""),
        "tags": list(spec.get("tags") or []),
        "description": spec.get("description", ""),
        "status": status.get("phase") or "Pending",
        "progress": int(status.get("progress") or 0),
        "stage": status.get("stage", ""),
        "message": status.get("message", ""),
        "error": error,
        "generation": generation,
        "spec": spec,
        "createdAt": (previous or {}).get("createdAt", created_at),
        "updatedAt": now,
        "startedAt": parse_timestamp(status.get("startedAt")),
        "completedAt": parse_timestamp(status.get("completedAt")),
        "deletedAt": None,
        "placeholder": bool(result.placeholder)
        if result
        else bool((previous or {}).get("placeholder", False)),
        "cost": status.get("cost") or (previous or {}).get("cost"),
    }
    if isinstance(spec.get("source"), dict):  # the input of the latest run (lineage)
        doc["sourceUrl"] = spec["source"].get("url", "")
    if kind == "LoraTraining":
        versions = status.get("versions") or []
        doc["triggerWord"] = spec.get("triggerWord", "")
        doc["versions"] = versions
        doc["latestVersion"] = status.get("latestVersion", 0)
        doc["latestModelUri"] = versions[-1]["modelUri"] if versions else ""
        doc["dataset"] = status.get("dataset") or (previous or {}).get("dataset")
    elif kind == "ImageGeneration":
        doc["prompt"] = spec.get("prompt", "")
        doc["model"] = spec.get("model", "")
        doc["images"] = status.get("images") or []
        loras = status.get("loras") or []
        doc["loras"] = loras
        doc["loraUids"] = sorted({lora["uid"] for lora in loras if lora.get("uid")})
        doc["loraVersions"] = sorted(
            {f"{lora['uid']}/v{lora.get('version', 0)}" for lora in loras if lora.get("uid")}
        )
    else:
        transcript = status.get("transcript") or {}
        doc["transcript"] = transcript
        doc["wordCount"] = transcript.get("wordCount", 0)
        doc["durationSeconds"] = transcript.get("durationSeconds", 0.0)
        text = result.transcript_text if result and result.transcript_text is not None else None
        doc["transcriptText"] = text if text is not None else (previous or {}).get("transcriptText", "")
    doc["artifacts"] = _artifacts(doc, result, previous)
    doc["totalBytes"] = sum(int(a.get("sizeBytes", 0)) for a in doc["artifacts"])
    doc["searchText"] = _search_text(doc)
    return doc
