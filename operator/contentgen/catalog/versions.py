"""A record's usable versions: what a resource's status says of each (status.versions), with what
only the catalog keeps: the spec snapshot each ran, every object it stored, a transcript's text.

Each version entry:
    version, generation, provider, placeholder, startedAt, createdAt (its end), costUsd
    spec             the spec snapshot its run ran (null when no longer known)
    artifacts        [{uri, sizeBytes, sha256, contentType}] every object it stored
    LoraTraining:    modelUri, finalModelUri, chosenStep, configUri, sizeBytes, sha256, datasetUri,
                     sourceUrl, contactSheetUri, contactSheetThumbnailUri, frames, triggerWord,
                     trainingModel, steps, dataset, likeness
    ImageGeneration: prompt, model, images [{uri, width, height, seed, thumbnailUri, ...}], loras,
                     memoryPlan
    Transcription:   transcript {jsonUri, textUri, wordCount, ...}, sourceUrl, transcriptText,
                     transcriptTimes {chars, seconds}: where in transcriptText words start, and
                     when they are said (every fifth word: transcripts.searchable)
    VideoGeneration: prompt, model, video {uri, durationSeconds, frames, fps, width, height, codec,
                     posterUri, thumbnailUri, stripUri, ...}, image (the picture it animates), loras
    LoraEvaluation:  lora {name, uid, version, ...}, evaluation, likeness, recordUri (its files are
                     the LoRA version's: its artifacts list none of them)
"""

from __future__ import annotations

import hashlib
from typing import Any

from contentgen.api import RunResult, parse_timestamp
from contentgen.store.results import result_document

from .kinds import catalog_kind
from .resource import ResourceState


def _derived_artifacts(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects a version's status entry names, when no stored result lists them all."""
    named: list[dict[str, Any]] = []

    def add(uri: str | None, size: int = 0, sha256: str = "", content_type: str = "") -> None:
        if uri:
            item: dict[str, Any] = {"uri": uri, "sizeBytes": int(size or 0)}
            if sha256:
                item["sha256"] = sha256
            if content_type:
                item["contentType"] = content_type
            named.append(item)

    add(entry.get("modelUri"), entry.get("sizeBytes", 0), entry.get("sha256", ""), "application/octet-stream")
    add(entry.get("configUri"), content_type="application/json")
    add(entry.get("datasetUri"), content_type="application/zip")
    add(entry.get("contactSheetUri"), content_type="image/jpeg")
    add(entry.get("contactSheetThumbnailUri"), content_type="image/jpeg")
    for image in entry.get("images") or []:
        add(image["uri"], image.get("sizeBytes", 0), image.get("sha256", ""), image.get("contentType", ""))
        add(image.get("thumbnailUri"), content_type="image/jpeg")
    video = entry.get("video") or {}
    add(video.get("uri"), video.get("sizeBytes", 0), video.get("sha256", ""), video.get("contentType", ""))
    for derived in ("posterUri", "thumbnailUri", "stripUri"):
        add(video.get(derived), content_type="image/jpeg")
    transcript = entry.get("transcript") or {}
    add(transcript.get("jsonUri"), content_type="application/json")
    add(transcript.get("textUri"), content_type="text/plain; charset=utf-8")
    return named


def _result_object(result: RunResult) -> list[dict[str, Any]]:
    """The version's result document (result.json) as an object it stored: the one object a run's
    result cannot list itself (its size would change the document)."""
    if not result.result_uri or result.truncated:
        return []
    document = result_document(result)
    return [
        {
            "uri": result.result_uri,
            "sizeBytes": len(document),
            "sha256": hashlib.sha256(document).hexdigest(),
            "contentType": "application/json",
        }
    ]


# A version's fields whose parts an older version's status leaves out (api/versions.py _BULKY).
_SLIMMED = ("video", "image")


def _deep(before: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """`now`, with what `before` has that `now` leaves out, field by field."""
    merged = {**before, **now}
    for key, value in now.items():
        if isinstance(value, dict) and isinstance(before.get(key), dict):
            merged[key] = _deep(before[key], value)
    return merged


# A version's fields that a resource's annotations set in its status (a promoted checkpoint, a
# chosen verdict): where the status's entry has none, the annotation no longer asks for one.
_ANNOTATED = ("promotion", "verdictChoice")


def _merged(status_entry: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """The status's entry over the stored one's."""
    kept = {k: v for k, v in (before or {}).items() if k not in _ANNOTATED}
    entry = {**kept, **status_entry}
    for nested in _SLIMMED:  # a video version the status slimmed (api/versions.py): the record's stays
        if isinstance((before or {}).get(nested), dict) and isinstance(status_entry.get(nested), dict):
            entry[nested] = _deep(before[nested], status_entry[nested])  # type: ignore[index]
    for moment in ("createdAt", "startedAt"):  # strings in a status, BSON dates in the catalog
        entry[moment] = parse_timestamp(entry.get(moment))
    return entry


def _spec_of(res: ResourceState, entry: dict[str, Any], result: RunResult | None) -> dict[str, Any] | None:
    """The spec snapshot the version ran."""
    spec = result.spec if result is not None and result.spec else entry.get("spec")
    ran_now = entry.get("version") == res.status.get("runVersion")
    if spec is None and ran_now and res.generation == entry.get("generation"):
        spec = res.spec  # the run just recorded, and the resource's spec is still the one it ran
    return spec


def _artifacts(entry: dict[str, Any], result: RunResult | None) -> list[dict[str, Any]]:
    """Every object the version stored: its result's, else the record's, else what its entry
    names; and its re-evaluations' (evaluations.py)."""
    stored = [a.wire() for a in result.artifacts] + _result_object(result) if result is not None else []
    artifacts: list[dict[str, Any]] = stored or entry.get("artifacts") or _derived_artifacts(entry)
    listed = {a["uri"] for a in artifacts}
    for evaluation in entry.get("evaluations") or []:
        artifacts += [a for a in evaluation.get("artifacts") or [] if a["uri"] not in listed]
        listed |= {a["uri"] for a in evaluation.get("artifacts") or []}
    return artifacts


def _entry(
    res: ResourceState,
    status_entry: dict[str, Any],
    before: dict[str, Any] | None,
    result: RunResult | None,
) -> dict[str, Any]:
    entry = _merged(status_entry, before)
    spec = entry["spec"] = _spec_of(res, entry, result)
    entry["artifacts"] = _artifacts(entry, result)
    if result is not None and result.dataset is not None and result.dataset.summary is not None:
        entry["dataset"] = result.dataset.summary.wire()
    if "likeness" not in entry and result is not None and result.lora and result.lora.likeness:
        entry["likeness"] = result.lora.likeness.wire()  # an older version's status leaves it out
    catalog_kind(res.kind).version(entry, spec, result)
    return entry


def version_entries(
    res: ResourceState,
    status: dict[str, Any],
    previous: list[dict[str, Any]],
    removed: set[int],
) -> list[dict[str, Any]]:
    """The record's usable versions: the status's and the stored record's (a version the status
    no longer lists stays), less those whose outputs were removed (`removed`)."""
    stored = {int(v["version"]): v for v in previous}
    entries = dict(stored)
    for status_entry in status.get("versions") or []:
        number = int(status_entry["version"])
        entries[number] = _entry(res, status_entry, stored.get(number), res.results.get(number))
    for number, result in res.results.items():  # stored results of versions nothing else lists
        if number not in entries:
            made = result.model_copy(update={"version": number}).version_entry()
            if made is not None:
                entries[number] = _entry(res, made, None, result)
    return [entries[n] for n in sorted(entries) if n not in removed]


def artifacts_of(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every object of the versions, each once."""
    merged: dict[str, dict[str, Any]] = {}
    for version in versions:
        for artifact in version.get("artifacts") or []:
            merged.setdefault(artifact["uri"], artifact)
    return list(merged.values())
