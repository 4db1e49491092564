"""The web UI: one page (ui/index.html) with its script's modules and styles, served from the package, and
its session: POST /ui/session trades a token for an HttpOnly, SameSite=Strict cookie holding it,
so that images and EventSource streams, which cannot send an Authorization header, are
authenticated like every API call (the token is checked again on each request, so removing it
from the tokens file ends the session at once). Nothing is fetched from other origins.
"""

from __future__ import annotations

from importlib import resources
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from contentgen.api.providers import PROVIDERS

from ..auth import MIN_TOKEN_LENGTH, SESSION_COOKIE
from ..deps import CallerDep, ServicesDep
from ..errors import ERROR_RESPONSES, ApiError, documented_error
from ..kube import KubeUnavailable

router = APIRouter(tags=["ui"])
SESSION_SECONDS = 12 * 3600
UI = resources.files("contentgen.httpapi") / "ui"
# The page may load only what this server serves; pictures and videos also from the presigned
# links of an S3 store that /content redirects to.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: http: https:; media-src 'self' http: https:; "
    "connect-src 'self'; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class Login(BaseModel):
    token: Annotated[str, Field(min_length=MIN_TOKEN_LENGTH, max_length=4096)]


class Session(BaseModel):
    owner: str = Field(description="The owner it acts for by default (what a create uses).")
    owners: list[str] = Field(description="Every owner it acts for.")
    admin: bool = Field(description="Sees every owner's records.")
    user: str = Field(description="Who, as the identity's source names it.")
    via: str = Field(description="token, proxy, kubernetes or local.")


class UiConfig(BaseModel):
    """How the web UI signs in and what it may offer (no login needed to read it)."""

    auth: list[str] = Field(description="CONTENTGEN_API_AUTH: tokens, proxy, kubernetes, or local.")
    tokens: bool = Field(description="A token may be pasted to sign in (auth tokens or kubernetes).")
    logout_url: str = Field(alias="logoutUrl", description="Where Log out goes for proxy sessions ('' none).")
    create: str = Field(description="kubernetes, local or off: whether (and how) things are made.")
    default_namespace: str = Field(alias="defaultNamespace")
    offline: bool = Field(
        default=False,
        description="Creates run with the offline provider whatever provider they name "
        "(CONTENTGEN_API_OFFLINE, `contentgen api --local --offline`): free placeholders.",
    )
    providers: dict[str, str] = Field(
        default_factory=dict,
        description="Each provider a spec may name, with what the create forms say beside its name ('' its "
        "name alone); which providers a kind takes is its spec's provider enum.",
    )
    version: str


def _session(who: Any) -> dict[str, Any]:
    return {
        "owner": who.owner,
        "owners": list(who.owners),
        "admin": who.admin,
        "user": who.user,
        "via": who.via,
    }


@router.get("/", include_in_schema=False)
def page() -> HTMLResponse:
    return HTMLResponse(
        (UI / "index.html").read_text(),
        headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"},
    )


@router.post(
    "/ui/session",
    response_model=Session,
    summary="Log the web UI in: the token becomes an HttpOnly session cookie",
    responses={
        400: documented_error("No token in the body, or this server takes none."),
        401: ERROR_RESPONSES[401],
        503: documented_error("The Kubernetes API that checks tokens cannot be reached."),
    },
)
def login(body: Login, request: Request, svc: ServicesDep) -> JSONResponse:
    """JSON only (a cross-site form cannot send it), and the cookie is SameSite=Strict."""
    if not svc.identities.takes_tokens:
        raise ApiError(400, "bad_request", "this server takes no tokens: sign in through its proxy")
    try:
        found = svc.identities.from_token(body.token)
    except KubeUnavailable as exc:
        raise ApiError(503, "identity_unavailable", str(exc)) from None
    if found is None:
        raise ApiError(401, "unauthorized", "unknown token")
    response = JSONResponse(_session(found))
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(
        SESSION_COOKIE,
        body.token,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
    return response


@router.get("/ui/session", response_model=Session, summary="Who the session is", responses=ERROR_RESPONSES)
def whoami(who: CallerDep) -> dict[str, Any]:
    return _session(who)


@router.get("/ui/config", response_model=UiConfig, summary="How the web UI signs in (no login needed)")
def config(svc: ServicesDep) -> UiConfig:
    from contentgen import __version__

    from ..creators import KubeCreator, LocalCreator

    creator = svc.creator
    create = (
        "kubernetes"
        if isinstance(creator, KubeCreator)
        else "local"
        if isinstance(creator, LocalCreator)
        else "off"
    )
    if creator is not None and create == "off":
        create = "local" if getattr(creator, "local", False) else "kubernetes"
    return UiConfig(
        auth=list(svc.identities.modes),
        tokens=svc.identities.takes_tokens,
        logoutUrl=svc.settings.api_logout_url,
        create=create,
        defaultNamespace=svc.settings.api_default_namespace,
        offline=creator is not None and creator.offline,
        providers={p.name: p.note for p in PROVIDERS.values()},
        version=__version__,
    )


class OwnerBudget(BaseModel):
    owner: str
    monthly_usd: float | None = Field(alias="monthlyUsd", description="null: no limit.")
    source: str = Field(
        description="Where the limit comes from: budgets.owners, budgets.ownerMonthlyUsd or none."
    )


class Budget(BaseModel):
    """The operator's monthly budgets (CONTENTGEN_BUDGETS, the chart's `budgets`) as they apply to
    the caller: its owners' limits, and the namespace limits the chart sets. A namespace's own
    `contentgen.io/budget` annotation is read by the operator, not by this API."""

    owners: list[OwnerBudget]
    namespace_monthly_usd: float | None = Field(alias="namespaceMonthlyUsd")
    namespaces: dict[str, float]


@router.get(
    "/ui/budget",
    response_model=Budget,
    summary="The monthly budgets that apply to the caller",
    responses={401: ERROR_RESPONSES[401], 403: ERROR_RESPONSES[403], 503: ERROR_RESPONSES[503]},
)
def budget(svc: ServicesDep, who: CallerDep) -> dict[str, Any]:
    budgets = svc.settings.budgets
    owners = list(who.owners)
    if who.admin:
        owners += [o for o in budgets.owners if o not in owners]

    def limit(owner: str) -> dict[str, Any]:
        if owner in budgets.owners:
            return {"owner": owner, "monthlyUsd": budgets.owners[owner], "source": "budgets.owners"}
        if budgets.owner_monthly_usd is not None:
            return {
                "owner": owner,
                "monthlyUsd": budgets.owner_monthly_usd,
                "source": "budgets.ownerMonthlyUsd",
            }
        return {"owner": owner, "monthlyUsd": None, "source": "none"}

    return {
        "owners": [limit(o) for o in owners],
        "namespaceMonthlyUsd": budgets.namespace_monthly_usd,
        "namespaces": dict(budgets.namespaces),
    }


@router.delete("/ui/session", status_code=204, summary="Log the web UI out")
def logout() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


# The page's files by their ending: its script's modules (app.js imports the others; a module
# served as anything but JavaScript is refused by the browser) and its styles.
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def static_type(name: str) -> str | None:
    """The content type /ui/NAME is served with; None: not a file the page loads."""
    return STATIC_TYPES.get(PurePosixPath(name).suffix)


# Last: /ui/session above is not a file.
@router.get("/ui/{name}", include_in_schema=False)
def static(name: str) -> Response:
    media_type = static_type(name)
    file = UI / name
    if media_type is None or not file.is_file():
        raise ApiError(404, "not_found", f"no file {name!r}")
    return Response(file.read_bytes(), media_type=media_type, headers={"Cache-Control": "no-cache"})
