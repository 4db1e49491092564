"""Creators for the HTTP API's tests: one that holds its work, the local host header, a run waited for
(tests/httpapi)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx

from contentgen.httpapi.creators import LocalCreator
from contentgen.httpapi.settings import ApiSettings
from contentgen.store import LocalStore


def laptop_settings(store: LocalStore, create: str = "local") -> ApiSettings:
    """The HTTP API as `contentgen api` serves it on a laptop: the local user, offline runs,
    creates as `create` says (local, or off)."""
    return ApiSettings(
        catalog="unused://",
        store=str(store.root),
        api_auth=["local"],
        api_create=create,
        api_local_owner="demo-user",
        api_offline=True,
        api_default_namespace="default",
    )


class HeldCreator(LocalCreator):
    """Creates are accepted, recorded and queued as on a laptop; the runs wait and are cancelled."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        self.release = threading.Event()
        super().__init__(*args, **kw)

    def _run(self, run: Any) -> None:
        self.release.wait()
        super()._run(run)

    def close(self, timeout: float = 30.0) -> None:
        with self._lock:  # cancelled before they are let go: none runs
            for run in self._runs.values():
                run.cancel.set()
        self.release.set()
        super().close(timeout)


LOCAL = {"Host": "localhost:8080"}


async def finished_run(http: httpx.AsyncClient, uid: str) -> dict[str, Any]:
    async def phase() -> dict[str, Any] | None:
        got = await http.get(f"/api/jobs/{uid}")
        if got.status_code != 200:
            return None
        doc: dict[str, Any] = got.json()
        return doc if (doc.get("latestRun") or {}).get("phase") in ("Succeeded", "Failed") else None

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = await phase()
        if found is not None:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"the local run {uid} did not finish")
