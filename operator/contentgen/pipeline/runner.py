"""Running one resource's pipeline and handing its result over (store, file, termination message)."""

from __future__ import annotations

from collections.abc import Callable

from contentgen.api import KINDS, RunFailure, RunResult, now
from contentgen.errors import ContentgenError, TransientError
from contentgen.store import keys

from .context import RunContext


def _flow(kind: str) -> Callable[[RunContext], RunResult]:
    # Imported on use: each flow pulls in its own heavy dependencies.
    if kind == "LoraTraining":
        from .lora import run_lora

        return run_lora
    if kind == "ImageGeneration":
        from .images import run_images

        return run_images
    if kind == "Transcription":
        from .transcription import run_transcription

        return run_transcription
    raise ValueError(f"unknown kind {kind!r}")


def execute(ctx: RunContext) -> RunResult:
    """Run the pipeline; store the result document after every artifact it names."""
    snap = ctx.snapshot
    result = _flow(snap.kind)(ctx)
    kind = KINDS[snap.kind]
    key = keys.result_key(kind.catalog_type, snap.owner, snap.uid, snap.version)
    result = result.model_copy(
        update={
            "name": snap.name,
            "namespace": snap.namespace,
            "uid": snap.uid,
            "generation": snap.generation,
            "owner": snap.owner,
            "stages": list(ctx.timings),
            "finished_at": now(),
            "result_uri": ctx.store.uri(key),
        }
    )
    ctx.store.put_bytes(
        key, result.model_dump_json(by_alias=True, exclude_none=True, indent=1).encode(), "application/json"
    )
    return result


def failure(exc: BaseException) -> RunFailure:
    if isinstance(exc, ContentgenError):
        return RunFailure(
            reason=exc.reason,
            message=exc.message[:2000],
            transient=isinstance(exc, TransientError),
            dataset=getattr(exc, "summary", None),  # DatasetTooSmall's counts
        )
    return RunFailure(reason="InternalError", message=f"{type(exc).__name__}: {exc}"[:2000], transient=False)
