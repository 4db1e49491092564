"""HTTP range requests (RFC 9110 §14) on stored files, so the web UI's video player can seek.

One range is served (206); a Range this server does not serve (several ranges, another unit, bad
syntax) is ignored, as RFC 9110 allows, and the whole file is sent (200); a range that starts past
the end answers 416."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header
from starlette.responses import FileResponse
from starlette.types import Receive, Scope, Send

_ONE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)

RangeHeader = Annotated[
    str | None,
    Header(
        alias="Range",
        description="One byte range (bytes=0-1023, bytes=1024-, bytes=-500) answers 206 with that part "
        "and Content-Range; several ranges or another unit are ignored (the whole file, 200).",
    ),
]


@dataclass(frozen=True)
class Unsatisfiable:
    size: int


def wanted(header: str | None, size: int) -> tuple[int, int] | Unsatisfiable | None:
    """The inclusive (first, last) byte asked for, Unsatisfiable, or None for the whole file."""
    match = _ONE.match(header or "")
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if not first:  # bytes=-n: the last n bytes
        n = int(last)
        return (max(size - n, 0), size - 1) if n and size else Unsatisfiable(size)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None  # an invalid range-spec: ignored
    return (start, end) if start < size else Unsatisfiable(size)


class WholeFile(FileResponse):
    """The file with Accept-Ranges but without Starlette's own Range handling: the route decided."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in (b"range", b"if-range")]
        await super().__call__({**scope, "headers": headers}, receive, send)


class PartOfFile(FileResponse):
    """Bytes first..last of the file (206), served by Starlette from the range the route checked."""

    def __init__(self, *args: object, part: tuple[int, int], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.part = part

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        first, last = self.part
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"range"]
        headers.append((b"range", f"bytes={first}-{last}".encode()))
        await super().__call__({**scope, "headers": headers}, receive, send)
