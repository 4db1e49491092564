"""Write the CustomResourceDefinitions generated from the API models.

With --out DIR, one file per kind (the repository keeps them in crds/); without it, all of
them to stdout, ready for `kubectl apply -f -`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="DIR", type=Path, help="directory to write the CRD files into")


def run(args: argparse.Namespace) -> int:
    from contentgen.api.crd import rendered_crds, write_crds

    if args.out is None:
        sys.stdout.write("---\n".join(rendered_crds().values()))
        return 0
    for path in write_crds(args.out):
        print(path, file=sys.stderr)
    return 0
