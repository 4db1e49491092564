"""Validate contentgen manifests offline: everything admission checks (schema and CEL rules),
plus what it cannot (unknown fields, which the API server silently drops; unknown apiVersions
and kinds). Documents of other API groups are skipped. Prints one line per problem:
FILE: DOCUMENT: FIELD: REASON. Exit 0 when all are valid, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files, directories or - for stdin")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")


def run(args: argparse.Namespace) -> int:
    from contentgen.api.manifests import read
    from contentgen.api.validation import validate_documents

    outcomes = validate_documents(read(args.paths))
    problems = [p for o in outcomes for p in o.problems]
    checked = [o for o in outcomes if not o.skipped]
    skipped = len(outcomes) - len(checked)
    if args.output == "json":
        json.dump(
            {
                "valid": not problems,
                "resources": len(checked),
                "skipped": skipped,
                "problems": [p.as_dict() for p in problems],
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        for p in problems:
            print(p.line())
        bad = sum(1 for o in checked if o.problems)
        summary = (
            f"{len(problems)} problem(s) in {bad} of {len(checked)} document(s)"
            if problems
            else f"{len(checked)} resource(s) valid"
        )
        if skipped:
            summary += f"; {skipped} document(s) of other API groups skipped"
        print(summary, file=sys.stderr)
    if not checked and not problems and args.output == "text":
        print("(no contentgen resources found)", file=sys.stderr)
    return 1 if problems else 0
