"""Every error as JSON: {"error": {"code", "message"}}, with the status code saying which kind."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from contentgen.api.validation import in_words
from contentgen.catalog import CatalogUnavailable

log = logging.getLogger(__name__)


class FieldError(BaseModel):
    field: str = Field(description="The field's path, e.g. spec.numImages (empty: the request as a whole).")
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: list[FieldError] | None = Field(
        default=None,
        description="Every problem with the request, one per field: a create's spec (code invalid), "
        "or the request's shape (code bad_request).",
    )


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        fields: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.fields = fields


def bad_request(param: str, problem: str) -> ApiError:
    return ApiError(400, "bad_request", f"{param}: {problem}")


def not_found(ref: str) -> ApiError:
    # The same answer whether the record is missing or another owner's.
    return ApiError(404, "not_found", f"no record {ref!r}")


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    fields: list[dict[str, str]] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, fields=fields))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _field(error: dict[str, Any]) -> str:
    """The parameter or body field an error names: loc is ("query", "limit"), ("path", "id") or
    ("body", "spec", "loras", 0, "url")."""
    if error.get("type") == "json_invalid":
        return "body"  # its loc's second part is the position of the fault in the text
    text = ""
    for part in error.get("loc", ())[1:]:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _describe(error: dict[str, Any]) -> dict[str, str]:
    """One of the request's problems, in words (api/validation.py: no pattern, no pydantic phrase)."""
    return {"field": _field(error), "message": in_words(error)}


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
}


# A route's OpenAPI `responses`: each status code's answer (documented_error's, or a model's)
Responses = dict[int | str, dict[str, Any]]


def documented_error(description: str) -> dict[str, Any]:
    """A route's answer other than success, for its OpenAPI `responses`: the error body and why."""
    return {"model": ErrorResponse, "description": description}


# Documented on every route that takes parameters and needs a token.
ERROR_RESPONSES: Responses = {
    400: documented_error("A bad parameter (named in the message)."),
    401: documented_error("No token, or an unknown one."),
    403: documented_error("A non-admin token asked for another owner (?owner=)."),
    404: documented_error("No such record visible to the caller."),
    409: documented_error(
        "An ambiguous reference (code ambiguous): several records answer to it; the message lists them."
    ),
    503: documented_error("The catalog (MongoDB) cannot be reached."),
}


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path: Starlette's 405 names only the first
    route's that matched the path (GET, where DELETE is served there too)."""
    path = request.scope.get("path", "")
    return sorted(
        {
            method
            for route in _routes(request.app.routes)
            if route.path_regex.match(path)
            for method in route.methods
        }
    )


def _routes(routes: Any) -> Iterator[Any]:
    """The routes that serve methods, inside included routers too."""
    for route in routes:
        if getattr(route, "methods", None) and getattr(route, "path_regex", None) is not None:
            yield route
            continue
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        if inner is None:
            inner = getattr(route, "routes", None)
        if inner:
            yield from _routes(inner)


def install(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.headers, exc.fields)

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = list({tuple(p.items()): p for p in map(_describe, exc.errors())}.values())
        message = "; ".join(f"{p['field'] or 'the request'}: {p['message']}" for p in problems)
        return error_response(400, "bad_request", message, fields=problems)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _CODES.get(exc.status_code, "error")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return error_response(exc.status_code, code, str(exc.detail), headers)

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("catalog unavailable: %s", exc)
        return error_response(503, "catalog_unavailable", str(exc), {"Retry-After": "5"})

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, "internal", "internal error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(CatalogUnavailable, unavailable)
    app.add_exception_handler(Exception, unexpected)
