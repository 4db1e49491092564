"""The HTTP API (`contentgen api`): records, assets, search, stats, lineage, download links and a
live progress stream; creating, re-running, cancelling and deleting resources (creators.py); for
identities from static tokens, an authenticating proxy, Kubernetes tokens or a laptop's one local
owner (identity.py); the web UI at /, and the interactive docs at /docs (Swagger UI served from
this package: nothing from a CDN)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from contentgen import __version__
from contentgen.api import API_VERSION, KINDS
from contentgen.catalog import FILTER_HELP, Catalog, open_catalog
from contentgen.catalog.queries import type_help
from contentgen.store import ObjectStore, open_store

from . import errors, request_rules
from .auth import TokenError, TokenSource
from .creators import Creator, KubeCreator, LocalCreator
from .deps import Authenticator, Services
from .identity import (
    Identities,
    IdentityError,
    OwnerMapSource,
    ProxyHeaders,
    TokenReviewer,
    TrustedProxies,
    parse_networks,
)
from .kube import Kube, in_a_pod, load
from .manifests import created_kinds
from .routes import (
    assets,
    base_models,
    collections,
    create,
    evaluate,
    health,
    jobs,
    notifications,
    promote,
    sharing,
    stream,
    training,
    ui,
    uploads,
    verdict,
)
from .settings import ApiSettings, load_settings

log = logging.getLogger(__name__)
DOCS_STATIC = "/docs-static"
DESCRIPTION = """Make, find and reuse what contentgen makes: LoRAs, generated images and transcripts.

Identities: `Authorization: Bearer TOKEN` with a static token (CONTENTGEN_API_TOKENS_FILE) or a
Kubernetes token (checked with TokenReview); an authenticating proxy's `X-Auth-Request-User`,
`-Email` and `-Groups` headers, from trusted addresses only; or, on a laptop (`contentgen api
--local`), no login at all. The web UI at `/` keeps a token in a session cookie instead.
An identity sees the records of the owners it acts for; an admin sees everyone's and may filter
with `?owner=`. Errors are `{"error": {"code", "message"}}`; a create's validation errors also
list `{"field", "message"}` entries under `error.fields`.
"""

TOKENS_FORMAT = (
    "a tokens file is YAML or JSON, e.g. `tokens: [{owner: alice, token: <16+ random characters>}, "
    "{owner: ops, sha256: <hex SHA-256 of a token>, admin: true}]` (docs/identity.md); on a laptop "
    "`contentgen api --local` needs none"
)


def build_identities(settings: ApiSettings, tokens: Authenticator | None = None) -> Identities:
    """The identity sources CONTENTGEN_API_AUTH names; TokenError or IdentityError saying what is
    missing."""
    modes = tuple(settings.api_auth)
    if "tokens" in modes and tokens is None:
        if settings.api_tokens_file is None:
            raise TokenError(
                f"CONTENTGEN_API_TOKENS_FILE is not set: auth tokens needs a tokens file. {TOKENS_FORMAT}"
            )
        try:
            tokens = TokenSource(settings.api_tokens_file)
        except TokenError as exc:
            raise TokenError(f"{exc}. {TOKENS_FORMAT}") from None
    proxies = None
    if "proxy" in modes:
        networks = parse_networks(settings.api_trusted_proxies)
        if not networks:
            raise IdentityError(
                "auth proxy needs CONTENTGEN_API_TRUSTED_PROXIES: the proxy's addresses or CIDRs "
                "(e.g. 127.0.0.1 for a sidecar), whose identity headers are believed"
            )
        headers = ProxyHeaders(
            settings.api_proxy_user_header, settings.api_proxy_email_header, settings.api_proxy_groups_header
        )
        proxies = TrustedProxies(networks, headers)
    reviewer = None
    if "kubernetes" in modes:
        kube = _kube(settings, "auth kubernetes", "set CONTENTGEN_API_KUBECONFIG (or KUBECONFIG)")
        reviewer = TokenReviewer(kube, tuple(settings.api_token_audiences))
    owners = OwnerMapSource(settings.api_owners_file)
    if ({"proxy", "kubernetes"} & set(modes)) and settings.api_owners_file is None:
        log.warning("auth %s without CONTENTGEN_API_OWNERS_FILE: no user acts for any owner", ",".join(modes))
    return Identities(modes, tokens, owners, proxies, reviewer, settings.api_local_owner)


def create_app(
    settings: ApiSettings | None = None,
    *,
    catalog: Catalog | None = None,
    tokens: Authenticator | None = None,
    identities: Identities | None = None,
    creator: Creator | Literal["settings"] | None = "settings",
    store: Callable[[], ObjectStore] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> FastAPI:
    """The app. What is not passed comes from `settings` (default: the environment); a catalog
    opened here is closed at shutdown, and so are local runs (which finish the run under way).
    `sleep` paces the progress stream (tests pass their own)."""
    settings = settings or load_settings()
    identities = identities or build_identities(settings, tokens)
    opened_here = catalog is None
    local = "local" in settings.api_auth  # a laptop's API makes its catalog, as `contentgen run` does
    the_catalog = catalog if catalog is not None else open_catalog(settings.catalog, create=local)
    services = Services(
        settings=settings,
        catalog=the_catalog,
        identities=identities,
        open_store=store
        or (
            lambda: open_store(settings.store, public_endpoint_url=settings.store_public_endpoint_url or None)
        ),
        sleep=sleep,
    )
    services.creator = (
        build_creator(settings, the_catalog, services.store) if creator == "settings" else creator
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if isinstance(services.creator, LocalCreator):
            services.creator.close()
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
    for module in (
        jobs,
        base_models,
        create,
        uploads,
        evaluate,
        promote,
        verdict,
        training,
        sharing,
        collections,
        assets,
        notifications,
        stream,
        health,
        ui,
    ):
        app.include_router(module.router)
    _serve_docs_offline(app)
    _document_400_not_422(app)
    app.add_middleware(SameOrigin)
    return app


def build_creator(
    settings: ApiSettings, catalog: Catalog, store: Callable[[], ObjectStore]
) -> Creator | None:
    """How creates are made (CONTENTGEN_API_CREATE; creators.py); None when they are not."""
    mode = settings.api_create
    if mode == "auto":
        cluster = settings.api_kubeconfig is not None or in_a_pod()
        mode = "local" if "local" in settings.api_auth else ("kubernetes" if cluster else "off")
    if mode == "off":
        return None
    if mode == "local":
        return LocalCreator(catalog, store, offline=settings.api_offline)
    return KubeCreator(_kube(settings, "CONTENTGEN_API_CREATE=kubernetes", "set CONTENTGEN_API_KUBECONFIG"))


def _kube(settings: ApiSettings, what: str, otherwise: str) -> Kube:
    """The Kubernetes API `what` needs (in a pod, or from a kubeconfig), or one line saying why not."""
    try:
        kube = load(settings.api_kubeconfig)
    except ValueError as exc:
        raise IdentityError(f"{what}: {exc}") from None
    if kube is None:
        raise IdentityError(
            f"{what} needs the Kubernetes API: run in a pod with a ServiceAccount token, or {otherwise}"
        )
    return kube


class SameOrigin:
    """Refuses a request that changes something (POST, PUT, PATCH, DELETE) when the browser says it
    comes from another site (Origin or Sec-Fetch-Site): with local mode's open door and the web UI's
    cookie, a page elsewhere must not be able to create, cancel or delete."""

    UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in self.UNSAFE:
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []
            }
            origin, host = headers.get("origin"), headers.get("host", "")
            site = headers.get("sec-fetch-site", "")
            foreign = site == "cross-site" or (
                origin is not None and origin != "null" and urlsplit(origin).netloc.lower() != host.lower()
            )
            if foreign or origin == "null":
                response = errors.error_response(
                    403, "cross_site", "refused: the request comes from another site (Origin, Sec-Fetch-Site)"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


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
    {"error"} (errors.py), so the OpenAPI document says so. The creates' request bodies say their
    rules in JSON Schema (request_rules.py); ?type= names the kinds registered when it is written."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
                    for parameter in operation.get("parameters", []):  # ?type=, written at import
                        if parameter.get("description") == FILTER_HELP["type"]:
                            parameter["description"] = type_help()
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            _typed_resource_requests(schema)
            creator = app.state.services.creator
            # The spec models' rules (CEL) as JSON Schema; a laptop's runs take local files too.
            request_rules.apply(
                schema["components"]["schemas"],
                local=bool(creator is not None and creator.local),
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _typed_resource_requests(schema: dict[str, Any]) -> None:
    """POST /api/resources takes any kind's manifest and validates its spec itself (with the
    messages of `contentgen validate`); the document says exactly which: one schema per kind, with
    the kind's spec as the API models define it (the CRDs' source), `owner` optional."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    variants = {}
    for kind in KINDS.values():
        if kind.kind not in created_kinds():  # a kind the API does not create (Notification)
            continue
        spec = kind.spec.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        for name, definition in spec.pop("$defs", {}).items():
            components.setdefault(name, definition)
        spec["required"] = [r for r in spec.get("required", []) if r != "owner"]
        spec["description"] = f"{kind.kind}'s spec (see the API reference); owner defaults to the caller's."
        components[f"{kind.kind}RequestSpec"] = spec
        name = f"{kind.kind}Request"
        components[name] = {
            "type": "object",
            "additionalProperties": False,
            "required": ["kind", "spec"],
            "properties": {
                "apiVersion": {"type": "string", "const": API_VERSION},
                "kind": {"type": "string", "const": kind.kind},
                "metadata": {"$ref": "#/components/schemas/RequestMetadata"},
                "spec": {"$ref": f"#/components/schemas/{kind.kind}RequestSpec"},
            },
        }
        variants[kind.kind] = f"#/components/schemas/{name}"
    components["ResourceRequest"] = {
        "title": "ResourceRequest",
        "description": components.get("ResourceRequest", {}).get("description", ""),
        "oneOf": [{"$ref": ref} for ref in variants.values()],
        "discriminator": {"propertyName": "kind", "mapping": variants},
    }
