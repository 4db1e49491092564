"""Whether the OpenAPI document states what the server answered: wrap an app in `Answers`, make
calls, then `answers.undocumented()` lists every (method, route, status) the server sent that the
route's `responses` do not list. Requests refused before routing (the same-origin guard) have no
route and are left out."""

from __future__ import annotations

import re
from typing import Any


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
        paths = self.app.openapi()["paths"]
        out = []
        for method, path, status in sorted(self.seen):
            operation = paths.get(re.sub(r":\w+}", "}", path), {}).get(method)
            if operation is None:  # not in the document (the web UI's pages, /docs)
                continue
            if str(status) not in operation["responses"]:
                out.append((method, path, status))
        return out

    def statuses(self, method: str, path: str) -> set[int]:
        return {s for m, p, s in self.seen if (m, p) == (method, path)}
