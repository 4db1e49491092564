"""The informer for Jobs and pods (controller/runtime/informer.py) against a scripted API server: pages,
resumed watches, 410 Gone and what a new listing lacks, errors that are retried, never escalated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from contentgen.controller.kube import KubeError
from contentgen.controller.runtime import informer as informer_module
from contentgen.controller.runtime.informer import Informer, Store

SELECTOR = "app.kubernetes.io/managed-by=contentgen-operator"


@dataclass(frozen=True)
class Thing:
    name: str
    namespace: str
    owner: str
    phase: str = ""


def parse(obj: dict[str, Any]) -> Thing | None:
    meta = obj["metadata"]
    owner = (meta.get("labels") or {}).get("owner")
    if not owner:
        return None
    return Thing(meta["name"], meta["namespace"], owner, (obj.get("status") or {}).get("phase", ""))


def obj(name: str, owner: str = "a", phase: str = "", rv: str = "1", ns: str = "n") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "labels": {"owner": owner}, "resourceVersion": rv},
        "status": {"phase": phase},
    }


class Server:
    """Scripted answers: `pages` for each listing (a list of pages), `watches` for each watch
    request (a list of events, or an exception to raise)."""

    def __init__(self, listings: list[list[dict[str, Any]]], watches: list[Any]) -> None:
        self.listings, self.watches = listings, watches
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.idle = asyncio.Event()  # set once the script has run out

    async def request(self, method: str, path: str, *, params: dict[str, str]) -> Any:
        self.requests.append(("list", dict(params)))
        pages = self.listings[0]
        index = int(params.get("continue", "0"))
        if index == len(pages) - 1:
            self.listings.pop(0)
        return pages[index]

    async def watch(
        self, path: str, params: dict[str, str], *, read_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        self.requests.append(("watch", dict(params)))
        if not self.watches:
            self.idle.set()
            await asyncio.Event().wait()
        step = self.watches.pop(0)
        if isinstance(step, BaseException):
            raise step
        for event in step:
            if isinstance(event, BaseException):  # the stream breaks here
                raise event
            yield event


def page(items: list[dict[str, Any]], rv: str, more: str = "") -> dict[str, Any]:
    return {"items": items, "metadata": {"resourceVersion": rv, **({"continue": more} if more else {})}}


async def run(server: Server) -> tuple[Store[Thing], list[tuple[Any, Any, Mapping[str, str]]]]:
    store: Store[Thing] = Store(lambda t: (t.namespace, t.owner))
    changes: list[tuple[Any, Any, Mapping[str, str]]] = []
    informer = Informer(
        server,  # type: ignore[arg-type]
        "/apis/batch/v1/jobs",
        SELECTOR,
        parse,
        store,
        lambda old, new, labels: changes.append((old, new, labels)),
    )
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(server.idle.wait(), 5)
    finally:
        task.cancel()
    return store, changes


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(informer_module, "BACKOFF", (0.001, 0.002))


def test_lists_in_pages_then_watches_from_the_listing_with_the_selector() -> None:
    server = Server(
        [[page([obj("j1")], "10", more="1"), page([obj("j2", owner="b"), obj("other", owner="")], "10")]],
        [[{"type": "ADDED", "object": obj("j3", rv="11")}]],
    )
    store, changes = asyncio.run(run(server))
    assert sorted(t.name for group in store.values() for t in group) == ["j1", "j2", "j3"]
    assert [t.name for t in store[("n", "a")]] == ["j1", "j3"]
    assert [(old, new.name) for old, new, _ in changes] == [(None, "j1"), (None, "j2"), (None, "j3")]
    lists = [p for verb, p in server.requests if verb == "list"]
    assert all(p["labelSelector"] == SELECTOR and p["limit"] for p in lists)
    assert lists[1]["continue"] == "1"
    watches = [p for verb, p in server.requests if verb == "watch"]
    assert watches[0]["resourceVersion"] == "10" and watches[0]["labelSelector"] == SELECTOR
    assert watches[0]["allowWatchBookmarks"] == "true"
    assert watches[1]["resourceVersion"] == "11"  # resumed after the server ended the first


def test_events_update_the_store_and_report_old_and_new() -> None:
    server = Server(
        [[page([obj("j1")], "10")]],
        [
            [
                {"type": "MODIFIED", "object": obj("j1", phase="Running", rv="11")},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}},
            ],
            [{"type": "DELETED", "object": obj("j1", phase="Running", rv="16")}],
        ],
    )
    store, changes = asyncio.run(run(server))
    assert len(store) == 0 and ("n", "a") not in store
    assert [(o and o.phase, n and n.phase) for o, n, _ in changes] == [
        (None, ""),
        ("", "Running"),
        ("Running", None),
    ]
    assert changes[-1][2] == {"owner": "a"}  # a deletion still carries the labels
    watches = [p["resourceVersion"] for verb, p in server.requests if verb == "watch"]
    assert watches[:3] == ["10", "15", "16"]  # a bookmark moves the version on


def test_gone_lists_again_and_reports_what_the_listing_lacks_as_deleted() -> None:
    server = Server(
        [[page([obj("j1"), obj("j2")], "10")], [page([obj("j2", phase="Done", rv="30")], "30")]],
        [[{"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}]],
    )
    store, changes = asyncio.run(run(server))
    assert [t.name for t in store[("n", "a")]] == ["j2"]
    deleted = [(old.name, labels) for old, new, labels in changes if new is None]
    assert deleted == [("j1", {})]  # deleted while the watch was away: no labels to go by
    assert changes[-1][0].phase == "" and changes[-1][1].phase == "Done"
    assert [verb for verb, _ in server.requests] == ["list", "watch", "list", "watch"]


def test_a_410_answer_to_the_watch_request_lists_again() -> None:
    server = Server(
        [[page([obj("j1")], "10")], [page([], "40")]],
        [KubeError(410, {"code": 410}, "GET watch")],
    )
    store, changes = asyncio.run(run(server))
    assert len(store) == 0
    assert changes[-1][1] is None


@pytest.mark.parametrize(
    "error",
    [
        KubeError(500, {"message": "injected"}, "GET watch"),
        aiohttp.ClientConnectionError("connection reset"),
        TimeoutError(),
    ],
)
def test_errors_are_retried_from_the_same_version_without_listing(error: BaseException) -> None:
    server = Server([[page([obj("j1")], "10")]], [error, error, [{"type": "ADDED", "object": obj("j2")}]])
    store, _ = asyncio.run(run(server))
    assert [t.name for t in store[("n", "a")]] == ["j1", "j2"]
    verbs = [(verb, p.get("resourceVersion")) for verb, p in server.requests]
    assert verbs[:4] == [("list", None), ("watch", "10"), ("watch", "10"), ("watch", "10")]


def test_an_object_that_loses_its_owner_label_leaves_the_store() -> None:
    server = Server(
        [[page([obj("j1")], "10")]],
        [[{"type": "MODIFIED", "object": obj("j1", owner="", rv="12")}]],
    )
    store, changes = asyncio.run(run(server))
    assert len(store) == 0
    assert changes[-1][0].name == "j1" and changes[-1][1] is None


def test_store_moves_an_object_between_groups() -> None:
    store: Store[Thing] = Store(lambda t: t.owner)
    store.put(Thing("x", "n", "a"))
    store.put(Thing("y", "n", "a"))
    old = store.put(Thing("x", "n", "b"))
    assert old == Thing("x", "n", "a")
    assert [t.name for t in store["a"]] == ["y"] and [t.name for t in store["b"]] == ["x"]
    assert store.pop("n", "y") is not None and "a" not in store
    assert store.pop("n", "y") is None


def test_a_live_stream_that_breaks_resumes_at_once_from_its_last_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(informer_module, "BACKOFF", (60.0, 60.0))  # a back-off would hang the test
    cut = aiohttp.ClientPayloadError("Response payload is not completed")
    server = Server(
        [[page([], "10")]],
        [[{"type": "ADDED", "object": obj("j1", rv="12")}, cut], [{"type": "ADDED", "object": obj("j2")}]],
    )
    store, _ = asyncio.run(run(server))
    assert [t.name for t in store[("n", "a")]] == ["j1", "j2"]
    assert [p.get("resourceVersion") for verb, p in server.requests if verb == "watch"][:2] == ["10", "12"]
