"""The web UI: one page (ui/index.html) with its script and styles, served from the package, and
its session: POST /ui/session trades a token for an HttpOnly, SameSite=Strict cookie holding it,
so that images and EventSource streams, which cannot send an Authorization header, are
authenticated like every API call (the token is checked again on each request, so removing it
from the tokens file ends the session at once). Nothing is fetched from other origins.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from ..auth import MIN_TOKEN_LENGTH, SESSION_COOKIE
from ..deps import CallerDep, ServicesDep
from ..errors import ERROR_RESPONSES, ApiError

router = APIRouter(tags=["ui"])
SESSION_SECONDS = 12 * 3600
UI = resources.files("contentgen.httpapi") / "ui"
# The page may load only what this server serves.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: http: https:; connect-src 'self'; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class Login(BaseModel):
    token: Annotated[str, Field(min_length=MIN_TOKEN_LENGTH, max_length=4096)]


class Session(BaseModel):
    owner: str
    admin: bool


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
    responses={401: ERROR_RESPONSES[401]},
)
def login(body: Login, request: Request, svc: ServicesDep) -> JSONResponse:
    """JSON only (a cross-site form cannot send it), and the cookie is SameSite=Strict."""
    found = svc.tokens.authenticate(body.token)
    if found is None:
        raise ApiError(401, "unauthorized", "unknown token")
    response = JSONResponse(Session(owner=found.owner, admin=found.admin).model_dump())
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
    return {"owner": who.owner, "admin": who.admin}


@router.delete("/ui/session", status_code=204, summary="Log the web UI out")
def logout() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


_STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}


# Last: /ui/session above is not a file.
@router.get("/ui/{name}", include_in_schema=False)
def static(name: str) -> Response:
    if name not in _STATIC:
        raise ApiError(404, "not_found", f"no file {name!r}")
    return Response((UI / name).read_bytes(), media_type=_STATIC[name], headers={"Cache-Control": "no-cache"})
