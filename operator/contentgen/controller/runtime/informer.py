"""A watch of our own for the kinds the operator does not own (Jobs, pods), beside kopf's watches
of the custom resources: what client-go's informers do, in short.

- The API server selects: every list and watch carries the managed-by label selector, so a busy
  shared cluster's other Jobs and pods are never sent.
- List (in pages), then watch from the listing's resourceVersion, with bookmarks. A watch that ends
  (the server's timeout, a cut connection, an error) is resumed from the last version seen.
- 410 Gone (that version is too old: a restarted API server, a long disconnection) lists again,
  and what the new listing lacks is reported deleted: nothing gone stays in the store.
- Each object is kept as a small parsed state (`parse`), in a store grouped by owner, and every
  change is handed to `changed(old, new, labels)` in the event loop: no task, queue or handler
  machinery per object, which is what kopf costs per event (about a millisecond).
- A live stream that breaks (a cut connection) is resumed at once; a request that fails backs off
  (0.5 s doubling to 30 s). Nothing ends the watch: a lasting outage is retried, not escalated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

import aiohttp

from .. import metrics
from ..kube import Kube, KubeError

log = logging.getLogger("contentgen.operator")

PAGE = 500
SERVER_TIMEOUT = 300  # seconds a watch request lasts before the server ends it (resumed at once)
BACKOFF = (0.5, 30.0)
LIVE = 1.0  # a watch that lasted this long before it broke was live: resumed without backing off


class Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def namespace(self) -> str: ...


S = TypeVar("S", bound=Named)


class Store(Mapping[Hashable, list[S]], Generic[S]):
    """Parsed states by (namespace, name), read as a mapping from a group key (an owner) to the
    states in that group: `store[(namespace, owner uid)]` is that owner's Jobs."""

    def __init__(self, group: Callable[[S], Hashable]) -> None:
        self._group = group
        self._objects: dict[tuple[str, str], S] = {}
        self._groups: dict[Hashable, dict[tuple[str, str], S]] = {}

    def put(self, state: S) -> S | None:
        key = (state.namespace, state.name)
        old = self._objects.get(key)
        if old is not None:
            self._forget(key, old)
        self._objects[key] = state
        self._groups.setdefault(self._group(state), {})[key] = state
        return old

    def pop(self, namespace: str, name: str) -> S | None:
        key = (namespace, name)
        old = self._objects.pop(key, None)
        if old is not None:
            self._forget(key, old)
        return old

    def _forget(self, key: tuple[str, str], old: S) -> None:
        group = self._group(old)
        members = self._groups.get(group)
        if members is not None:
            members.pop(key, None)
            if not members:
                del self._groups[group]

    def objects(self) -> dict[tuple[str, str], S]:
        return dict(self._objects)

    @property
    def size(self) -> int:
        """Objects held (len() counts groups)."""
        return len(self._objects)

    def __getitem__(self, group: Hashable) -> list[S]:
        return list(self._groups[group].values())

    def __contains__(self, group: object) -> bool:
        return group in self._groups

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._groups)

    def __len__(self) -> int:
        return len(self._groups)


Changed = Callable[[S | None, S | None, Mapping[str, str]], None]


class Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class Informer(Generic[S]):
    def __init__(
        self,
        kube: Kube,
        path: str,
        selector: str,
        parse: Callable[[dict[str, Any]], S | None],
        store: Store[S],
        changed: Changed[S],
    ) -> None:
        self.kube, self.path, self.selector = kube, path, selector
        self.parse, self.store, self.changed = parse, store, changed
        self.synced = asyncio.Event()  # the first listing is in the store
        self.lists = 0  # listings made (the first, then one per 410 Gone), for tests and metrics
        self.events = 0  # watch events received
        self.version = ""  # the last resourceVersion seen ("" until listed, and after a 410)
        self.resource = path.rsplit("/", 1)[-1]  # "jobs", "pods": the metrics' label

    async def run(self) -> None:
        delay = BACKOFF[0]
        while True:
            began, events = time.monotonic(), self.events
            try:
                if not self.version:
                    self.version = await self._list()
                    self.synced.set()
                await self._watch()
                delay = BACKOFF[0]  # the server ended it (its timeout): watch on at once
            except (Gone, KubeError) as exc:
                if isinstance(exc, Gone) or exc.status == 410:
                    log.info("watch of %s: its version is gone (410); listing again", self.path)
                    self.version = ""
                    delay = BACKOFF[0]  # the server answered: a new start, not one more failure
                    continue
                delay = await self._back_off(exc, delay)
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
                if self.events > events or time.monotonic() - began > LIVE:
                    # A stream that was live and broke (a cut connection): resume at once from
                    # the last version seen, as client-go's reflector does after an EOF.
                    log.info("watch of %s ended (%s); resuming", self.path, exc)
                    delay = BACKOFF[0]
                    continue
                delay = await self._back_off(exc, delay)

    async def _back_off(self, exc: BaseException, delay: float) -> float:
        log.warning("watch of %s failed (%s); again in %.1f s", self.path, exc, delay)
        await asyncio.sleep(delay)
        return min(delay * 2, BACKOFF[1])

    async def _list(self) -> str:
        """List in pages, then replace the store: what is new or changed is reported, and so is
        what is no longer there (deleted while the watch was away)."""
        self.lists += 1
        metrics.WATCH_LISTS.labels(self.resource).inc()
        listed: dict[tuple[str, str], tuple[S, Mapping[str, str]]] = {}
        params = {"labelSelector": self.selector, "limit": str(PAGE)}
        while True:
            try:
                page = await self.kube.request("GET", self.path, params=params)
            except KubeError as exc:
                if exc.status == 410 and "continue" in params:  # the continue token expired
                    params.pop("continue")
                    listed.clear()
                    continue
                raise
            for obj in page.get("items") or []:
                state = self.parse(obj)
                if state is not None:
                    listed[(state.namespace, state.name)] = (state, labels_of(obj))
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                version = str(meta.get("resourceVersion") or "")
                break
            params["continue"] = meta["continue"]
        for key, old in self.store.objects().items():
            if key not in listed:
                self.store.pop(*key)
                self.changed(old, None, {})
        for state, labels in listed.values():
            self.changed(self.store.put(state), state, labels)
        metrics.WATCHED.labels(self.resource).set(self.store.size)
        return version

    async def _watch(self) -> None:
        """One watch request, from `self.version`, which follows every event and bookmark."""
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "labelSelector": self.selector,
            "resourceVersion": self.version,
            "timeoutSeconds": str(SERVER_TIMEOUT),
        }
        async for event in self.kube.watch(self.path, params, read_timeout=SERVER_TIMEOUT + 30):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone()
                raise KubeError(int(obj.get("code") or 500), obj, f"watch {self.path}")
            self.version = str((obj.get("metadata") or {}).get("resourceVersion") or self.version)
            if kind == "BOOKMARK":
                continue
            self.events += 1
            self._apply(kind, obj)
            metrics.WATCHED.labels(self.resource).set(self.store.size)

    def _apply(self, kind: str | None, obj: dict[str, Any]) -> None:
        state = self.parse(obj)
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        if kind == "DELETED" or state is None:
            old = self.store.pop(namespace, name)
            if old is not None or (kind == "DELETED" and state is not None):
                self.changed(old or state, None, labels_of(obj))
            return
        self.changed(self.store.put(state), state, labels_of(obj))


def labels_of(obj: dict[str, Any]) -> Mapping[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})
