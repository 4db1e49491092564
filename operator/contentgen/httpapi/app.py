"""The catalog's HTTP API (`contentgen api`): records, assets, search, stats, download links and
a live progress stream, for bearer tokens mapped to owners."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from contentgen import __version__
from contentgen.catalog import Catalog, open_catalog
from contentgen.store import ObjectStore, open_store

from . import errors
from .auth import TokenError, TokenSource
from .deps import Authenticator, Services
from .routes import assets, health, jobs, stream
from .settings import ApiSettings, load_settings

DESCRIPTION = """Find and reuse what contentgen made: LoRAs, generated images and transcripts.

Send `Authorization: Bearer TOKEN` (tokens come from the file named by CONTENTGEN_API_TOKENS_FILE).
A token sees its owner's records only; an admin token sees everyone's and may filter with `?owner=`.
Errors are `{"error": {"code", "message"}}`.
"""


def create_app(
    settings: ApiSettings | None = None,
    *,
    catalog: Catalog | None = None,
    tokens: Authenticator | None = None,
    store: Callable[[], ObjectStore] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> FastAPI:
    """The app. What is not passed comes from `settings` (default: the environment); a catalog
    opened here is closed at shutdown. `sleep` paces the progress stream (tests pass their own)."""
    settings = settings or load_settings()
    if tokens is None:
        if settings.api_tokens_file is None:
            raise TokenError("CONTENTGEN_API_TOKENS_FILE is not set: the API needs a tokens file")
        tokens = TokenSource(settings.api_tokens_file)
    opened_here = catalog is None
    the_catalog = catalog if catalog is not None else open_catalog(settings.catalog)
    services = Services(
        settings=settings,
        catalog=the_catalog,
        tokens=tokens,
        open_store=store or (lambda: open_store(settings.store)),
        sleep=sleep,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if opened_here:
            the_catalog.close()

    app = FastAPI(
        title="contentgen catalog API", version=__version__, description=DESCRIPTION, lifespan=lifespan
    )
    app.state.services = services
    errors.install(app)
    for module in (jobs, assets, stream, health):
        app.include_router(module.router)
    _document_400_not_422(app)
    return app


def _document_400_not_422(app: FastAPI) -> None:
    """FastAPI documents validation errors as 422 with its own body; this API answers 400 with
    {"error"} (errors.py), so the OpenAPI document says so."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
