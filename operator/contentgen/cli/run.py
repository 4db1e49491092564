"""Run one custom resource's pipeline on this machine, on embedded defaults: outputs go to the
local store ./contentgen-data/store (or CONTENTGEN_STORE / --store: file://DIR or
s3://bucket/prefix). source.url may also be a local file here. --offline forces the offline
provider (no paid API, labelled placeholder outputs; every local stage still runs).
Progress goes to stderr; a summary of where the outputs went to stdout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

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
        "--result", metavar="FILE", help="also write the run's result JSON here ('-' for stdout)"
    )
    parser.add_argument(
        "--work-dir",
        metavar="DIR",
        help="scratch space (default: ./contentgen-data/work/UID; removed after success)",
    )


def run(args: argparse.Namespace) -> int:
    from contentgen.api.manifests import Document, load_one
    from contentgen.api.validation import validate_document
    from contentgen.errors import ContentgenError
    from contentgen.pipeline.context import RunContext
    from contentgen.pipeline.local_run import snapshot_for
    from contentgen.pipeline.reporters import ConsoleProgress
    from contentgen.pipeline.runner import execute
    from contentgen.pipeline.settings import PipelineSettings
    from contentgen.pipeline.summary import summarize
    from contentgen.store import open_store

    try:
        content = load_one(args.manifest)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    outcome = validate_document(Document(args.manifest, 1, content), local=True)
    if outcome.problems:
        for problem in outcome.problems:
            print(problem.line(), file=sys.stderr)
        raise CommandError(f"{args.manifest} is not valid ({len(outcome.problems)} problem(s) above)")
    if outcome.resource is None:
        raise CommandError(f"{args.manifest} is not a contentgen resource")

    # A laptop may fetch from its own network; the cluster's worker may not (see settings).
    os.environ.setdefault("CONTENTGEN_ALLOW_PRIVATE_SOURCES", "true")
    settings = PipelineSettings()
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
    ctx = RunContext(snapshot, store, settings, work_dir, progress, local=True, provider=provider)
    try:
        result = execute(ctx)
    except ContentgenError as exc:
        progress.close()
        raise CommandError(f"{exc.reason}: {exc}") from None
    progress.close()
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
