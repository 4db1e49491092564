"""The worker image's entrypoint: run the pipeline for the spec snapshot the operator froze into
the Job (env CONTENTGEN_SPEC, or --spec FILE), with the store (CONTENTGEN_STORE) and provider
keys from the environment. Progress is patched onto the resource's status; the result is
stored next to the outputs and left in the termination message for the operator.

The worker has no catalog (it never gets MongoDB credentials): its record is the result document
in the store and the termination message, from which the operator writes the catalog (and catches
up when MongoDB was away). Exit status: 0 when the result is stored and handed over; 1 when the
run did not finish or its result could not be stored (the Job retries; paid work resumes from the
provider checkpoints, never paid again); 2 when it failed for good (podFailurePolicy ends the Job).
The termination message carries what the provider billed (`usage`), so a failure's spend is known.

SIGTERM (the pod deleted, or evicted) stops the run where it is, as a crash would, and nothing is
written after it but the termination message (exit 143). A crash at any point is what the provider
layer is built for (providers/billing.py): a billed request's intent or id is in its checkpoint
before its answer can be lost, so a request in flight is handed off, never sent again: a later
attempt resumes it, or the operator's cleanup of a deleted resource cancels it once the pod is gone.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from contentgen.signals import on_sigterm

if TYPE_CHECKING:
    from contentgen.api import SpecSnapshot
    from contentgen.pipeline.context import RunContext
    from contentgen.pipeline.live import Live

EXIT_PERMANENT = 2  # see controller/jobs.py: the Job's podFailurePolicy
EXIT_STOPPED = 128 + signal.SIGTERM  # as a shell reports a process that SIGTERM ended


class Stopped(BaseException):
    """SIGTERM arrived. Not an Exception: no `except Exception` on its way out (a provider's retry,
    a refused submit, the pipeline's failure report) takes it for an answer and writes."""


@contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """SIGTERM raises Stopped in the main thread, wherever it is (a socket read or a sleep is
    interrupted, PEP 475); a second SIGTERM is ignored while the first is being handled."""

    def stop(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Stopped

    with on_sigterm(stop):
        yield


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--spec", metavar="FILE", help="read the spec snapshot from FILE instead of $CONTENTGEN_SPEC"
    )
    parser.add_argument("--result", metavar="FILE", help="also write the result JSON here")
    parser.add_argument(
        "--termination-log",
        metavar="FILE",
        default=os.environ.get("CONTENTGEN_TERMINATION_LOG", "/dev/termination-log"),
        help="where the Job's termination message goes (default: %(default)s)",
    )


def log_to_stderr() -> None:
    """The pipeline's own notes (a training resumed after step N, a caption provider's model, a
    price not read) at INFO, other libraries' at WARNING, to stderr: what `kubectl logs` shows."""
    root = logging.getLogger()
    if not any(getattr(h, "contentgen_worker", False) for h in root.handlers):  # once a process
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        handler.contentgen_worker = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    logging.getLogger("contentgen").setLevel(logging.INFO)


def run(args: argparse.Namespace) -> int:
    """The run; on several GPUs (PET_NPROC_PER_NODE, PET_NNODES), torchrun's processes first, each
    a `contentgen worker`: rank 0 runs the pipeline, the others train beside it
    (providers/cluster/training/distributed.py)."""
    from contentgen.providers.cluster.training import distributed

    work_dir = Path(os.environ.get("CONTENTGEN_WORK_DIR") or "/work")
    if distributed.asked() != (1, 1) and not distributed.launched():
        return distributed.launch(_argv(args), work_dir)
    me = distributed.world()
    if not me.several:
        return _run(args)
    log_to_stderr()
    with distributed.joined(distributed.Team.join(me)) as team:
        if not me.main:
            return distributed.follow(team)
        status = 1
        try:
            status = _run(args)
        finally:
            distributed.leave_status(team, status, work_dir)
        return status


def _argv(args: argparse.Namespace) -> list[str]:
    """The worker's own arguments, for each of torchrun's processes."""
    argv = ["--termination-log", args.termination_log]
    argv += ["--spec", args.spec] if args.spec else []
    return argv + (["--result", args.result] if args.result else [])


def _run(args: argparse.Namespace) -> int:
    # imports here, not above: a pooled worker's start imports only what it uses (issue 47)
    from contentgen.pipeline.context import RunContext
    from contentgen.pipeline.reporters import FanOut
    from contentgen.pipeline.settings import PipelineSettings
    from contentgen.store import open_store

    snapshot = _snapshot(args)
    if snapshot is None:
        return EXIT_PERMANENT
    log_to_stderr()
    settings = PipelineSettings()
    store = open_store(settings.store)
    written = store.record_writes()  # named by a failure: what this run stored before it
    ctx = RunContext(
        snapshot,
        store,
        settings,
        settings.work_dir / snapshot.uid,
        FanOut(*_reporters(snapshot)),
        local=False,
        provider=snapshot.provider,
        live=_live(snapshot),
    )
    return _executed(ctx, args, written)


def _snapshot(args: argparse.Namespace) -> SpecSnapshot | None:
    """The Job's spec snapshot (--spec FILE, else CONTENTGEN_SPEC), checked as the cluster takes
    it; None, said on stderr and in the termination log, when there is none or it is invalid."""
    from pydantic import ValidationError

    from contentgen.api import RunFailure, SpecSnapshot

    raw = Path(args.spec).read_text() if args.spec else os.environ.get("CONTENTGEN_SPEC", "")
    if not raw:
        print("contentgen worker: no spec snapshot: set CONTENTGEN_SPEC or pass --spec FILE", file=sys.stderr)
        return None
    try:
        snapshot = SpecSnapshot.model_validate_json(raw)
        snapshot.parsed_spec(local=False)  # the cluster never accepts local sources
    except ValidationError as exc:
        reason = f"invalid spec snapshot: {exc.errors(include_url=False)[0]['msg']}"
        _write(
            args.termination_log,
            RunFailure(reason="InvalidSpec", message=reason).model_dump_json(by_alias=True),
        )
        print(f"contentgen worker: {reason}", file=sys.stderr)
        return None
    return snapshot


def _reporters(snapshot: SpecSnapshot) -> list[object]:
    """Where progress goes: the pod's log, and in a Job the resource's status (its stage and
    percent, throttled; a warm pool's request, its place in the pool, into status.pool)."""
    from contentgen.api import KINDS
    from contentgen.pipeline.kube_status import KubeStatusClient
    from contentgen.pipeline.reporters import Changes, ConsoleProgress, Throttled
    from contentgen.providers.cluster.generation import pool

    reporters: list[object] = [ConsoleProgress(tty=False)]
    kube = KubeStatusClient.from_environment()
    job_name = os.environ.get("CONTENTGEN_JOB_NAME", "")
    if kube is not None and job_name:
        kind = KINDS[snapshot.kind]
        reporters.append(
            Throttled(
                lambda stage, pct: kube.patch_progress(
                    kind, snapshot.namespace, snapshot.name, job_name, stage, pct, snapshot.uid
                )
            )
        )
        pool.listen(  # docs/cluster-gpus.md#a-requests-place-in-the-pool
            Changes(
                lambda state, position: kube.patch_pool(
                    kind, snapshot.namespace, snapshot.name, job_name, state, position, snapshot.uid
                )
            )
        )
    return reporters


def _live(snapshot: SpecSnapshot) -> Live:
    """A training's live channel in a Job: status.training patched, a stop read from the answer
    (pipeline/live.py); none outside a Job."""
    from contentgen.api import KINDS
    from contentgen.pipeline.kube_status import KubeStatusClient
    from contentgen.pipeline.live import KubeLive, NoLive

    kube = KubeStatusClient.from_environment()
    job_name = os.environ.get("CONTENTGEN_JOB_NAME", "")
    if kube is None or not job_name:
        return NoLive()
    return KubeLive(kube, KINDS[snapshot.kind], snapshot, job_name)


def _executed(ctx: RunContext, args: argparse.Namespace, written: list[str]) -> int:
    """The run, its result or failure in the termination log; the exit code the Job's
    podFailurePolicy reads."""
    from contentgen.api import RunFailure
    from contentgen.api.run import failure_message, termination_message
    from contentgen.pipeline.runner import execute, failure, stored_outputs

    snapshot = ctx.snapshot
    try:
        with stopped_by_sigterm():
            result = execute(ctx)
    except Stopped:
        why = (
            "stopped by SIGTERM (the pod was deleted or evicted): nothing was written after it; "
            "provider requests in flight are in the run's checkpoints, resumed by a later attempt "
            "or cancelled by the operator's cleanup"
        )
        # usage unknown: a paid request may still be running at the provider
        _write(
            args.termination_log, failure_message(RunFailure(reason="Stopped", message=why, transient=True))
        )
        print(f"contentgen worker: {why}", file=sys.stderr)
        return EXIT_STOPPED
    except Exception as exc:
        failed = failure(exc, ctx.priced_usage(), stored_outputs(ctx.store, written))
        _write(args.termination_log, failure_message(failed))
        print(f"contentgen worker: {failed.reason}: {failed.message}", file=sys.stderr)
        # The Job's podFailurePolicy fails the Job at once on EXIT_PERMANENT; other exits are
        # retried up to its backoffLimit (transient errors, and bugs that may not recur).
        permanent = not failed.transient and failed.reason != "InternalError"
        return EXIT_PERMANENT if permanent else 1
    _write(args.termination_log, termination_message(result))
    if args.result:
        Path(args.result).write_text(
            result.model_dump_json(by_alias=True, exclude_none=True, indent=2) + "\n"
        )
    done = f"{snapshot.kind} {snapshot.namespace}/{snapshot.name} succeeded: {result.result_uri}"
    print(f"contentgen worker: {done}", file=sys.stderr)
    return 0


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text)
    except OSError as exc:  # outside a pod there may be no termination log; the store has the result
        print(f"contentgen worker: could not write {path}: {exc.strerror}", file=sys.stderr)
