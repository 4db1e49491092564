"""Serve the catalog's HTTP API: records, assets by kind, search, usage statistics, download links
and a live progress stream, for bearer tokens mapped to owners. Settings come from the environment:
CONTENTGEN_CATALOG, CONTENTGEN_STORE, CONTENTGEN_API_TOKENS_FILE (required),
CONTENTGEN_PRICE_PER_GB_MONTH. Interactive docs at /docs, the OpenAPI document at /openapi.json.
"""

from __future__ import annotations

import argparse

from contentgen.cli.main import CommandError

DEFAULT_PORT = 8080


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 in a pod)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from contentgen.httpapi import create_app

    try:
        app = create_app()
    except (
        ValueError
    ) as exc:  # bad settings or tokens file (TokenError and pydantic's errors are ValueErrors)
        raise CommandError(str(exc)) from None
    # Tokens travel in the Authorization header, which uvicorn's access log does not record.
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
