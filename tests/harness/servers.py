"""Servers a test starts in its own process: the HTTP API on a real socket (uvicorn in a thread),
and a tiny routed HTTP(S) server (`serve`, from tests/httpserver.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tests.httpserver import serve
from tests.waiting import wait_for

__all__ = ["serve", "serve_app"]


@contextmanager
def serve_app(app: Any, lifespan: str = "off") -> Iterator[str]:
    """Yields the base URL of `app` served by uvicorn on a free port of 127.0.0.1; stops it after."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan=lifespan)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), 30, "the API to start", interval=0.02)
    assert server.started, "the API did not start"
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
