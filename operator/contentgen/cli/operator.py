"""Run the operator (kopf): watch LoraTraining, ImageGeneration, VideoGeneration, Transcription and
LoraEvaluation resources and run each as a Job, and deliver Notifications' webhooks. Settings come
from CONTENTGEN_* environment variables (the chart's ConfigMap). One replica acts: it holds a Lease
(coordination.k8s.io) in its namespace, the others wait for it; then it runs
`kopf run --standalone -m contentgen.controller.handlers`.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--print-args", action="store_true", help="print the kopf arguments and exit")


def run(args: argparse.Namespace) -> int:
    from contentgen.controller.main import kopf_args
    from contentgen.controller.settings import OperatorSettings

    settings = OperatorSettings()
    kopf_argv = kopf_args(settings)
    if args.print_args:
        print(" ".join(kopf_argv))
        return 0
    if not settings.store:
        from contentgen.cli.main import CommandError

        raise CommandError(
            "CONTENTGEN_STORE is not set: the object store the workers write to (the chart's store.url)"
        )
    from contentgen.controller.main import run_operator

    return run_operator(settings)
