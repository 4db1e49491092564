"""Serve the HTTP API and its web UI: records, assets by kind, search, lineage, usage statistics,
download links and a live progress stream; creating, re-running, cancelling and deleting. Settings
come from the environment (the chart sets them; docs/http-api.md and docs/identity.md list them):
CONTENTGEN_CATALOG (or --catalog), CONTENTGEN_STORE (or --store), CONTENTGEN_API_AUTH (tokens,
proxy, kubernetes) with CONTENTGEN_API_TOKENS_FILE, CONTENTGEN_API_OWNERS_FILE and
CONTENTGEN_API_TRUSTED_PROXIES, CONTENTGEN_API_CREATE. On a laptop, --local: one owner (--owner,
default the examples' demo-user), no login, this machine only, and creates run here as
`contentgen run` runs them (--offline: with the offline provider). Interactive docs at /docs, the
OpenAPI document at /openapi.json.
"""

from __future__ import annotations

import argparse
import ipaddress

from contentgen.cli.main import CommandError

DEFAULT_PORT = 8080


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 in a pod)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--catalog", metavar="URL", help="the catalog (default: $CONTENTGEN_CATALOG)")
    parser.add_argument("--store", metavar="URL", help="the store (default: $CONTENTGEN_STORE)")
    parser.add_argument(
        "--local",
        action="store_true",
        help="a laptop: one local owner, no tokens file and no login, answering this machine only; "
        "creates run here (CONTENTGEN_API_AUTH=local)",
    )
    parser.add_argument(
        "--owner",
        metavar="NAME",
        help="--local's owner (default $CONTENTGEN_API_LOCAL_OWNER, else demo-user)",
    )
    parser.add_argument(
        "--offline", action="store_true", help="--local's runs use the offline provider (no paid API)"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from contentgen.catalog import CatalogUnavailable
    from contentgen.httpapi import create_app
    from contentgen.httpapi.settings import load_settings

    chosen: dict[str, object] = {k: v for k, v in (("catalog", args.catalog), ("store", args.store)) if v}
    if args.local:
        chosen.update(api_auth=["local"], api_create="local")
    if args.owner:
        import re

        from contentgen.api.common import OWNER_PATTERN

        if not re.fullmatch(OWNER_PATTERN, args.owner):
            raise CommandError(
                f"--owner {args.owner!r}: use lowercase letters, digits, '.', '_' and '-', starting and "
                "ending with a letter or digit, at most 63 characters"
            )
        chosen["api_local_owner"] = args.owner
    if args.offline:
        chosen["api_offline"] = True
    try:
        settings = load_settings().model_copy(update=chosen)
        settings = type(settings).model_validate(settings.model_dump())  # check what the flags set
    except ValueError as exc:
        raise CommandError(str(exc).splitlines()[0]) from None
    if "local" in settings.api_auth and not _loopback(args.host):
        raise CommandError(
            f"--host {args.host}: local mode has no login, so it listens on this machine only "
            "(127.0.0.1, ::1 or localhost); for a shared server use tokens, proxy or kubernetes auth"
        )
    try:
        app = create_app(settings)
    except (ValueError, CatalogUnavailable) as exc:
        # bad settings, tokens file or catalog (TokenError and pydantic's errors are ValueErrors)
        raise CommandError(str(exc)) from None
    if "local" in settings.api_auth:
        print(
            f"contentgen api: local mode, owner {settings.api_local_owner}: http://{args.host}:{args.port}/"
        )
    # Tokens travel in the Authorization header, which uvicorn's access log does not record. The
    # peer address is the connection's own (proxy_headers off): trusted proxies are matched on it.
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", proxy_headers=False)
    return 0
