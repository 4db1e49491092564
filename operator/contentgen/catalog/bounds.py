"""How big a record may grow: a long-lived resource (hundreds of runs) keeps a document far below
MongoDB's 16 MiB limit for one document (`make bench-catalog-size` measures it).

A record keeps in full what its readers list and use: every usable version (its outputs are in
the store), the newest runs, the newest deleted versions, and for the newest versions what only
the catalog has of them. What is left out of older entries stays in the store, in each version's
result document (v{n}/result.json: its spec snapshot, prompt and transcript), and the spend of
every run stays in cost.byMonth:

    runs              the newest MAX_RUNS ended runs; olderRuns counts the ones left out
    deletedVersions   the newest MAX_DELETED_VERSIONS; olderDeletedVersions counts the rest
    versions          all; those older than the newest DETAILED_VERSIONS lose their spec snapshot
                      (null, "no longer known") and transcriptText (and its times), keep OLDER_PROMPT_CHARS
                      of an image prompt (search matches what is kept), and of a LoRA's likeness
                      curve each checkpoint's step, verdict, median and mark (the whole curve is
                      the version's likeness-curve.json)

What is left grows by about a kilobyte per usable version (bench/README.md), so a record reaches
16 MiB only past ten thousand versions; `contentgen assets prune` keeps it smaller.
"""

from __future__ import annotations

from typing import Any

MAX_RUNS = 100
MAX_DELETED_VERSIONS = 100
DETAILED_VERSIONS = 20
OLDER_PROMPT_CHARS = 300


def _run_key(run: dict[str, Any]) -> tuple[int, int, str]:
    started = run.get("startedAt")
    return (int(run.get("version") or 0), int(run.get("generation") or 0), str(started or ""))


def newest_runs(runs: list[dict[str, Any]], latest: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The newest MAX_RUNS of `runs` (oldest first, as given) and how many were left out. The
    latest run is never left out: it is written again on the next write and would be counted twice."""
    keep_always = _run_key(latest)
    dropped, kept = 0, list(runs)
    while len(kept) > MAX_RUNS:
        oldest = next(i for i, r in enumerate(kept) if _run_key(r) != keep_always)
        del kept[oldest]
        dropped += 1
    return kept, dropped


# What an older version keeps of each point of its likeness curve (docs/likeness.md#checkpoints).
CURVE_POINT = ("step", "verdict", "median", "chosen")


# The key orders a point of a curve that _older made can have: CURVE_POINT's, some left out.
_SLIM_POINTS = frozenset(
    tuple(k for i, k in enumerate(CURVE_POINT) if present >> i & 1)
    for present in range(2 ** len(CURVE_POINT))
)
_NO_TIMES: dict[str, list[Any]] = {"chars": [], "seconds": []}


def _slim(version: dict[str, Any]) -> bool:
    """Whether _older would give `version` back as it is, key order included: a version an earlier
    write slimmed. Only looked at, never copied, so a write over a record of a thousand older
    versions does not build them all again."""
    if "spec" not in version or version["spec"] is not None:
        return False
    if version.get("transcriptText", "") != "":
        return False
    times = version.get("transcriptTimes", _NO_TIMES)
    if times != _NO_TIMES or list(times) != list(_NO_TIMES):
        return False
    prompt = version.get("prompt")
    if isinstance(prompt, str) and len(prompt) > OLDER_PROMPT_CHARS:
        return False
    likeness = version.get("likeness")
    if not isinstance(likeness, dict) or not likeness.get("checkpoints"):
        return True
    points = likeness["checkpoints"]
    return isinstance(points, list) and all(isinstance(p, dict) and tuple(p) in _SLIM_POINTS for p in points)


def _older(version: dict[str, Any]) -> dict[str, Any]:
    slim = {**version, "spec": None}
    if "transcriptText" in slim:
        slim["transcriptText"] = ""
    if "transcriptTimes" in slim:
        slim["transcriptTimes"] = {"chars": [], "seconds": []}
    if isinstance(slim.get("prompt"), str):
        slim["prompt"] = slim["prompt"][:OLDER_PROMPT_CHARS]
    likeness = slim.get("likeness")
    if isinstance(likeness, dict) and likeness.get("checkpoints"):
        points = [{k: p[k] for k in CURVE_POINT if k in p} for p in likeness["checkpoints"]]
        slim["likeness"] = {**likeness, "checkpoints": points}
    return slim


def bounded(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` (current shape) within the bounds above; changed in place and returned."""
    doc["runs"], dropped = newest_runs(doc.get("runs") or [], doc["latestRun"])
    doc["olderRuns"] = int(doc.get("olderRuns") or 0) + dropped
    deleted = doc.get("deletedVersions") or []
    extra = max(0, len(deleted) - MAX_DELETED_VERSIONS)
    doc["deletedVersions"] = deleted[extra:]
    doc["olderDeletedVersions"] = int(doc.get("olderDeletedVersions") or 0) + extra
    versions = doc["versions"]
    cut = max(0, len(versions) - DETAILED_VERSIONS)
    doc["versions"] = [v if _slim(v) else _older(v) for v in versions[:cut]] + versions[cut:]
    return doc
