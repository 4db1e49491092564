"""`contentgen`: one command, many subcommands."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence

from contentgen import __version__
from contentgen.errors import ContentgenError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("contentgen.cli.validate", "check manifests offline, as admission would and more"),
    "crds": ("contentgen.cli.crds", "write or print the CustomResourceDefinitions"),
    "run": ("contentgen.cli.run", "run one resource's pipeline locally, on embedded defaults"),
    "worker": ("contentgen.cli.worker", "the worker image's entrypoint (runs the Job's spec snapshot)"),
    "pool": ("contentgen.cli.pool", "a warm pool worker: keeps a FLUX pipeline loaded, draws Jobs' pictures"),
    "assets": ("contentgen.cli.assets", "find stored assets: list, get, search, stats, download links"),
    "collections": (
        "contentgen.cli.collections",
        "collections of assets: make, share, search within, download as a zip",
    ),
    "api": ("contentgen.cli.api", "serve the catalog's HTTP API: records, search, stats, downloads"),
    "render-job": ("contentgen.cli.render_job", "print the Job the operator would create for a manifest"),
    "operator": ("contentgen.cli.operator", "run the operator (kopf) against the cluster"),
    "local-cluster": (
        "contentgen.cli.local_cluster",
        "a local control plane, node and operator, for kubectl",
    ),
}


class CommandError(Exception):
    """A failure to report as one line on stderr (exit 1)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contentgen",
        description="Kubernetes operator for AI content generation: LoRA training from video (and its "
        "likeness evaluated again), image generation and transcription.",
    )
    parser.add_argument("--version", action="version", version=f"contentgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip())
        module.configure(command)
        command.set_defaults(_module=module)
    return parser


# What getpass.getuser() reads before it asks the passwd database.
USER_VARIABLES = ("LOGNAME", "USER", "LNAME", "USERNAME")


def fallback_user(environ: Mapping[str, str], uid: int, has_passwd_entry: bool) -> str | None:
    """A name for USER when this process's uid has none: a pod may run under a uid its image does
    not list (an arbitrary uid, as OpenShift assigns, or an image without the entry), and
    getpass.getuser() then raises KeyError, which kopf's peering id and other libraries call.
    None when a name is already there."""
    if has_passwd_entry or any(environ.get(name) for name in USER_VARIABLES):
        return None
    return f"uid-{uid}"


def name_the_user() -> None:
    import pwd

    uid = os.getuid()
    try:
        pwd.getpwuid(uid)
        known = True
    except KeyError:
        known = False
    name = fallback_user(os.environ, uid, known)
    if name is not None:
        os.environ["USER"] = name


def main(argv: Sequence[str] | None = None) -> int:
    name_the_user()
    args = build_parser().parse_args(argv)
    try:
        code: int = args._module.run(args)
    except CommandError as exc:
        print(f"contentgen {args.command}: {exc}", file=sys.stderr)
        return 1
    except ContentgenError as exc:  # a reason and a sentence saying what to fix: no traceback
        print(f"contentgen {args.command}: {exc.reason}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"contentgen {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, with the status a SIGPIPE would give, and
        # keep Python from complaining when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":
    sys.exit(main())
