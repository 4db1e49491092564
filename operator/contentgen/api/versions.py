"""Versions in a resource's status (wire form), the same for every kind: pure helpers that the
operator and `contentgen run` share.

Every run gets a version number of its own (`status.runVersion`), one more than any number used
before, whether that run succeeded or not: its outputs go under that version's prefix, so no run
writes over another's objects. A run that succeeds becomes that version in `status.versions`.

Statuses from before versions (0.1) held an ImageGeneration's images or a Transcription's
transcript without a version: they count as version 1 (`adopt_legacy`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .kinds import KINDS
from .providers import placeholders

LEGACY_VERSION = 1
# A status is one object in etcd (1.5 MiB at most, by default), written on every change: it keeps
# the newest MAX_STATUS_VERSIONS versions (olderVersions counts the rest), and of a version older
# than the newest DETAILED_STATUS_VERSIONS it leaves out what its kind declares bulky (Kind.bulky:
# a LoRA version's likeness report, up to 20 checkpoints' scores, and its training loss curve; a
# video's frame scores and reasons, and its picture's LoRAs). The catalog keeps every version whole
# (a version, or a field, the status no longer lists stays in its record), the store each
# version's result.json and likeness.json.
MAX_STATUS_VERSIONS = 100
DETAILED_STATUS_VERSIONS = 10


def version_numbers(status: dict[str, Any]) -> list[int]:
    return sorted(int(v.get("version") or 0) for v in status.get("versions") or [])


def _legacy(kind: str, status: dict[str, Any]) -> dict[str, Any] | None:
    """The outputs in the status that no version holds (a status written before versions), as
    its kind declares them (Kind.legacy); None for none."""
    declared = KINDS.get(kind)
    if status.get("versions") or declared is None:
        return None
    return declared.legacy(status)


def legacy_outputs(kind: str, status: dict[str, Any]) -> bool:
    """Outputs in the status that no version holds (a status written before versions)."""
    return _legacy(kind, status) is not None


def adopt_legacy(kind: str, status: dict[str, Any]) -> dict[str, Any]:
    """`status` with outputs from before versions as version 1 (unchanged when there are none)."""
    outputs = _legacy(kind, status)
    if outputs is None:
        return status
    made = status.get("completedAt") or status.get("startedAt")
    entry: dict[str, Any] = {"version": LEGACY_VERSION, "createdAt": made}
    if status.get("phase") == "Succeeded":
        entry["generation"] = int(status.get("observedGeneration") or 0)
    entry.update(outputs)
    entry["placeholder"] = placeholders(str(outputs.get("provider") or ""))
    adopted = {**status, "versions": [{k: v for k, v in entry.items() if v is not None}]}
    adopted["latestVersion"] = LEGACY_VERSION
    return adopted


def highest_version(kind: str, status: dict[str, Any]) -> int:
    """The highest version number any run of this status used (0 for none)."""
    numbers = [
        int(status.get("runVersion") or 0),
        int(status.get("latestVersion") or 0),
        *version_numbers(status),
    ]
    if legacy_outputs(kind, status):
        numbers.append(LEGACY_VERSION)
    return max(numbers)


def next_version(kind: str, status: dict[str, Any], stored: int = 0) -> int:
    """The number of the next run: one more than any used so far, in the status or (`stored`,
    the highest found in the store) by an earlier run whose status did not keep it."""
    return max(highest_version(kind, status), stored) + 1


def add_version(kind: str, status: dict[str, Any], entry: dict[str, Any]) -> None:
    """Add a version (wire form) to `status`, replacing one with the same number, within the
    bounds above; latestVersion and the latest outputs follow the newest."""
    adopted = adopt_legacy(kind, status)
    if adopted is not status:
        status.update(adopted)
    others = [v for v in status.get("versions") or [] if v.get("version") != entry["version"]]
    versions = sorted([*others, entry], key=lambda v: int(v["version"]))
    dropped = max(0, len(versions) - MAX_STATUS_VERSIONS)
    if dropped:
        status["olderVersions"] = int(status.get("olderVersions") or 0) + dropped
    versions = versions[dropped:]
    older = len(versions) - DETAILED_STATUS_VERSIONS
    declared = KINDS.get(kind)
    bulky, latest = (declared.bulky, declared.latest) if declared is not None else ((), ())
    status["versions"] = [
        without_fields(version, bulky) if n < older else version for n, version in enumerate(versions)
    ]
    newest = status["versions"][-1]
    status["latestVersion"] = int(newest["version"])
    for field in latest:
        status[field] = newest.get(field, [] if field in ("images", "loras") else None)
        if status[field] is None:
            del status[field]


def without_fields(version: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """`version` (or a spec) without the fields at `paths` (dotted: a field of a field), copied
    where changed."""
    slim = dict(version)
    for path in paths:
        head, _, rest = path.partition(".")
        if head not in slim:
            continue
        if not rest:
            del slim[head]
        elif isinstance(slim[head], dict):
            slim[head] = without_fields(slim[head], (rest,))
    return slim


def numbered(entries: Iterable[dict[str, Any]], number: Any) -> dict[str, Any] | None:
    """The entry of `entries` (versions, deleted versions) numbered `number` (an int, or a number
    as the wire has it), or None: the one way a version is found."""
    if number is None:
        return None
    wanted = int(number)
    return next((v for v in entries if int(v["version"]) == wanted), None)


def version_entry(holder: Mapping[str, Any], number: Any) -> dict[str, Any] | None:
    """The version numbered `number` of `holder` (a catalog record, a resource's status), or None."""
    return numbered(holder.get("versions") or [], number)


def set_version_cost(status: dict[str, Any], version: int, cost_usd: float | None) -> None:
    """What version `version`'s run cost (unknown: left unset)."""
    if cost_usd is None:
        return
    for entry in status.get("versions") or []:
        if entry.get("version") == version:
            entry["costUsd"] = round(float(cost_usd), 6)
