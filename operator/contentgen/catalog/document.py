"""The catalog document: one per resource uid, written by the operator (in the cluster) or by
`contentgen run` (on a laptop), read by `contentgen assets` and the HTTP API. The latest run is
kept apart from the usable versions, so a run that fails or is under way never hides what earlier
runs made.

    _id / jobId      the resource's uid
    schema           2 (documents without it were written before versions: migrate.upgrade reads them)
    rev              how many times it was written; writes are conditional on it (no lost update)
    origin           operator | local: who writes it (the operator's safety net minds its own only)
    type, kind       lora-training | image-generation | transcription | lora-evaluation |
                     video-generation, and the Kubernetes kind
    name, namespace, owner, provider, tags, description
    status           the record's state, what the `status` filter matches: Succeeded when it has a
                     usable version, whatever its latest run did; without one, the latest run's phase
                     (Pending, Running, Failed, Interrupted); Deleted when none of its outputs are kept (its
                     resource is gone without them, or every version was deleted)
    latestRun        {version, generation, phase, progress, stage, message, reason (the Ready
                     condition's: why it waits), error {reason, message},
                     jobName, startedAt, completedAt, estimatedUsd, actualUsd}; phase Pending |
                     Running | Succeeded | Failed | Cancelled (its resource was deleted before it
                     ended) | Interrupted (a laptop's run stopped by Ctrl-C or SIGTERM: the next
                     `contentgen run` of the same spec resumes it), what the `run` filter matches
    versions         the usable versions, oldest first: version, generation, spec (the snapshot it
                     ran; the newest 20 versions' only: bounds.py), startedAt, createdAt (its
                     end), costUsd, provider, placeholder, artifacts, and the kind's outputs (see
                     versions.py)
    latestVersion    the newest usable version (0: none)
    deletedVersions  versions whose outputs were removed (prune, delete): version, generation,
                     createdAt, deletedAt, by; kept for history (the newest 100: bounds.py)
    olderDeletedVersions  how many deleted versions are left out of deletedVersions
    runs             every run that ended, oldest first: version, generation, phase, error,
                     startedAt, completedAt, costUsd (the newest 100: bounds.py)
    olderRuns        how many ended runs are left out of runs
    deleted          {at, policy, outputsKept, by} once the resource is gone (else null); deletedAt
    generation, spec the resource's current spec generation and spec
    artifacts        every stored output of the usable versions; totalBytes their sum
    placeholder      true when the offline provider made the latest version
    cost             the resource's status.cost (byMonth: what every run cost)
    evaluationCost   LoraTraining: what its versions' re-evaluations cost, {byMonth, counted}
                     (evaluations.py); each version keeps its re-evaluations in `evaluations`
    the kind's own fields, each kind's module in kinds/ writes them:
    LoraTraining:    triggerWord, latestModelUri, sourceUrl (the spec's), dataset (the latest run's
                     counts)
    ImageGeneration: prompt, model, images, loras (the latest version's, else the spec's prompt and
                     model); models, loraUids, loraVersions ("uid/vN") over every version: filters
                     and lineage find every image made with a LoRA or one of its versions
    Transcription:   transcript, wordCount, durationSeconds, transcriptText (the latest version's)
    VideoGeneration: prompt, model, video {uri, durationSeconds, frames, fps, width, height, codec,
                     posterUri, thumbnailUri, stripUri}, durationSeconds, image (the picture it
                     animates: an ImageGeneration's name, uid, version, image), loras (the latest
                     version's); models, loraUids, loraVersions, imageUids over every version
    LoraEvaluation:  lora {name, uid, version, modelUri, provider, ...}, evaluation (its number k),
                     likeness (the latest version's); its evaluations are in the LoRA version's
                     history too (evaluations.py)
    sourceUrl        LoraTraining and Transcription: the spec's source
    shares           the grants (api/sharing.py): [{to: owner:NAME | group:NAME, access: read | use,
                     by, at}]; in a cluster the resource's annotation contentgen.io/shared-with
    searchText       lowercased name, tags, description, and every version's prompt, trigger word
                     and transcript text
    createdAt, updatedAt, startedAt, completedAt (the latest run's)   (BSON dates)

Building it is a pure function of the resource (spec and status), the stored document, and the
results of runs that the document does not hold yet, so the operator and local runs write the same.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from contentgen.api import KINDS, parse_timestamp
from contentgen.api.reading import Condition, Count, Reading, Text, condition
from contentgen.api.versions import adopt_legacy

from .bounds import bounded
from .kinds import catalog_kind
from .migrate import SCHEMA, upgrade
from .resource import ResourceState
from .versions import artifacts_of, version_entries

COLLECTION = "jobs"
DELETED = "Deleted"
CANCELLED = "Cancelled"
INTERRUPTED = "Interrupted"  # a laptop's run stopped by a signal (pipeline/local_run.py)
RUN_PHASES = ("Pending", "Running", "Succeeded", "Failed", CANCELLED, INTERRUPTED)
UNFINISHED = ("Pending", "Running")
FAILED_RUNS = ("Failed", INTERRUPTED)  # the ended runs that made no version, with an error
ORIGINS = ("operator", "local")


def record_status(usable: int, run_phase: str, deleted: dict[str, Any] | None) -> str:
    """The record's state (see the module docstring)."""
    if deleted and (not deleted.get("outputsKept") or not usable):
        return DELETED
    if usable:
        return "Succeeded"
    if run_phase in ("Pending", "Running", *FAILED_RUNS):
        return run_phase
    return DELETED  # its runs succeeded, and every version they made was deleted since


class _Spend(Reading):
    estimated_usd: Any = None  # as written: absent stays None
    actual_usd: Any = None


class _PoolPlace(Reading):
    state: Text = ""
    position: Count = 0


class _RunStatus(Reading):
    """What the latest run's record reads of a resource's status."""

    phase: Text = ""
    run_version: Count = 0
    observed_generation: Count = 0
    progress: Count = 0
    stage: Text = ""
    message: Text = ""
    job_name: Text = ""
    started_at: Any = None  # a timestamp as written (a string; a datetime from a laptop's run)
    completed_at: Any = None
    conditions: tuple[Condition, ...] = ()
    cost: _Spend = _Spend()
    pool: _PoolPlace | None = None


def latest_run(raw: dict[str, Any], deleted: dict[str, Any] | None = None) -> dict[str, Any]:
    """The latest run, from a resource's status."""
    status = _RunStatus.of(raw)
    phase = status.phase or "Pending"
    ready = condition(status.conditions, "Ready")
    failed = {"reason": ready.reason or "Failed", "message": status.message}
    run: dict[str, Any] = {
        "version": status.run_version,
        "generation": status.observed_generation,
        "phase": phase,
        "progress": status.progress,
        "stage": status.stage,
        "message": status.message,
        "reason": ready.reason,
        "error": failed if phase in FAILED_RUNS else None,
        "jobName": status.job_name,
        "startedAt": parse_timestamp(status.started_at),
        "completedAt": parse_timestamp(status.completed_at),
        "estimatedUsd": status.cost.estimated_usd,
        "actualUsd": status.cost.actual_usd,
    }
    if status.pool is not None and status.pool.state and phase in UNFINISHED:  # an ended run has no place
        run["pool"] = {"state": status.pool.state, "position": status.pool.position}
    if deleted is not None and phase in UNFINISHED:
        cancel(run, deleted)
    return run


def cancel(run: dict[str, Any], deleted: dict[str, Any]) -> None:
    """A run whose resource was deleted before it ended."""
    run.update(
        phase=CANCELLED,
        stage="",
        completedAt=run.get("completedAt") or deleted.get("at"),
        message=f"the resource was deleted while this run was {run.get('phase')}; "
        f"deletionPolicy {deleted.get('policy') or 'Retain'}",
    )


def _run_key(run: dict[str, Any]) -> tuple[int, int, str]:
    started = run.get("startedAt")
    return (int(run.get("version") or 0), int(run.get("generation") or 0), str(started or ""))


def run_history(previous: list[dict[str, Any]], run: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ended run, oldest first: `previous` and `run` once it has ended."""
    runs = {_run_key(r): r for r in previous}
    if run["phase"] not in UNFINISHED and (run.get("version") or run.get("startedAt")):
        keep = ("version", "generation", "phase", "error", "startedAt", "completedAt", "actualUsd")
        entry = {k: run.get(k) for k in keep}
        runs[_run_key(entry)] = entry
    return sorted(runs.values(), key=lambda r: (str(r.get("startedAt") or ""), int(r.get("version") or 0)))


def _search_text(doc: dict[str, Any]) -> str:
    parts = [str(doc.get(f) or "") for f in ("name", "description", "prompt", "triggerWord")]
    parts += list(doc.get("tags") or [])
    for version in doc.get("versions") or []:
        parts += [str(version.get(f) or "") for f in ("prompt", "triggerWord", "transcriptText")]
    unique = dict.fromkeys(p.strip() for p in parts if p and p.strip())
    return " ".join(unique).lower()


class _Stored(Reading):
    """What a resource's new document keeps of its stored one (in the current shape)."""

    rev: Count = 0
    deleted: Any = None  # the deletion mark, as written
    versions: list[dict[str, Any]] = []
    deleted_versions: list[dict[str, Any]] = []
    older_deleted_versions: Count = 0
    runs: list[dict[str, Any]] = []
    older_runs: Count = 0
    created_at: Any = None  # a BSON date as stored
    cost: Any = None
    evaluation_cost: Any = None
    shares: list[Any] = []


def catalog_document(
    res: ResourceState,
    *,
    now: datetime,
    origin: str,
    previous: dict[str, Any] | None = None,
    deleted: dict[str, Any] | None = None,
    revive: bool = False,
) -> dict[str, Any]:
    """The document for a resource. `previous` is the stored one, if any (any schema); `deleted`
    marks the resource gone (else the stored mark is kept, unless `revive`: a local run of a record
    whose objects were deleted makes it live again)."""
    before = upgrade(previous) if previous is not None else {}
    stored = _Stored.of(before)
    status = adopt_legacy(res.kind, res.status)
    gone = deleted if deleted is not None else (None if revive else stored.deleted)
    run = latest_run(status, gone)
    spec = res.spec
    doc: dict[str, Any] = {
        "_id": res.uid,
        "jobId": res.uid,
        "schema": SCHEMA,
        "rev": stored.rev + 1,
        "origin": origin,
        "type": KINDS[res.kind].catalog_type,
        "kind": res.kind,
        "name": res.name,
        "namespace": res.namespace,
        "owner": spec.get("owner", ""),
        "provider": spec.get("provider", ""),
        "tags": list(spec.get("tags") or []),
        "description": spec.get("description", ""),
        "latestRun": run,
        "versions": version_entries(
            res, status, stored.versions, {int(v["version"]) for v in stored.deleted_versions}
        ),
        "deletedVersions": stored.deleted_versions,
        "olderDeletedVersions": stored.older_deleted_versions,
        "runs": run_history(stored.runs, run),
        "olderRuns": stored.older_runs,
        "deleted": gone,
        "generation": res.generation,
        "spec": spec,
        "createdAt": stored.created_at or res.created_at,
        "updatedAt": now,
        "cost": status.get("cost") or stored.cost,
        "evaluationCost": stored.evaluation_cost,  # re-evaluations' spend (evaluations.py)
        # who it is shared with (api/sharing.py): the resource's annotation, else the record's own
        "shares": list(res.shares) if res.shares is not None else stored.shares,
    }
    catalog_kind(res.kind).from_status(doc, status, before)
    return summarize(doc)


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    """Fill in what follows from the versions, the latest run, the deletion mark and the spec:
    the record's status, its latest outputs, artifacts, sizes, filter fields and search text;
    within the bounds of bounds.py."""
    bounded(doc)
    versions, run, spec = doc["versions"], doc["latestRun"], doc.get("spec") or {}
    gone = doc.get("deleted")
    newest = versions[-1] if versions else {}
    doc["status"] = record_status(len(versions), run["phase"], gone)
    doc["latestVersion"] = int(newest.get("version") or 0)
    doc["deletedAt"] = (gone or {}).get("at")
    doc["startedAt"], doc["completedAt"] = run.get("startedAt"), run.get("completedAt")
    doc["placeholder"] = bool(newest.get("placeholder"))
    catalog_kind(doc["kind"]).summary(doc, newest, versions, spec)
    if isinstance(spec.get("source"), dict):
        doc["sourceUrl"] = spec["source"].get("url", "")
    doc["artifacts"] = artifacts_of(versions)
    doc["totalBytes"] = sum(int(a.get("sizeBytes", 0)) for a in doc["artifacts"])
    doc["searchText"] = _search_text(doc)
    return doc


def _changed(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A copy of a stored document (any schema) to change: the current shape, the next rev."""
    new = copy.deepcopy(upgrade(doc))
    new.update(schema=SCHEMA, rev=int(doc.get("rev") or 0) + 1, updatedAt=now)
    return new


def marked_deleted(
    doc: dict[str, Any], *, at: datetime, policy: str, outputs_kept: bool, by: str
) -> dict[str, Any] | None:
    """`doc` with its resource gone: deletionPolicy `policy`, its outputs kept or removed; an
    unfinished latest run is cancelled. None when there is nothing to change (an earlier mark,
    e.g. the finalizer's, is kept)."""
    new = _changed(doc, at)
    existing = new.get("deleted")
    if existing and (existing.get("outputsKept") == outputs_kept or not existing.get("outputsKept")):
        if new["latestRun"]["phase"] not in UNFINISHED:
            return None
        cancel(new["latestRun"], existing)
        new["runs"] = run_history(new.get("runs") or [], new["latestRun"])
        return summarize(new)
    mark = {"at": at, "policy": policy, "outputsKept": outputs_kept, "by": by}
    new["deleted"] = mark
    if not outputs_kept:
        new = removed_versions(new, [int(v["version"]) for v in new["versions"]], at=at, by=by)
    if new["latestRun"]["phase"] in UNFINISHED:
        cancel(new["latestRun"], mark)
        new["runs"] = run_history(new.get("runs") or [], new["latestRun"])
    return summarize(new)


def removed_versions(doc: dict[str, Any], numbers: list[int], *, at: datetime, by: str) -> dict[str, Any]:
    """`doc` (current shape, its next rev) with the versions `numbers` moved to deletedVersions:
    their outputs were removed from the store."""
    gone = [v for v in doc["versions"] if int(v["version"]) in numbers]
    doc["versions"] = [v for v in doc["versions"] if int(v["version"]) not in numbers]
    doc["deletedVersions"] = sorted(
        [
            *(doc.get("deletedVersions") or []),
            *(
                {
                    "version": v["version"],
                    "generation": v.get("generation", 0),
                    "createdAt": v.get("createdAt"),
                    "deletedAt": at,
                    "by": by,
                    "objects": len(v.get("artifacts") or []),
                }
                for v in gone
            ),
        ],
        key=lambda v: int(v["version"]),
    )
    return summarize(doc)


def without_versions(doc: dict[str, Any], numbers: list[int], *, at: datetime, by: str) -> dict[str, Any]:
    """`doc` (as stored) with versions removed (prune, delete): see removed_versions."""
    return removed_versions(_changed(doc, at), numbers, at=at, by=by)


def with_progress(
    doc: dict[str, Any], *, version: int, phase: str, progress: int, stage: str, now: datetime
) -> dict[str, Any] | None:
    """`doc` with its latest run's live state (a local run's progress); None when the latest run
    is no longer that run, or has ended (the final record is never overwritten)."""
    run = upgrade(doc).get("latestRun") or {}
    if run.get("version") != version or run.get("phase") not in UNFINISHED:
        return None
    if (run.get("phase"), run.get("progress"), run.get("stage")) == (phase, progress, stage):
        return None
    new = _changed(doc, now)
    new["latestRun"].update(phase=phase, progress=progress, stage=stage)
    return summarize(new)


def with_training(
    doc: dict[str, Any], *, version: int, training: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    """`doc` with its latest run's training as it goes (a local run's `status.training`, wire
    form), the next rev like any change, so that a racing write of its progress cannot undo it;
    None when the latest run is no longer that run, or has ended."""
    run = upgrade(doc).get("latestRun") or {}
    if run.get("version") != version or run.get("phase") not in UNFINISHED:
        return None
    if run.get("training") == training:
        return None
    new = _changed(doc, now)
    new["latestRun"]["training"] = training
    return summarize(new)
