"""Run one custom resource's pipeline on this machine, on embedded defaults: outputs go to the
local store ./contentgen-data/store (or CONTENTGEN_STORE / --store: file://DIR or
s3://bucket/prefix) and the run is recorded in the local catalog ./contentgen-data/catalog (or
CONTENTGEN_CATALOG / --catalog), where `contentgen assets` finds it. source.url may also be a
local file here, or be replaced with --source. --offline forces the offline provider (no paid
API, labelled placeholder outputs; every local stage still runs). Progress goes to stderr; a
summary of where the outputs went to stdout.

Exit status: 0 when the run succeeded and is recorded in the catalog; 1 when it failed (one line
on stderr says why, and whether its record waits for the catalog); 3 when it succeeded, its
outputs are stored, but the catalog was away: the record waits in the store's outbox
(outbox/catalog/) and the next `contentgen run` against that catalog writes it first.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contentgen.cli.main import CommandError
from contentgen.signals import on_sigterm

EXIT_RECORDING_PENDING = 3


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (Ctrl-C's SIGINT, or SIGTERM): its record ended Interrupted,
    and `contentgen` exits with the status a shell gives a process that signal ended."""

    def __init__(self, message: str = "", how: str = "Ctrl-C", status: int = 130) -> None:
        super().__init__(message)
        self.how, self.status = how, status


@contextmanager
def _signals() -> Iterator[None]:
    """SIGTERM stops the run as Ctrl-C does (an exception where the main thread is), so that both
    end its record the same way; the handler is this command's only (a test's process keeps its
    own once the command returns)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum: int, frame: Any) -> None:
        raise Interrupted(how="SIGTERM", status=128 + signal.SIGTERM)

    with on_sigterm(terminated):
        yield


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "manifest",
        metavar="MANIFEST",
        help="a file with one LoraTraining, ImageGeneration, VideoGeneration, Transcription or "
        "LoraEvaluation, or a Notification (kept: later runs send it their events)",
    )
    parser.add_argument(
        "--offline", action="store_true", help="use the offline provider (no network, no keys)"
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="where outputs go (default: $CONTENTGEN_STORE or ./contentgen-data/store)",
    )
    parser.add_argument(
        "--catalog",
        metavar="URL",
        help="where the run is recorded (default: $CONTENTGEN_CATALOG or ./contentgen-data/catalog)",
    )
    parser.add_argument(
        "--source", metavar="URL", help="use this file or URL instead of the manifest's source.url"
    )
    parser.add_argument(
        "--result", metavar="FILE", help="also write the run's result JSON here ('-' for stdout)"
    )
    parser.add_argument(
        "--work-dir",
        metavar="DIR",
        help="scratch space (default: ./contentgen-data/work/UID; removed after success)",
    )


def run(args: argparse.Namespace) -> int:
    from contentgen.api.notification import KIND as NOTIFICATION

    content, outcome = _validated(args)
    if content.get("kind") == NOTIFICATION:
        return _keep_notification(args, content)
    if outcome.resource is None:
        raise CommandError(f"{args.manifest} is not a contentgen resource")
    with _signals():
        return _run(args, outcome)


def _run(args: argparse.Namespace, outcome: Any) -> int:
    from contentgen.api.providers import OFFLINE
    from contentgen.catalog import catalog_url
    from contentgen.errors import ContentgenError
    from contentgen.pipeline.likeness.plan import estimate_baseline_cached
    from contentgen.pipeline.local_run import RunLock, identity, snapshot_for

    settings, store = _settings_and_store(args)
    uid = identity(outcome.resource)[2]
    lock = RunLock(settings.work_dir, uid)
    alone = lock.acquire()  # False: another run of this resource goes on on this machine
    recording = _Recording.opened(catalog_url(args.catalog), store, settings)
    record: dict[str, Any] | None = None  # before the run: its events are what it changed
    try:
        try:
            record = recording.get(uid)
            snapshot = snapshot_for(outcome.resource, store, record, _grants_from(recording.catalog))
            _continuable(record, snapshot.spec)
        except (ValueError, ContentgenError) as exc:
            raise CommandError(str(exc)) from None
        work_dir = Path(args.work_dir) if args.work_dir else settings.work_dir / snapshot.uid
        provider = OFFLINE.name if args.offline else snapshot.provider
        snapshot, started = _prepared(snapshot, record if alone else None, store, offline=args.offline)
        _say_latest_loras(recording, outcome.resource.spec.wire(), snapshot)
        cached = estimate_baseline_cached(store, snapshot.kind, snapshot.priced_spec())
        _announce_estimate(snapshot, settings, cached)
        recording.start(snapshot, started, cached, alone=alone)
        result = _executed(args, recording, snapshot, started, cached, work_dir, provider)
        waiting = recording.record(snapshot, started, result=result, baseline_cached=cached)
    finally:
        recording.close(record, uid)
        lock.release()
    if not args.work_dir:
        shutil.rmtree(work_dir, ignore_errors=True)
    _report(args, result)
    return EXIT_RECORDING_PENDING if waiting else 0


@dataclass
class _Recording:
    """Where a laptop's run is recorded: the catalog (None while it is away), or, when it is
    away, the store's outbox, from which the next run against that catalog writes it."""

    url: str
    store: Any
    outbox: Any
    settings: Any
    catalog: Any = None

    @classmethod
    def opened(cls, url: str, store: Any, settings: Any) -> _Recording:
        from contentgen.catalog.outbox import Outbox

        outbox = Outbox(store, url)
        return cls(url, store, outbox, settings, _open(url, store, outbox, settings))

    def get(self, uid: str) -> dict[str, Any] | None:
        return self.catalog.get(uid) if self.catalog is not None else None

    def start(self, snapshot: Any, started: Any, cached: bool, *, alone: bool) -> None:
        """The run's start in the catalog; a catalog that fails it is let go for this run."""
        from contentgen.pipeline.local_run import record_start

        if self.catalog is None:
            return
        try:
            prices = self.settings.prices
            record_start(
                self.catalog, snapshot, started, prices, self.store, alone=alone, baseline_cached=cached
            )
        except Exception as exc:
            _away(self.url, exc, "; the run goes on, and its record is written at the end (or waits)")
            self.catalog.close()
            self.catalog = None

    def record(self, snapshot: Any, started: Any, **outcome: Any) -> bool:
        """The run's end recorded; whether its record waits in the outbox."""
        return _record(
            self.catalog, self.url, self.outbox, self.store, snapshot, started, self.settings, **outcome
        )

    def close(self, before: dict[str, Any] | None, uid: str) -> None:
        """The run's events sent to the laptop's Notifications, and the catalog closed."""
        if self.catalog is not None:
            _notify(self.catalog, before, uid, self.settings)
            self.catalog.close()


def _executed(
    args: argparse.Namespace,
    recording: _Recording,
    snapshot: Any,
    started: Any,
    cached: bool,
    work_dir: Path,
    provider: str,
) -> Any:
    """The run's result; on failure, its record (and --result) written first, then a
    CommandError naming the reason."""
    from contentgen.errors import ContentgenError
    from contentgen.pipeline.context import RunContext
    from contentgen.pipeline.live import LocalLive
    from contentgen.pipeline.local_run import CatalogProgress
    from contentgen.pipeline.reporters import ConsoleProgress, FanOut
    from contentgen.pipeline.runner import execute, failure, stored_outputs

    console = ConsoleProgress()
    reporters: list[Any] = [console]
    if recording.catalog is not None:
        reporters.append(CatalogProgress(recording.catalog, snapshot))
    store = recording.store
    written = store.record_writes()  # named by a failure: what this run stored before it
    live = LocalLive(recording.catalog, snapshot, recording.settings.work_dir, shown=console.training)
    ctx = RunContext(
        snapshot,
        store,
        recording.settings,
        work_dir,
        FanOut(*reporters),
        local=True,
        provider=provider,
        live=live,
    )
    try:
        result = execute(ctx)
    except KeyboardInterrupt as stopped:  # Ctrl-C, or SIGTERM (_signals): the record ends at once
        console.close()
        how, status = getattr(stopped, "how", "Ctrl-C"), getattr(stopped, "status", 130)
        raise Interrupted(_interrupted(recording, snapshot, started, live, how), how, status) from None
    except ContentgenError as exc:
        console.close()
        failed = failure(exc, ctx.priced_usage(), stored_outputs(store, written))
        waiting = recording.record(snapshot, started, failure=failed, baseline_cached=cached)
        if args.result and args.result != "-":  # what went wrong, with e.g. the dataset's counts
            Path(args.result).write_text(
                failed.model_dump_json(by_alias=True, exclude_none=True, indent=2) + "\n"
            )
        note = "; its record waits in the outbox for the catalog" if waiting else ""
        raise CommandError(f"{exc.reason}: {exc}{note}") from None
    console.close()
    return result


def _say_latest_loras(recording: _Recording, spec: dict[str, Any], snapshot: Any) -> None:
    """Which version each loraRef without `version` uses (its LoraTraining's latest), one line each
    on stderr, naming a version that scored better and how to pin it (tables.latest_lora_words)."""
    from contentgen.catalog.migrate import upgrade
    from contentgen.tables import latest_lora_words

    refs = [e["loraRef"] for e in spec.get("loras") or [] if isinstance(e.get("loraRef"), dict)]
    bare = {str(ref["name"]) for ref in refs if ref.get("version") is None}
    for used in snapshot.loras:
        record = recording.get(used.uid) if used.name in bare and used.uid else None
        if record is not None:
            line = latest_lora_words(used.name, used.version, list(upgrade(record).get("versions") or []))
            print(f"contentgen run: {line}", file=sys.stderr)


def _continuable(record: dict[str, Any] | None, spec: dict[str, Any]) -> None:
    """A training.continueFrom naming a version that cannot be gone on from (none such, or one
    that kept no state) refused before the run touches the record; where the record is not here,
    the pipeline says it (from the store)."""
    going_on = (
        (spec.get("training") or {}).get("continueFrom") if isinstance(spec.get("training"), dict) else None
    )
    if record is None or not isinstance(going_on, dict):
        return
    from contentgen.pipeline.training_controls import NotContinuable, continuable, lora_record

    text = ""
    try:
        continuable(lora_record(record), int(going_on.get("version") or 0))
    except NotContinuable as refused:
        text = str(refused).removeprefix("version: ")
    if text:
        raise CommandError(f"training.continueFrom: {text}; nothing was run or recorded")


def _interrupted(recording: _Recording, snapshot: Any, started: Any, live: Any, how: str) -> str:
    """The record of a run a signal stopped, ended Interrupted (a second Ctrl-C meanwhile is not
    heard: the record is written whole); what it says."""
    from contentgen.api import now
    from contentgen.pipeline.interruption import interruption, record_interrupted

    unheard = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if unheard else None
    try:
        if recording.catalog is None:
            return interruption(how, {"version": snapshot.version}, live.latest, [])
        settings = recording.settings
        return record_interrupted(
            recording.catalog, snapshot, started, now(), how, live.latest, recording.store, settings.prices
        )
    except Exception as exc:  # the catalog went away: the next run resumes the Running record
        return (
            f"interrupted by {how}; its record could not be ended ({exc}): the same `contentgen run` "
            "resumes it"
        )
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _validated(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """The manifest (with --source) and its validation as a laptop's run; a CommandError, with a
    line per problem on stderr, where it is not valid."""
    from contentgen.api.manifests import Document, load_one
    from contentgen.api.validation import validate_document
    from contentgen.api.words import counted

    try:
        content = load_one(args.manifest)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.source:
        spec = content.get("spec")
        sourced = _sourced()
        if not isinstance(spec, dict) or content.get("kind") not in sourced:
            raise CommandError(f"--source applies to a {' or '.join(sourced)} (they have spec.source)")
        spec["source"] = {"url": args.source}
    outcome = validate_document(Document(args.manifest, 1, content), local=True)
    if outcome.problems:
        for problem in outcome.problems:
            print(problem.line(), file=sys.stderr)
        raise CommandError(
            f"{args.manifest} is not valid ({counted(len(outcome.problems), 'problem')} above)"
        )
    _source_checked(content, "--source" if args.source else "source.url")
    return content, outcome


def _source_checked(content: dict[str, Any], said: str) -> None:
    """A local source that cannot be read is refused here, before the run touches a record: a
    mistyped path makes no failed run and no empty record."""
    from contentgen.pipeline.fetch import missing_local

    source = (content.get("spec") or {}).get("source")
    url = source.get("url") if isinstance(source, dict) else None
    if isinstance(url, str) and (problem := missing_local(url)):
        raise CommandError(f"{said}: {problem}; nothing was run or recorded")


def _settings_and_store(args: argparse.Namespace) -> tuple[Any, Any]:
    """The pipeline's settings (internal addresses refused here as in the cluster, unless
    CONTENTGEN_ALLOW_PRIVATE_SOURCES) and the store, checked before anything is recorded."""
    from contentgen.errors import ContentgenError
    from contentgen.pipeline.settings import PipelineSettings
    from contentgen.store import open_store

    settings = PipelineSettings()
    if args.store:
        settings.store = args.store
    try:
        store = open_store(settings.store)
        store.check()  # a missing bucket is said here
    except (ValueError, ContentgenError) as exc:
        raise CommandError(str(exc)) from None
    return settings, store


def _prepared(snapshot: Any, record: dict[str, Any] | None, store: Any, *, offline: bool) -> tuple[Any, Any]:
    """The snapshot as it runs and when it started: with the offline provider's spec (recorded as
    what ran, so the catalog does not claim a live provider), and as the run of `record` that
    stopped before it ended where there is one (None: another run of it goes on here)."""
    from contentgen.api import now
    from contentgen.api.run import offline_spec
    from contentgen.pipeline.interruption import kept_checkpoints
    from contentgen.pipeline.local_run import resumed, resumes

    if offline:
        ran = offline_spec(snapshot.kind, snapshot.spec)
        snapshot.spec.clear()
        snapshot.spec.update(ran)
    started = now()
    stopped = resumes(record, snapshot) if record is not None else None
    if stopped is not None:
        snapshot, started = resumed(snapshot, stopped, started)
        kept = kept_checkpoints(store, snapshot.owner, snapshot.uid, snapshot.version)
        going_on = (
            f"; its training goes on from checkpoint {kept[-1]}, stored with its score: its steps are "
            "not trained again"
            if kept
            else ""
        )
        print(
            f"contentgen run: resumes run {snapshot.version} of {snapshot.kind} "
            f"{snapshot.namespace}/{snapshot.name}, stopped before it ended: the same version, what "
            f"was paid for is adopted, not paid again{going_on}",
            file=sys.stderr,
        )
    return snapshot, started


def _report(args: argparse.Namespace, result: Any) -> None:
    """The result as --result asks (a file, or stdout for '-') and, unless on stdout, its summary."""
    from contentgen.pipeline.summary import summarize

    text = result.model_dump_json(by_alias=True, exclude_none=True, indent=2)
    if args.result == "-":
        print(text)
        return
    if args.result:
        Path(args.result).write_text(text + "\n")
    print(summarize(result))


def _sourced() -> list[str]:
    """The kinds whose spec has a source (what --source sets), as the API's models say."""
    from contentgen.api import KINDS

    return [k.kind for k in KINDS.values() if "source" in k.spec.model_fields]


def _keep_notification(args: argparse.Namespace, content: dict[str, Any]) -> int:
    """A Notification has no run: it is kept in the local catalog, and later runs send it their
    events (cli/laptop_notifications.py)."""
    from contentgen.catalog import catalog_url, open_catalog
    from contentgen.pipeline.settings import PipelineSettings

    from .laptop_notifications import keep, on_this_machine

    settings = PipelineSettings()
    try:
        catalog = open_catalog(catalog_url(args.catalog), create=True)
    except Exception as exc:
        raise CommandError(f"cannot keep the Notification: the catalog is away ({exc})") from None
    try:
        body, key, new = keep(catalog, content, settings.work_dir.parent)
    finally:
        catalog.close()
    name = f"{body['metadata']['namespace']}/{body['metadata']['name']}"
    url = body["spec"]["url"]
    print(
        f"Notification {name} {'kept in' if new else 'updated in'} the local catalog: the events of "
        f"`contentgen run`s from now on go to {url}, signed with the key in {key} (events from before: "
        f"`contentgen notifications replay {name} --all`)"
    )
    if on_this_machine(url) and not settings.allow_private_sources:
        print(
            f"contentgen run: {url} is on this machine or a private network: runs deliver to it with "
            "CONTENTGEN_ALLOW_PRIVATE_SOURCES=true (refused otherwise, as in a cluster)",
            file=sys.stderr,
        )
    return 0


def _notify(catalog: Any, before: dict[str, Any] | None, uid: str, settings: Any) -> None:
    """The run's events to the laptop's Notifications; a line on stderr per attempt. Never fails
    the run: a notification that cannot be sent is said, and tried again after the next run."""
    from .laptop_notifications import after_run

    try:
        lines = after_run(
            catalog,
            before,
            catalog.get(uid),
            settings.work_dir.parent,
            allow_private=settings.allow_private_sources,
        )
    except Exception as exc:  # the run's outcome stands whatever happens here
        lines = [f"notifications not sent: {type(exc).__name__}: {exc}"]
    for line in lines:
        print(f"contentgen run: {line}", file=sys.stderr)


def _announce_estimate(snapshot: Any, settings: Any, baseline_cached: bool) -> None:
    from contentgen.pricing import estimated

    spec = snapshot.priced_spec()
    cost = estimated(snapshot.kind, spec, settings.prices, None, baseline_cached=baseline_cached)
    if cost.estimated_usd > 0:
        print(
            f"contentgen run: estimated cost ${cost.estimated_usd:.4f} at {snapshot.provider} "
            f"({cost.detail.removeprefix('estimate: ')}; prices of {cost.prices_as_of})",
            file=sys.stderr,
        )


def _away(url: str, exc: BaseException, then: str) -> str:
    """Say that the catalog is away (without its password); returns the line's start."""
    from contentgen.providers.retry import redact
    from contentgen.redact import redact_url

    reason = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    away = f"contentgen run: the catalog {redact_url(url)} is unavailable ({reason})"
    if then:
        print(away + then, file=sys.stderr)
    return away


def _write(catalog: Any, store: Any, waiting: Any, settings: Any) -> None:
    """Record one run (this one, or one that waited in the outbox)."""
    from contentgen.pipeline.local_run import record_run
    from contentgen.pricing import PriceTable

    prices = PriceTable.model_validate(waiting.prices) if waiting.prices else settings.prices
    record_run(
        catalog,
        waiting.snapshot,
        waiting.started,
        waiting.finished,
        waiting.result,
        waiting.failure,
        prices,
        store,
        baseline_cached=waiting.baseline_cached,
    )


def _open(url: str, store: Any, outbox: Any, settings: Any) -> Any:
    """The catalog, after writing the records that waited for it (oldest first); None when it is
    away (this run's record will wait in the outbox too)."""
    from contentgen.catalog import open_catalog

    try:
        catalog = open_catalog(url, create=True)
    except Exception as exc:
        _away(url, exc, "; the run goes on, and its record waits in the store's outbox")
        return None
    try:
        catalog.ensure_indexes()
        earlier = outbox.flush(lambda waiting: _write(catalog, store, waiting, settings))
    except Exception as exc:
        catalog.close()
        _away(url, exc, "; the run goes on, and its record waits in the store's outbox")
        return None
    if earlier:
        from contentgen.api.words import counted

        print(
            f"contentgen run: recorded {counted(earlier, 'earlier run')} that waited for the catalog",
            file=sys.stderr,
        )
    return catalog


def _record(
    catalog: Any,
    url: str,
    outbox: Any,
    store: Any,
    snapshot: Any,
    started: Any,
    settings: Any,
    **outcome: Any,
) -> bool:
    """Record the run in the catalog (opened again if it was away at the start). When the catalog is
    away the record waits in the store's outbox; returns whether it does."""
    from contentgen.api import now
    from contentgen.catalog.outbox import Entry

    entry = Entry(snapshot, started, now(), prices=settings.prices.model_dump(by_alias=True), **outcome)
    opened = catalog if catalog is not None else _open(url, store, outbox, settings)
    if opened is not None:
        try:
            _write(opened, store, entry, settings)
            return False
        except Exception as exc:
            away = _away(url, exc, "")
        finally:
            if catalog is None:
                opened.close()
    else:
        from contentgen.redact import redact_url

        away = f"contentgen run: the catalog {redact_url(url)} is unavailable"
    try:
        where = outbox.put(entry)
    except Exception as lost:
        print(
            f"{away} and the record could not be kept in the store either ({lost}); the outputs and "
            "result.json are stored",
            file=sys.stderr,
        )
        return True
    print(
        f"{away}; the run's record waits in {where} and is written by the next contentgen run "
        "against this catalog",
        file=sys.stderr,
    )
    return True


def _grants_from(catalog: Any) -> Any:
    """Another owner's record's grants by its uid, read from the catalog (None while it is away:
    what they shared then cannot be used)."""
    from contentgen.api.sharing import grants_of

    if catalog is None:
        return None

    def read(uid: str) -> Any:
        doc = catalog.get(uid)
        return grants_of(doc) if doc is not None else None

    return read
