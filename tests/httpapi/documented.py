"""Whether the OpenAPI document states what the server answered: wrap an app in `Answers`, make
calls, then `answers.undocumented()` lists every (method, route, status) the server sent that the
route's `responses` do not list. Requests refused before routing (the same-origin guard) have no
route and are left out.

Generating the document takes seconds; it depends only on the app's routes (their paths, methods,
endpoints and declared responses), so it is made once per distinct set of routes in a process,
not once per test's app."""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute

_DOCUMENTED: dict[tuple[Any, ...], dict[tuple[str, str], set[str]]] = {}


class Answers:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: set[tuple[str, str, int]] = set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def recording(message: Any) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                if route is not None:
                    self.seen.add((scope["method"].lower(), route.path, int(message["status"])))
            await send(message)

        await self.app(scope, receive, recording)

    def undocumented(self) -> list[tuple[str, str, int]]:
        documented = documented_statuses(self.app)
        out = []
        for method, path, status in sorted(self.seen):
            statuses = documented.get((method, re.sub(r":\w+}", "}", path)))
            if statuses is None:  # not in the document (the web UI's pages, /docs)
                continue
            if str(status) not in statuses:
                out.append((method, path, status))
        return out

    def statuses(self, method: str, path: str) -> set[int]:
        return {s for m, p, s in self.seen if (m, p) == (method, path)}


def documented_statuses(app: Any) -> dict[tuple[str, str], set[str]]:
    """(method, path) -> the statuses `app`'s OpenAPI document lists for it."""
    key = tuple(
        sorted(
            (
                r.path,
                tuple(sorted(r.methods)),
                f"{r.endpoint.__module__}.{r.endpoint.__qualname__}",
                r.status_code,
                tuple(sorted(map(str, r.responses))),
                r.include_in_schema,
            )
            for r in app.routes
            if isinstance(r, APIRoute)
        )
    )
    if key not in _DOCUMENTED:
        _DOCUMENTED[key] = {
            (method, path): set(operation.get("responses", {}))
            for path, operations in app.openapi()["paths"].items()
            for method, operation in operations.items()
        }
    return _DOCUMENTED[key]
