"""Running one resource's pipeline and handing its result over (store, file, termination message)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from contentgen.api import KINDS, Artifact, RunFailure, RunResult, SpecSnapshot, UsageLine, now
from contentgen.errors import ContentgenError, PermanentError, TransientError
from contentgen.store import ObjectStore, keys
from contentgen.store.base import UploadsRefused, say_once
from contentgen.store.results import read_result, result_document

from .context import UNBILLED, RunContext
from .kinds import pipeline_kind
from .owners import checked_inputs
from .progress import Stages
from .thumbnails import add_thumbnails, has_pictures

log = logging.getLogger(__name__)

# what follows a flow: pictures get their thumbnails at 100 %
FINISHING = Stages(("thumbnails", 1), start=100, end=100)


def execute(ctx: RunContext) -> RunResult:
    """Run the pipeline for the snapshot's version; store the result document after every artifact
    it names. A version whose result is already stored (an earlier attempt of this run finished,
    then its pod was lost) is handed over again, not run again."""
    snap = ctx.snapshot
    if snap.version < 1:
        raise PermanentError(
            "the spec snapshot names no version to write: snapshots are made by the operator or "
            "`contentgen run`, which number every run",
            reason="InvalidSpec",
        )
    checked_inputs(snap, ctx.store)  # before anything is fetched or presigned
    kind = KINDS[snap.kind]
    key = keys.result_key(kind.catalog_type, snap.owner, snap.uid, snap.version)
    done = read_result(ctx.store, key)
    if done is not None and done.generation == snap.generation:
        ctx.progress("done", 100)
        return done
    clean_unfinished_uploads(
        ctx.store,
        [
            *keys.version_roots(kind.catalog_type, snap.owner, snap.uid, snap.version),
            keys.temp_root(snap.uid),
        ],
    )
    result = with_lineage(pipeline_kind(snap.kind).run(ctx), snap)
    if has_pictures(result):
        with ctx.stage(FINISHING, "thumbnails"):
            result = add_thumbnails(ctx.store, result)
    roots = keys.version_roots(kind.catalog_type, snap.owner, snap.uid, snap.version)
    result = with_every_object(ctx.store, result, roots, key)
    result = result.model_copy(
        update={
            "name": snap.name,
            "namespace": snap.namespace,
            "uid": snap.uid,
            "generation": snap.generation,
            "owner": snap.owner,
            "version": snap.version,
            "spec": snap.spec,
            "stages": list(ctx.timings),
            "finished_at": now(),
            "result_uri": ctx.store.uri(key),
            "usage": ctx.priced_usage(ctx.usage if ctx.usage is not None else result.usage),
        }
    )
    ctx.store.put_once_bytes(key, result_document(result), "application/json")
    return result


def clean_unfinished_uploads(store: ObjectStore, roots: list[str]) -> None:
    """Abort the uploads an earlier attempt of this run began and could not end (the store went
    away under it): only this run writes under `roots`, and no earlier attempt of it still runs.
    Best effort: housekeeping never stands between a run (a paid one resumed, least of all) and
    its outputs. A store that refuses it (a policy without the permission, a store without
    multipart listings) is said once a process and not asked again for this run; any other
    failure is said and the run goes on (a store that is away fails the run where it is needed)."""
    for root in roots:
        try:
            store.abort_uploads(root)
        except UploadsRefused as refused:
            say_once(log, refused)
            return
        except Exception as exc:
            log.warning("unfinished uploads under %s not cleaned up (%s); the run goes on", root, exc)
            return


def with_every_object(store: ObjectStore, result: RunResult, roots: list[str], result_key: str) -> RunResult:
    """`result` listing every object stored under its version's prefixes (`roots`), not only those
    its flow named: a LoRA's checkpoints, anything a retried attempt stored before. Usage and
    storage cost count the artifacts, so an object left out would be stored and never paid for.
    The result document itself is counted by the catalog (result_document)."""
    listed = {store.key_of(a.uri) for a in result.artifacts if store.owns(a.uri)}
    found: list[Artifact] = []
    for root in roots:
        for info in store.list(root):
            if info.key in listed or info.key == result_key:
                continue
            head = store.head(info.key) or info
            digest = head.sha256 or hashlib.sha256(store.get_bytes(info.key)).hexdigest()
            found.append(
                Artifact(
                    uri=store.uri(info.key),
                    size_bytes=head.size_bytes,
                    sha256=digest,
                    content_type=head.content_type,
                )
            )
    if not found:
        return result
    return result.model_copy(update={"artifacts": [*result.artifacts, *found]})


def with_lineage(result: RunResult, snap: SpecSnapshot) -> RunResult:
    """Where the outputs came from, as the kind declares it (kinds/): an ImageGeneration's LoRAs
    (name, uid, version), a VideoGeneration's LoRAs and the picture it animates (an
    ImageGeneration's: name, uid, version, image), a LoRA version's source video (its dataset is
    already named)."""
    return pipeline_kind(snap.kind).lineage(result, snap)


def failure(exc: BaseException, usage: list[UsageLine] | None = None, kept: Sequence[str] = ()) -> RunFailure:
    """The hand-over of a failed run. `usage` is the context's: None when the failure came during a
    paid call, whose bill is then unknown unless the failure itself says nothing was billed.
    `kept`: the URIs the run stored before it failed (`stored_outputs`)."""
    if isinstance(exc, ContentgenError):
        if usage is None and exc.reason in UNBILLED:
            usage = []
        return RunFailure(
            reason=exc.reason,
            message=exc.message[:2000],
            transient=isinstance(exc, TransientError),
            usage=usage,
            dataset=getattr(exc, "summary", None),  # DatasetTooSmall's counts
            kept=list(kept),
        )
    return RunFailure(
        reason="InternalError",
        message=f"{type(exc).__name__}: {exc}"[:2000],
        transient=False,
        usage=usage,
        kept=list(kept),
    )


def stored_outputs(store: ObjectStore, written: Sequence[str]) -> list[str]:
    """The URIs of what a run wrote (`ObjectStore.record_writes`), without the providers' working
    state under temp/ (their checkpoints, which the next attempt reads)."""
    return [store.uri(key) for key in written if not key.startswith(keys.TEMP)]
