"""Validate contentgen manifests offline: everything admission checks (schema and CEL rules),
plus what it cannot (unknown fields, which the API server silently drops; unknown apiVersions
and kinds). Made for GitOps repositories: in directories, dot-directories, Helm chart templates,
files that never mention contentgen, documents without an apiVersion and documents of other API
groups are skipped (--verbose lists them). Prints one line per problem:
FILE: DOCUMENT: FIELD: REASON. Exit 0 when all are valid, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from contentgen.api.words import counted
from contentgen.cli.output import print_json

if TYPE_CHECKING:
    from contentgen.api.manifests import Read
    from contentgen.api.validation import Outcome, Problem


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files, directories or - for stdin")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out paths matching GLOB (relative to the directory given, or a file or directory "
        "name; * crosses /): e.g. 'vendor/*' or '*.tmpl.yaml'; repeatable",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="list what was skipped, and why, on stderr"
    )


def run(args: argparse.Namespace) -> int:
    from contentgen.api.manifests import read
    from contentgen.api.validation import validate_documents

    found = read(args.paths, tuple(args.exclude))
    outcomes = validate_documents(found.documents)
    checked = _Checked.of(found, outcomes)
    if args.output == "json":
        _print_json(checked)
    else:
        _print_text(checked, args.verbose)
    return 1 if checked.problems else 0


@dataclass(frozen=True)
class _Checked:
    """What validating what was read found."""

    problems: list[Problem]
    checked: list[Outcome]  # the contentgen resources
    skipped: list[Outcome]  # the other documents
    unread: list[tuple[str, str]]  # the paths not read, and why

    @classmethod
    def of(cls, found: Read, outcomes: list[Outcome]) -> _Checked:
        return cls(
            problems=[p for o in outcomes for p in o.problems],
            checked=[o for o in outcomes if not o.skipped],
            skipped=[o for o in outcomes if o.skipped],
            unread=list(found.skipped),
        )


def _print_json(checked: _Checked) -> None:
    report = {
        "valid": not checked.problems,
        "resources": len(checked.checked),
        "skipped": len(checked.skipped),
        "skippedFiles": len(checked.unread),
        "problems": [p.as_dict() for p in checked.problems],
    }
    print_json(report)


def _print_text(checked: _Checked, verbose: bool) -> None:
    """A line per problem on stdout; what was skipped (with --verbose) and a summary on stderr."""
    for p in checked.problems:
        print(p.line())
    if verbose:
        for path, why in checked.unread:
            print(f"skipped {path}: {why}", file=sys.stderr)
        for o in checked.skipped:
            print(f"skipped {o.document.source}: {o.document.label}: {o.note}", file=sys.stderr)
    print(_summary(checked, verbose), file=sys.stderr)
    if not checked.checked and not checked.problems:
        print("(no contentgen resources found)", file=sys.stderr)


def _summary(checked: _Checked, verbose: bool) -> str:
    problems, skipped, unread = checked.problems, checked.skipped, checked.unread
    bad = sum(1 for o in checked.checked if o.problems)
    summary = (
        f"{counted(len(problems), 'problem')} in {bad} of {counted(len(checked.checked), 'document')}"
        if problems
        else f"{counted(len(checked.checked), 'resource')} valid"
    )
    if skipped:
        summary += f"; {counted(len(skipped), 'other document')} skipped"
    if unread:
        summary += f"; {counted(len(unread), 'path')} not read"
    if (skipped or unread) and not verbose:
        summary += " (--verbose lists them)"
    return summary
