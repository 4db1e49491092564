"""Validate contentgen manifests offline: everything admission checks (schema and CEL rules),
plus what it cannot (unknown fields, which the API server silently drops; unknown apiVersions
and kinds). Made for GitOps repositories: in directories, dot-directories, Helm chart templates,
files that never mention contentgen, documents without an apiVersion and documents of other API
groups are skipped (--verbose lists them). Prints one line per problem:
FILE: DOCUMENT: FIELD: REASON. Exit 0 when all are valid, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys


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
    problems = [p for o in outcomes for p in o.problems]
    checked = [o for o in outcomes if not o.skipped]
    skipped_docs = [o for o in outcomes if o.skipped]
    if args.output == "json":
        json.dump(
            {
                "valid": not problems,
                "resources": len(checked),
                "skipped": len(skipped_docs),
                "skippedFiles": len(found.skipped),
                "problems": [p.as_dict() for p in problems],
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        for p in problems:
            print(p.line())
        if args.verbose:
            for path, why in found.skipped:
                print(f"skipped {path}: {why}", file=sys.stderr)
            for o in skipped_docs:
                print(f"skipped {o.document.source}: {o.document.label}: {o.note}", file=sys.stderr)
        bad = sum(1 for o in checked if o.problems)
        summary = (
            f"{len(problems)} problem(s) in {bad} of {len(checked)} document(s)"
            if problems
            else f"{len(checked)} resource(s) valid"
        )
        if skipped_docs:
            summary += f"; {len(skipped_docs)} other document(s) skipped"
        if found.skipped:
            summary += f"; {len(found.skipped)} path(s) not read"
        if (skipped_docs or found.skipped) and not args.verbose:
            summary += " (--verbose lists them)"
        print(summary, file=sys.stderr)
    if not checked and not problems and args.output == "text":
        print("(no contentgen resources found)", file=sys.stderr)
    return 1 if problems else 0
