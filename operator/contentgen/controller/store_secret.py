"""The workers' store credentials in every namespace where the operator runs Jobs (cluster-wide
installs, the chart's s3.copyToNamespaces): the chart's Secret (s3.existingSecret, in the
operator's own namespace) copied under its name before a namespace's first Job, and kept in step.

- A copy holds the two keys the workers read and nothing else, is labelled
  app.kubernetes.io/managed-by=contentgen-operator, and is owned by the worker ClusterRole (the
  chart's, cluster-scoped): uninstalling the chart deletes the copies with it (the garbage
  collector), and while that ClusterRole is missing no copy is made. The operator itself never
  deletes a Secret.
- A Secret of that name the operator did not make (a platform team's) is left as it is, and the
  workers there use it.
- In step: the source is read by name at most every SOURCE_SECONDS, before a Job starts and at
  every resync; a copy whose keys differ is replaced (with its resourceVersion). A pod that cannot
  start for want of the copy (someone deleted it) has it made again.
- The source missing or short of a key, or a refusal: said once, and no copy is made (the Job's
  pod then says `secret "..." not found`). Values are never logged, nor read beyond the two keys.

Workload identity needs none of this: without s3_secret the workers' pods name no Secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Any, Literal

from .kube import Kube, KubeError
from .naming import MANAGED_BY

log = logging.getLogger("contentgen.operator.store-secret")

KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
MANAGED = "app.kubernetes.io/managed-by"
LABELS = {MANAGED: MANAGED_BY, "app.kubernetes.io/part-of": "contentgen"}
SOURCE_SECONDS = 30.0
THEIRS = "theirs"  # a namespace whose Secret of that name is someone else's

Step = Literal["create", "update", "current", "theirs"]


def source_data(secret: dict[str, Any] | None) -> dict[str, str] | None:
    """The keys the workers read, as the API server gives them (base64: never decoded here), or
    None where the Secret or one of them is missing."""
    data = (secret or {}).get("data") or {}
    if not all(data.get(key) for key in KEYS):
        return None
    return {key: str(data[key]) for key in KEYS}


def copy_of(name: str, namespace: str, data: dict[str, str], owner: dict[str, Any]) -> dict[str, Any]:
    metadata = {"name": name, "namespace": namespace, "labels": dict(LABELS), "ownerReferences": [owner]}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": metadata, "data": data}


def step(existing: dict[str, Any] | None, data: dict[str, str]) -> Step:
    """What `existing` (the Secret of the copy's name in a namespace, None where none) needs to be
    a copy of `data`."""
    if existing is None:
        return "create"
    if (existing["metadata"].get("labels") or {}).get(MANAGED) != MANAGED_BY:
        return "theirs"
    held = {key: (existing.get("data") or {}).get(key) for key in KEYS}
    return "current" if held == data else "update"


def digest(data: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def missing_copy(problem: str, name: str) -> bool:
    """Whether a pod's problem (kubelet's words) is the want of the Secret `name`."""
    return f'secret "{name}" not found' in problem


def _refusal(exc: KubeError) -> str:
    """The API server's answer in words that carry no value: its code and reason."""
    reason = exc.body.get("reason") if isinstance(exc.body, dict) else ""
    return f"HTTP {exc.status}{f' {reason}' if reason else ''}"


class StoreSecrets:
    """Copies of the Secret `name` of `source_namespace`, owned by the ClusterRole `owner_role`."""

    def __init__(
        self,
        kube: Kube,
        name: str,
        source_namespace: str,
        owner_role: str,
        *,
        source_seconds: float = SOURCE_SECONDS,
    ) -> None:
        self.kube, self.name, self.source_namespace, self.owner_role = (
            kube,
            name,
            source_namespace,
            owner_role,
        )
        self.source_seconds = source_seconds
        self.in_step: dict[str, str] = {}  # namespace -> digest its copy holds, or THEIRS
        self.seen: set[str] = set()  # every namespace a Job was started in, for refresh()
        self._source: tuple[float, dict[str, str] | None] | None = None
        self._owner: dict[str, Any] | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._said: set[str] = set()

    def _say(self, key: str, message: str, *args: Any) -> None:
        if key not in self._said:
            self._said.add(key)
            log.warning(message, *args)

    def _secret_path(self, namespace: str) -> str:
        return f"/api/v1/namespaces/{namespace}/secrets/{self.name}"

    async def _get(self, path: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self.kube.request("GET", path)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    async def source(self, *, fresh: bool = False) -> dict[str, str] | None:
        """The source's keys, read again when older than source_seconds (or `fresh`)."""
        if (
            not fresh
            and self._source is not None
            and time.monotonic() - self._source[0] < self.source_seconds
        ):
            return self._source[1]
        try:
            data = source_data(await self._get(self._secret_path(self.source_namespace)))
        except KubeError as exc:
            if exc.status != 403:
                raise
            self._say(
                "source-refused",
                "the Secret %s/%s cannot be read (%s): the store's credentials "
                "are not copied into the workers' namespaces",
                self.source_namespace,
                self.name,
                _refusal(exc),
            )
            data = None
        if data is None:
            self._say(
                "source-missing",
                "the Secret %s/%s (s3.existingSecret) is missing, or lacks %s: "
                "the store's credentials are not copied into the workers' namespaces",
                self.source_namespace,
                self.name,
                " or ".join(KEYS),
            )
        self._source = (time.monotonic(), data)
        return data

    async def _owner_reference(self, *, fresh: bool = False) -> dict[str, Any] | None:
        """The copies' owner, the worker ClusterRole; None while it is not there (the chart being
        uninstalled): then no copy is made, for none could be cleaned up."""
        if self._owner is None or fresh:
            path = f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{self.owner_role}"
            try:
                role = await self._get(path)
            except KubeError as exc:
                if exc.status != 403:
                    raise
                role = None
            if role is None:
                self._owner = None
                self._say(
                    "owner",
                    "the ClusterRole %s (the copies' owner, which uninstalling deletes them with) cannot "
                    "be read: the store's credentials are not copied into the workers' namespaces",
                    self.owner_role,
                )
                return None
            self._owner = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "name": self.owner_role,
                "uid": role["metadata"]["uid"],
            }
        return self._owner

    async def ensure(self, namespace: str) -> None:
        """The copy in `namespace`, made or brought in step, unless it is known to be so."""
        self.seen.add(namespace)
        data = await self.source()
        if data is None:
            return
        wanted = digest(data)
        if self.in_step.get(namespace) in (wanted, THEIRS):
            return
        async with self._locks.setdefault(namespace, asyncio.Lock()):  # once for the runs that ask at once
            if self.in_step.get(namespace) in (wanted, THEIRS):
                return
            await self._bring_in_step(namespace, data, wanted)

    async def _bring_in_step(self, namespace: str, data: dict[str, str], wanted: str) -> None:
        path = self._secret_path(namespace)
        try:
            existing = await self._get(path)
            todo = step(existing, data)
            if todo in ("create", "update"):
                owner = await self._owner_reference()
                if owner is None:
                    return
                copy = copy_of(self.name, namespace, data, owner)
                if existing is None:
                    await self.kube.request("POST", f"/api/v1/namespaces/{namespace}/secrets", copy)
                    log.info(
                        "copied the store's credentials (Secret %s) into namespace %s", self.name, namespace
                    )
                else:
                    copy["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
                    await self.kube.request("PUT", path, copy)
                    log.info(
                        "the store's credentials (Secret %s) in namespace %s follow the source's new ones",
                        self.name,
                        namespace,
                    )
        except KubeError as exc:
            if exc.status == 409:  # made or changed meanwhile: looked at again next time
                return
            if exc.status == 404:  # the namespace is gone: nothing to keep in step there
                self.seen.discard(namespace)
                return
            if exc.status not in (403, 422):
                raise
            # refused by RBAC or the chart's admission policy: said once a namespace
            self._say(
                f"refused/{namespace}",
                "the store's credentials (Secret %s) cannot be copied into namespace %s (%s)",
                self.name,
                namespace,
                _refusal(exc),
            )
            return
        self.in_step[namespace] = THEIRS if todo == "theirs" else wanted

    def forget(self, namespace: str) -> None:
        """Look at `namespace`'s copy again at its next Job."""
        self.in_step.pop(namespace, None)

    async def refresh(self) -> None:
        """The source read again, and every namespace seen brought in step with it (a copy deleted
        meanwhile made again, one of a platform team's since deleted replaced by ours)."""
        data = await self.source(fresh=True)
        if data is None or await self._owner_reference(fresh=True) is None:
            return
        for namespace in sorted(self.seen):
            self.forget(namespace)
            await self.ensure(namespace)

    async def run(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the API server away, the Lease lost: next time
                said = _refusal(exc) if isinstance(exc, KubeError) else type(exc).__name__
                log.warning(
                    "the store's credentials were not brought in step (%s); tried again in %.0f s",
                    said,
                    every,
                )
