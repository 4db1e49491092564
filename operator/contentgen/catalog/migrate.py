"""Documents written before versions (schema 1, up to 0.1), read as the current shape.

Before versions, a document held the latest run's phase, progress, stage, message and error at its
top level, in `status`; an ImageGeneration its latest images and a Transcription its latest
transcript, unversioned (generated-images/{owner}/{uid}/image_1.png): those are version 1 here
(each kind's legacy_outputs, catalog/kinds/). A LoraTraining kept its versions as now
(legacy_versions). `status: Deleted` meant its stored objects were removed.

Reading upgrades a document in memory (`upgrade`); the next write stores the current shape. The
queries match both shapes (queries.py), so a catalog from before versions is read correctly
without being rewritten.
"""

from __future__ import annotations

from typing import Any

from contentgen.api import parse_timestamp

from .kinds import CATALOG_KINDS

SCHEMA = 2
_DELETED = "Deleted"
_UNFINISHED = ("Pending", "Running")


def _artifacts_under(doc: dict[str, Any], version: int) -> list[dict[str, Any]]:
    marker = f"/v{version}/"
    return [a for a in doc.get("artifacts") or [] if marker in str(a.get("uri", ""))]


def _legacy_versions(doc: dict[str, Any], succeeded: bool) -> list[dict[str, Any]]:
    declared = CATALOG_KINDS.get(str(doc.get("kind")))
    if declared is None:
        return []
    if declared.legacy_versions:
        return [_legacy_version(doc, stored, succeeded) for stored in doc.get("versions") or []]
    made = _only_version(doc, succeeded)
    outputs = declared.legacy_outputs(doc)
    return [{**made, **outputs}] if outputs else []


def _legacy_version(doc: dict[str, Any], stored: dict[str, Any], succeeded: bool) -> dict[str, Any]:
    """A version a kind that kept versions before the current shape stored, in the current shape."""
    entry = dict(stored)
    entry["createdAt"] = parse_timestamp(entry.get("createdAt"))
    entry.setdefault("artifacts", _artifacts_under(doc, int(entry["version"])))
    ran_spec = succeeded and entry.get("generation") == int(doc.get("generation") or 0)
    entry.setdefault("spec", doc.get("spec") if ran_spec else None)
    return entry


def _only_version(doc: dict[str, Any], succeeded: bool) -> dict[str, Any]:
    """The one version a record written before versions holds, but the kind's outputs."""
    cost = doc.get("cost") or {}
    return {
        "version": 1,
        "generation": int(doc.get("generation") or 0) if succeeded else 0,
        "provider": doc.get("provider", ""),
        "placeholder": bool(doc.get("placeholder")),
        "startedAt": doc.get("startedAt") if succeeded else None,
        "createdAt": doc.get("completedAt") if succeeded else doc.get("updatedAt"),
        "costUsd": cost.get("actualUsd") if succeeded else None,
        "spec": doc.get("spec") if succeeded else None,
        "artifacts": list(doc.get("artifacts") or []),
    }


def upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` in the current shape (a current document is returned as it is)."""
    if int(doc.get("schema") or 0) >= SCHEMA:
        return doc
    gone = str(doc.get("status") or "Pending") == _DELETED
    phase = _legacy_phase(doc, gone)
    versions = _legacy_versions(doc, phase == "Succeeded")
    run = _legacy_run(doc, phase, versions)
    deleted, deleted_versions = _removed(doc, versions) if gone else (None, [])
    versions = [] if gone else versions  # its objects were removed: what it made is history now
    upgraded = {
        **doc,
        "schema": SCHEMA,
        "latestRun": run,
        "versions": versions,
        "latestVersion": max((int(v["version"]) for v in versions), default=0),
        "deletedVersions": deleted_versions,
        "runs": [] if phase in _UNFINISHED else [{k: run[k] for k in _RUN_KEYS}],
        "deleted": deleted,
        "status": _DELETED if gone else ("Succeeded" if versions else phase),
    }
    for top in ("progress", "stage", "message", "error"):
        upgraded.pop(top, None)
    return upgraded


def _legacy_phase(doc: dict[str, Any], gone: bool) -> str:
    """The run's phase: the record's status, or for a deleted record, how its run had ended."""
    if not gone:
        return str(doc.get("status") or "Pending")
    return "Failed" if doc.get("error") else ("Succeeded" if doc.get("completedAt") else "Cancelled")


def _legacy_run(doc: dict[str, Any], phase: str, versions: list[dict[str, Any]]) -> dict[str, Any]:
    """The record's one run, from the fields a record had at its top before runs."""
    cost = doc.get("cost") or {}
    return {
        "version": max((int(v["version"]) for v in versions), default=0) if phase == "Succeeded" else 0,
        "generation": int(doc.get("generation") or 0),
        "phase": phase,
        "progress": int(doc.get("progress") or 0),
        "stage": str(doc.get("stage") or ""),
        "message": str(doc.get("message") or ""),
        "error": doc.get("error"),
        "jobName": "",
        "startedAt": doc.get("startedAt"),
        "completedAt": doc.get("completedAt"),
        "estimatedUsd": cost.get("estimatedUsd"),
        "actualUsd": cost.get("actualUsd"),
    }


def _removed(
    doc: dict[str, Any], versions: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A deleted record's deletion, and its versions as deleted ones."""
    deleted = {"at": doc.get("deletedAt"), "policy": "Delete", "outputsKept": False, "by": ""}
    deleted_versions = [
        {"version": v["version"], "generation": v.get("generation", 0), "createdAt": v.get("createdAt"),
         "deletedAt": doc.get("deletedAt"), "by": ""}
        for v in versions
    ]  # fmt: skip
    return deleted, deleted_versions


_RUN_KEYS = ("version", "generation", "phase", "error", "startedAt", "completedAt", "actualUsd")
