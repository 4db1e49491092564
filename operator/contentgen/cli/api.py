"""Serve the catalog's HTTP API and its web UI: records, assets by kind, search, lineage, usage
statistics, download links and a live progress stream, for bearer tokens mapped to owners; the web
UI at /. Settings come from the environment: CONTENTGEN_CATALOG (or --catalog), CONTENTGEN_STORE
(or --store), CONTENTGEN_API_TOKENS_FILE (required), CONTENTGEN_PRICE_PER_GB_MONTH,
CONTENTGEN_STORE_PUBLIC_ENDPOINT_URL. Interactive docs at /docs, the OpenAPI document at /openapi.json.
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
    parser.add_argument("--catalog", metavar="URL", help="the catalog (default: $CONTENTGEN_CATALOG)")
    parser.add_argument("--store", metavar="URL", help="the store (default: $CONTENTGEN_STORE)")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from contentgen.catalog import CatalogUnavailable
    from contentgen.httpapi import create_app
    from contentgen.httpapi.settings import load_settings

    chosen = {k: v for k, v in (("catalog", args.catalog), ("store", args.store)) if v}
    try:
        app = create_app(load_settings().model_copy(update=chosen))
    except (ValueError, CatalogUnavailable) as exc:
        # bad settings, tokens file or catalog (TokenError and pydantic's errors are ValueErrors)
        raise CommandError(str(exc)) from None
    # Tokens travel in the Authorization header, which uvicorn's access log does not record.
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
