"""Write the CustomResourceDefinitions generated from the API models.

With --out DIR, one file per kind (the repository keeps them in crds/); without it, all of
them to stdout, ready for `kubectl apply -f -`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contentgen.cli.main import CommandError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", metavar="DIR", type=Path, help="directory to write the CRD files into (made if missing)"
    )


def run(args: argparse.Namespace) -> int:
    from contentgen.api.crd import rendered_crds, write_crds

    if args.out is None:
        sys.stdout.write("---\n".join(rendered_crds().values()))
        return 0
    if args.out.exists() and not args.out.is_dir():
        raise CommandError(
            f"--out {args.out} is a file: give a directory (it gets one file per CRD), "
            "or leave --out out to print them all"
        )
    try:
        written = write_crds(args.out)
    except OSError as exc:
        raise CommandError(f"--out {args.out}: cannot write there: {exc.strerror or exc}") from None
    for path in written:
        print(path, file=sys.stderr)
    return 0
