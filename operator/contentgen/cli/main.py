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
    "pool": (
        "contentgen.cli.pool",
        "a warm pool worker: keeps a FLUX or Wan pipeline loaded, draws Jobs' pictures and clips",
    ),
    "assets": ("contentgen.cli.assets", "find stored assets: list, get, search, stats, download links"),
    "collections": (
        "contentgen.cli.collections",
        "collections of assets: make, share, search within, download as a zip",
    ),
    "notifications": (
        "contentgen.cli.notifications",
        "a laptop's Notifications: list, pause, resume, delete, send, replay; a receiver to try them",
    ),
    "api": ("contentgen.cli.api", "serve the catalog's HTTP API: records, search, stats, downloads"),
    "render-job": (
        "contentgen.cli.render_job",
        "print the Job, JobSet or TrainJob the operator would create for a manifest, or why it would hold it",
    ),
    "operator": ("contentgen.cli.operator", "run the operator (kopf) against the cluster"),
    "local-cluster": (
        "contentgen.cli.local_cluster",
        "a local control plane, node and operator, for kubectl",
    ),
}


class CommandError(Exception):
    """A failure to report as one line on stderr (exit 1)."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand with its options; with `only`, that subcommand's alone (none for `only=""`),
    the others listed by name and help (what `contentgen --help` shows) without importing their
    modules. A command imports what its subcommand needs and no more: the worker image's
    entrypoint starts each Job, and importing every subcommand (the catalog, OpenCV, the HTTP API)
    would cost it about a second of CPU."""
    parser = argparse.ArgumentParser(
        prog="contentgen",
        description="Kubernetes operator for AI content generation: LoRA training from video (and its "
        "likeness evaluated again), image generation and transcription.",
    )
    parser.add_argument("--version", action="version", version=f"contentgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text, description=help_text)
            continue
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip())
        module.configure(command)
        command.set_defaults(_module=module)
    return parser


def chosen(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` names: its first word, where it is one (the top-level options take
    no value); None otherwise, and argparse says what is wrong."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first in COMMANDS else None


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


def _refused_in_words(exc: ValueError) -> list[str] | None:
    """A pydantic ValidationError as lines of words (a setting by its environment variable); None
    for any other ValueError."""
    from pydantic import ValidationError

    from contentgen.api.validation import problems_in_words

    if not isinstance(exc, ValidationError):
        return None
    if exc.title.endswith("Settings"):  # read from CONTENTGEN_* variables
        return problems_in_words(exc, lambda loc: "CONTENTGEN_" + "__".join(map(str, loc)).upper())
    return problems_in_words(exc)


def main(argv: Sequence[str] | None = None) -> int:
    name_the_user()
    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(chosen(words) or "").parse_args(words)  # no command: argparse says so
    try:
        code: int = args._module.run(args)
    except CommandError as exc:
        print(f"contentgen {args.command}: {exc}", file=sys.stderr)
        return 1
    except ContentgenError as exc:  # a reason and a sentence saying what to fix: no traceback
        print(f"contentgen {args.command}: {exc.reason}: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # pydantic's ValidationError is one: settings refused, said in words
        lines = _refused_in_words(exc)
        if lines is None:
            raise
        for line in lines:
            print(f"contentgen {args.command}: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stopped:  # a run says where it was and what it keeps (cli/run.py)
        print(f"contentgen {args.command}: {stopped or 'interrupted'}", file=sys.stderr)
        return int(getattr(stopped, "status", 130))
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, with the status a SIGPIPE would give, and
        # keep Python from complaining when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":
    sys.exit(main())
