"""The catalog's HTTP API (`contentgen api`): records, assets, search, stats, lineage, download
links and a live progress stream, for bearer tokens mapped to owners; the web UI at /, and the
interactive docs at /docs (Swagger UI served from this package: nothing from a CDN)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from contentgen import __version__
from contentgen.catalog import Catalog, open_catalog
from contentgen.store import ObjectStore, open_store

from . import errors
from .auth import TokenError, TokenSource
from .deps import Authenticator, Services
from .routes import assets, health, jobs, stream, ui
from .settings import ApiSettings, load_settings

DOCS_STATIC = "/docs-static"
DESCRIPTION = """Find and reuse what contentgen made: LoRAs, generated images and transcripts.

Send `Authorization: Bearer TOKEN` (tokens come from the file named by CONTENTGEN_API_TOKENS_FILE);
the web UI at `/` uses a session cookie holding the same token instead.
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
        open_store=store
        or (
            lambda: open_store(settings.store, public_endpoint_url=settings.store_public_endpoint_url or None)
        ),
        sleep=sleep,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if opened_here:
            the_catalog.close()

    app = FastAPI(
        title="contentgen catalog API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served below, from local files
        redoc_url=None,
    )
    app.state.services = services
    errors.install(app)
    for module in (jobs, assets, stream, health, ui):
        app.include_router(module.router)
    _serve_docs_offline(app)
    _document_400_not_422(app)
    return app


def _serve_docs_offline(app: FastAPI) -> None:
    """/docs with Swagger UI's files from the fastapi-offline package, and no calls home: the
    validator badge (validator.swagger.io) is off and the favicon is local."""
    import fastapi_offline

    static = Path(fastapi_offline.__file__).parent / "static"
    app.mount(DOCS_STATIC, StaticFiles(directory=static), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="contentgen catalog API",
            swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_STATIC}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )


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
