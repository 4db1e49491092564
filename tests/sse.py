"""The HTTP API on a real socket over a given catalog, and a reader of its server-sent events, for
the tests that watch the catalog live (kube/, e2e/)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from contentgen.catalog import Catalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.store import ObjectStore
from tests.harness.servers import serve_app


@contextmanager
def serve_api(catalog: Catalog, store: ObjectStore, tokens: dict[str, str], folder: Path) -> Iterator[str]:
    """`contentgen api` over `catalog` (streams poll every 0.2 s); `tokens`: owner -> token.
    Yields its base URL."""
    path = folder / "tokens.yaml"
    path.write_text(yaml.safe_dump({"tokens": [{"owner": o, "token": t} for o, t in tokens.items()]}))
    settings = ApiSettings(catalog="unused://", store="unused", api_tokens_file=path, stream_poll_seconds=0.2)
    with serve_app(create_app(settings, catalog=catalog, store=lambda: store)) as base:
        yield base


class Events:
    """The server-sent events of one stream, collected by a thread until `stop` is set."""

    def __init__(self, url: str, token: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(url, token), daemon=True)
        self.thread.start()

    def _read(self, url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(5, read=None)) as response:
                name = ""
                for line in response.iter_lines():
                    if self.stop.is_set():
                        return
                    if line.startswith("event: "):
                        name = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        self.events.append((name, json.loads(line.removeprefix("data: "))))
        except httpx.TransportError:
            if not self.stop.is_set():
                raise  # the stream broke while a test read it
            # stopped, then the server closed the stream it was blocked on: the end asked for

    def runs(self, name: str) -> list[tuple[str, str, int]]:
        """(phase, stage, progress) of the latest run of the records named `name`, as announced."""
        return [
            (d["latestRun"]["phase"], d["latestRun"]["stage"], d["latestRun"]["progress"])
            for event, d in self.events
            if event == "job" and d["name"] == name
        ]
