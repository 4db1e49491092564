"""Run one custom resource's pipeline on this machine, on embedded defaults: outputs go to the
local store ./contentgen-data/store (or CONTENTGEN_STORE / --store: file://DIR or
s3://bucket/prefix) and the run is recorded in the local catalog ./contentgen-data/catalog (or
CONTENTGEN_CATALOG / --catalog), where `contentgen assets` finds it. source.url may also be a
local file here, or be replaced with --source. --offline forces the offline provider (no paid
API, labelled placeholder outputs; every local stage still runs). Progress goes to stderr; a
summary of where the outputs went to stdout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from contentgen.cli.main import CommandError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "manifest", metavar="MANIFEST", help="a file with one LoraTraining, ImageGeneration or Transcription"
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
    from contentgen.api import now
    from contentgen.api.manifests import Document, load_one
    from contentgen.api.validation import validate_document
    from contentgen.errors import ContentgenError
    from contentgen.pipeline.context import RunContext
    from contentgen.pipeline.local_run import snapshot_for
    from contentgen.pipeline.reporters import ConsoleProgress
    from contentgen.pipeline.runner import execute, failure
    from contentgen.pipeline.settings import PipelineSettings
    from contentgen.pipeline.summary import summarize
    from contentgen.store import open_store

    try:
        content = load_one(args.manifest)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.source:
        spec = content.get("spec")
        if not isinstance(spec, dict) or content.get("kind") not in ("LoraTraining", "Transcription"):
            raise CommandError("--source applies to a LoraTraining or Transcription (they have spec.source)")
        spec["source"] = {"url": args.source}
    outcome = validate_document(Document(args.manifest, 1, content), local=True)
    if outcome.problems:
        for problem in outcome.problems:
            print(problem.line(), file=sys.stderr)
        raise CommandError(f"{args.manifest} is not valid ({len(outcome.problems)} problem(s) above)")
    if outcome.resource is None:
        raise CommandError(f"{args.manifest} is not a contentgen resource")

    # A laptop may fetch from its own network unless told otherwise; the cluster's worker may not.
    settings = PipelineSettings()
    if "CONTENTGEN_ALLOW_PRIVATE_SOURCES" not in os.environ:
        settings.allow_private_sources = True
    if args.store:
        settings.store = args.store
    try:
        store = open_store(settings.store)
        snapshot = snapshot_for(outcome.resource, store)
    except (ValueError, ContentgenError) as exc:
        raise CommandError(str(exc)) from None
    work_dir = Path(args.work_dir) if args.work_dir else settings.work_dir / snapshot.uid
    progress = ConsoleProgress()
    provider = "offline" if args.offline else str(snapshot.spec["provider"])
    if args.offline:  # recorded as what ran, so the catalog does not claim a live provider
        snapshot.spec["provider"] = "offline"
    ctx = RunContext(snapshot, store, settings, work_dir, progress, local=True, provider=provider)
    started = now()
    try:
        result = execute(ctx)
    except ContentgenError as exc:
        progress.close()
        failed = failure(exc)
        _record(args.catalog, snapshot, started, failure=failed)
        if args.result and args.result != "-":  # what went wrong, with e.g. the dataset's counts
            Path(args.result).write_text(
                failed.model_dump_json(by_alias=True, exclude_none=True, indent=2) + "\n"
            )
        raise CommandError(f"{exc.reason}: {exc}") from None
    progress.close()
    _record(args.catalog, snapshot, started, result=result)
    if not args.work_dir:
        shutil.rmtree(work_dir, ignore_errors=True)

    if args.result == "-":
        print(result.model_dump_json(by_alias=True, exclude_none=True, indent=2))
    elif args.result:
        Path(args.result).write_text(
            result.model_dump_json(by_alias=True, exclude_none=True, indent=2) + "\n"
        )
    if args.result != "-":
        print(summarize(result))
    return 0


def _record(catalog_url: str | None, snapshot: Any, started: Any, **outcome: Any) -> None:
    """Record the run in the catalog; a catalog problem is reported but does not undo the run."""
    from contentgen.api import now
    from contentgen.catalog import open_catalog
    from contentgen.pipeline.local_run import record_run

    try:
        catalog = open_catalog(catalog_url)
        try:
            catalog.ensure_indexes()
            record_run(catalog, snapshot, started, now(), **outcome)
        finally:
            catalog.close()
    except Exception as exc:  # the outputs are stored either way
        print(f"contentgen run: warning: could not record the run in the catalog: {exc}", file=sys.stderr)
