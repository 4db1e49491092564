"""Print what the operator would create for a manifest (YAML), for review and GitOps previews: the
Job, or for a LoraTraining across nodes (spec.resources) the JobSet or Kubeflow Trainer TrainJob,
with its Kueue queue label; or, where the operator would create nothing, the reason and message it
holds the resource with (TooManyGpus, BackendUnavailable: exit 3). It is the operator's own code
path (controller/jobs.py `refused` and `render_run`, which the operator calls): same naming,
labels, limits, hardening and secret references, with settings from the environment
(CONTENTGEN_*, as the chart's ConfigMap sets them). metadata.uid is used when present, otherwise
one is derived from kind, namespace and name; a loraRef shows as a placeholder for the model URI
resolved at run time.
"""

from __future__ import annotations

import argparse
import sys

from contentgen.cli.main import CommandError

EXIT_HELD = 3  # the operator would create nothing: the resource waits, saying why


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", metavar="MANIFEST", help="a file with one contentgen resource")
    parser.add_argument(
        "--namespace-queue",
        default="",
        metavar="QUEUE",
        help="the Kueue LocalQueue the resource's namespace names by its label (the chart's "
        "kueue.namespaceLabel), as the operator reads it; default: none",
    )


def run(args: argparse.Namespace) -> int:
    import yaml

    from contentgen.api.manifests import Document, load_one
    from contentgen.api.validation import validate_document
    from contentgen.controller.preview import Held, render_for_manifest
    from contentgen.controller.settings import OperatorSettings

    try:
        content = load_one(args.manifest)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    outcome = validate_document(Document(args.manifest, 1, content))
    for problem in outcome.problems:
        print(problem.line(), file=sys.stderr)
    if outcome.problems or outcome.resource is None:
        raise CommandError(f"{args.manifest} is not a valid contentgen resource")
    from contentgen.api.providers import provider_entry
    from contentgen.controller.jobs import missing_credentials
    from contentgen.controller.preview import PREVIEW_PROVIDER

    settings = OperatorSettings()
    spec = outcome.resource.spec.wire()
    provider = str(spec.get("provider", ""))
    if not provider and "loraRef" in spec:
        provider = PREVIEW_PROVIDER
        print(
            f"note: this {outcome.resource.kind} names no provider: the operator uses the provider that "
            f"trained the LoRA version; the Job below shows {PREVIEW_PROVIDER}",
            file=sys.stderr,
        )
    if missing := missing_credentials(provider, settings):
        entry = provider_entry(provider)
        print(
            f"note: no Secret is configured for {missing} ({entry.key_secret_variable}__NAME, the chart's "
            f"{entry.chart_secret}); the operator would hold this resource as MissingCredentials instead "
            "of creating this Job",
            file=sys.stderr,
        )
    made = render_for_manifest(outcome.resource, settings, namespace_queue=args.namespace_queue)
    if isinstance(made, Held):
        resource = outcome.resource
        print(
            f"{args.manifest}: the operator creates nothing for {resource.kind} "
            f"{resource.metadata.namespace or 'default'}/{resource.metadata.name}: Pending, {made.reason}: "
            f"{made.message}",
            file=sys.stderr,
        )
        return EXIT_HELD
    sys.stdout.write(yaml.safe_dump(made, sort_keys=False, width=120))
    return 0
