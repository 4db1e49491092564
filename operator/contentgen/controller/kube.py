"""The operator's own Kubernetes calls: a thin async adapter on aiohttp (which kopf runs on), with a
timeout on every request and a bounded connection pool, so a half-open connection never wedges
a reconcile. kopf makes its own calls (watches, Events).

These are all the calls the operator makes beyond kopf's; the chart's RBAC grants exactly these,
and tests/ checks them against the control plane's RBAC authorizer.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from contentgen.api import GROUP, VERSION, Kind

from .kueue import GROUP as KUEUE_GROUP
from .kueue import LABEL_JOB_UID
from .naming import LABEL_UID

# Waiting reasons that mean a pod will not start by itself (a missing Secret, a wrong image).
POD_START_PROBLEMS = {
    "CreateContainerConfigError",
    "CreateContainerError",
    "ErrImagePull",
    "ErrImageNeverPull",  # imagePullPolicy Never and the node lacks the image
    "ImagePullBackOff",
    "InvalidImageName",
}


class JobNameTaken(Exception):
    """A Job of the name this resource's Job must have belongs to another resource: one of this
    kind and name whose uid begins with the same 8 hex digits (naming.job_name), or a Job someone
    else made. The operator never deletes it."""

    def __init__(self, namespace: str, name: str, uid: str) -> None:
        super().__init__(
            f"Job {namespace}/{name} belongs to another resource (uid {uid or 'unknown'}) and is left "
            f"alone; delete it (kubectl delete job -n {namespace} {name}) for this resource to run"
        )
        self.namespace, self.name, self.uid = namespace, name, uid


class NotLeading(Exception):
    """A write refused before it was sent: this process can no longer prove its Lease."""


class KubeError(Exception):
    """A refused request: the API server's Status, with its code."""

    def __init__(self, status: int, body: Any, what: str) -> None:
        message = body.get("message") if isinstance(body, dict) else str(body)[:300]
        super().__init__(f"{what}: {status} {message}")
        self.status, self.body = status, body


def client_configuration() -> Any:
    """The API server and credentials: in-cluster (the ServiceAccount), else $KUBECONFIG.

    Read explicitly each time: the kubernetes package captures $KUBECONFIG when imported.
    kopf (handlers.login), the leader election and the operator's own calls all use this.
    """
    import kubernetes

    config = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=config)
    except kubernetes.config.ConfigException:
        path = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        kubernetes.config.load_kube_config(config_file=path, client_configuration=config)
    return config


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    total: float = 30.0


def _always() -> bool:
    return True


class Kube:
    """`may_write` is asked before every request that is not a read: a replica that cannot prove
    its Lease sends none (leader.may_act)."""

    def __init__(
        self,
        config: Any,
        *,
        timeouts: Timeouts = Timeouts(),
        connections: int = 32,
        may_write: Callable[[], bool] = _always,
    ) -> None:
        self.config = config
        self.may_write = may_write
        self.base = str(config.host).rstrip("/")
        self.timeouts = timeouts
        self.connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None
        self.calls = 0  # requests sent, for the benchmark and the tests

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.base.startswith("https"):
            return False
        if not self.config.verify_ssl:
            return False
        context = ssl.create_default_context(cafile=self.config.ssl_ca_cert or None)
        if self.config.cert_file:
            context.load_cert_chain(self.config.cert_file, self.config.key_file)
        return context

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.connections, ssl=self._ssl())
            timeout = aiohttp.ClientTimeout(total=self.timeouts.total, sock_connect=self.timeouts.connect)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._session

    def _headers(self, content_type: str | None, accept: str = "application/json") -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": "contentgen-operator"}
        token = self.config.get_api_key_with_prefix("BearerToken") or self.config.get_api_key_with_prefix(
            "authorization"
        )
        if token:
            headers["Authorization"] = token if " " in token else f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str | None = None,
        params: dict[str, str] | None = None,
        accept: str = "application/json",
    ) -> Any:
        if method != "GET" and not self.may_write():
            raise NotLeading(f"{method} {path}: not sent, this replica no longer holds the Lease")
        self.calls += 1
        data = json.dumps(body).encode() if body is not None else None
        session = self._session_now()
        async with session.request(
            method,
            self.base + path,
            data=data,
            params=params,
            headers=self._headers(content_type or ("application/json" if data else None), accept),
        ) as response:
            text = await response.text()
            try:
                payload = json.loads(text) if text else None
            except ValueError:
                payload = text
            if response.status >= 400:
                raise KubeError(response.status, payload, f"{method} {path}")
            return payload

    async def watch(
        self, path: str, params: dict[str, str], *, read_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch request, until the server ends it. Watches have a session of
        their own: they hold a connection each for minutes, which must not starve the pool the
        operator's calls share. A silent connection is given up after `read_timeout`."""
        if self._watch_session is None or self._watch_session.closed:
            self._watch_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ssl=self._ssl()),
                timeout=aiohttp.ClientTimeout(sock_connect=self.timeouts.connect, sock_read=read_timeout),
            )
        self.calls += 1
        async with self._watch_session.get(
            self.base + path, params=params, headers=self._headers(None)
        ) as response:
            if response.status >= 400:
                text = await response.text()
                try:
                    payload = json.loads(text)
                except ValueError:
                    payload = text
                raise KubeError(response.status, payload, f"GET {path} (watch)")
            buffer = bytearray()
            # Lines can be longer than aiohttp's line limit (a pod with large annotations).
            async for chunk in response.content.iter_any():
                buffer += chunk
                start = 0
                while (end := buffer.find(b"\n", start)) >= 0:
                    line = bytes(buffer[start:end])
                    start = end + 1
                    if line.strip():
                        yield json.loads(line)
                del buffer[:start]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._watch_session is not None:
            await self._watch_session.close()

    # --- the operator's calls ----------------------------------------------------------------

    @staticmethod
    def _resource_path(kind: Kind, namespace: str, name: str, sub: str = "") -> str:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{kind.plural}/{name}"
        return f"{path}/{sub}" if sub else path

    async def patch_status(
        self, kind: Kind, namespace: str, name: str, patch: dict[str, Any], resource_version: str = ""
    ) -> dict[str, Any]:
        """A merge patch of the status subresource (the operator never writes spec). With
        `resource_version` (the version the patch was decided on), the API server applies it only
        to that version: a 409 Conflict means the resource changed since (fencing: a stale
        decision, e.g. a former leader's, cannot undo a newer state)."""
        body: dict[str, Any] = {"status": patch}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        result: dict[str, Any] = await self.request(
            "PATCH",
            self._resource_path(kind, namespace, name, "status"),
            body,
            content_type="application/merge-patch+json",
        )
        return result

    async def read_resource(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The resource as the API server has it now (None when gone), after a conflict; a list by
        name (the operator may list and watch its resources, not get them)."""
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{kind.plural}"
        found = await self.request("GET", path, params={"fieldSelector": f"metadata.name={name}"})
        items = (found or {}).get("items") or []
        if not items:
            return None
        resource: dict[str, Any] = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind.kind, **items[0]}
        return resource

    async def set_finalizers(
        self, kind: Kind, namespace: str, name: str, resource_version: str, finalizers: list[str]
    ) -> dict[str, Any]:
        """Replace metadata.finalizers, only if the resource is still at `resource_version`
        (a JSON patch with a test: a 422 means someone changed it since; look again)."""
        patch = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
            {"op": "add", "path": "/metadata/finalizers", "value": finalizers},
        ]
        result: dict[str, Any] = await self.request(
            "PATCH",
            self._resource_path(kind, namespace, name),
            patch,
            content_type="application/json-patch+json",
        )
        return result

    async def remove_annotation(self, kind: Kind, namespace: str, name: str, key: str) -> None:
        """Remove one annotation of the resource (a JSON patch: where it is gone already, the API
        server answers 422 and nothing changes)."""
        path = "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")
        try:
            await self.request(
                "PATCH",
                self._resource_path(kind, namespace, name),
                [{"op": "remove", "path": path}],
                content_type="application/json-patch+json",
            )
        except KubeError as exc:
            if exc.status != 422:  # 422: not there any more
                raise

    async def create_job(self, manifest: dict[str, Any]) -> bool:
        """Create the Job; False when this resource's Job of that name exists already (its name is
        deterministic). A Job of that name that is not this resource's (by its uid label) raises
        JobNameTaken."""
        namespace = manifest["metadata"]["namespace"]
        return await self.create_named(f"/apis/batch/v1/namespaces/{namespace}/jobs", manifest)

    async def create_named(self, collection: str, manifest: dict[str, Any]) -> bool:
        """Create `manifest` in `collection` (a Job's, a JobSet's, ...); False when this resource's
        object of that name exists already, JobNameTaken when another's does (by its uid label)."""
        meta = manifest["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        try:
            await self.request("POST", collection, manifest)
        except KubeError as exc:
            if exc.status != 409:
                raise
            # (a list by name: the operator may list its runs' objects, not get them)
            found = await self.request("GET", collection, params={"fieldSelector": f"metadata.name={name}"})
            items = (found or {}).get("items") or [{}]
            theirs = (items[0].get("metadata") or {}).get("labels", {}).get(LABEL_UID)
            if theirs != meta["labels"][LABEL_UID]:
                raise JobNameTaken(namespace, name, str(theirs or "")) from None
            return False
        return True

    async def delete_job(self, namespace: str, name: str, *, propagation: str = "Background") -> None:
        """Delete a Job and its pods: in the background, or its pods first (Foreground: the Job
        stays, being deleted, until they are gone)."""
        await self.delete_object(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}", propagation)

    async def delete_object(self, path: str, propagation: str = "Background") -> None:
        """Delete the object at `path` and what it owns (`propagation`); one already gone is no error."""
        try:
            await self.request(
                "DELETE",
                path,
                {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation},
            )
        except KubeError as exc:
            if exc.status != 404:
                raise

    async def creation_failure(self, namespace: str, job: str) -> str:
        """Why the Job controller could not create the Job's pod: its latest FailedCreate Event
        (a ResourceQuota, a LimitRange, a missing ServiceAccount, an admission webhook), or ""."""
        selector = f"involvedObject.kind=Job,involvedObject.name={job},reason=FailedCreate"
        found = await self.request(
            "GET", f"/api/v1/namespaces/{namespace}/events", params={"fieldSelector": selector}
        )
        events = sorted(
            (found or {}).get("items") or [],
            key=lambda e: str(
                e.get("lastTimestamp") or e.get("eventTime") or e["metadata"].get("creationTimestamp")
            ),
        )
        return str(events[-1].get("message") or "") if events else ""

    async def workloads(self, namespace: str, version: str, job_uid: str) -> list[dict[str, Any]]:
        """The Kueue Workloads labelled with a Job's uid (Kueue's `kueue.x-k8s.io/job-uid`), in
        API version `version` of Kueue's group: a 404 when Kueue does not serve it."""
        found = await self.request(
            "GET",
            f"/apis/{KUEUE_GROUP}/{version}/namespaces/{namespace}/workloads",
            params={"labelSelector": f"{LABEL_JOB_UID}={job_uid}"},
        )
        return list((found or {}).get("items") or [])

    async def namespace_metadata(self, name: str) -> tuple[dict[str, str], dict[str, str]]:
        """The Namespace's annotations and labels (empty when it is gone): budgets and owners
        (annotations), the Kueue queue of its GPU Jobs (a label)."""
        try:
            namespace = await self.request("GET", f"/api/v1/namespaces/{name}")
        except KubeError as exc:
            if exc.status == 404:
                return {}, {}
            raise
        meta = namespace.get("metadata") or {}
        return dict(meta.get("annotations") or {}), dict(meta.get("labels") or {})

    async def ensure_worker_access(
        self, namespace: str, account: str, cluster_role: str, annotations: dict[str, str] | None = None
    ) -> None:
        """The worker's ServiceAccount and a RoleBinding to its ClusterRole, in `namespace`.
        Existing ones are left as they are (an administrator may have made them)."""
        labels = {
            "app.kubernetes.io/managed-by": "contentgen-operator",
            "app.kubernetes.io/part-of": "contentgen",
        }
        service_account = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": account,
                "namespace": namespace,
                "labels": labels,
                "annotations": annotations or {},
            },
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": account, "namespace": namespace, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        }
        for collection, body in (
            (f"/api/v1/namespaces/{namespace}/serviceaccounts", service_account),
            (f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", binding),
        ):
            try:
                await self.request("GET", f"{collection}/{account}")
                continue
            except KubeError as exc:
                if exc.status != 404:
                    raise
            try:
                await self.request("POST", collection, body)
            except KubeError as exc:
                if exc.status != 409:
                    raise


def transient(exc: BaseException) -> bool:
    """Worth retrying: the API server or the network had a problem, not the request."""
    if isinstance(exc, KubeError):
        return exc.status in (409, 429) or exc.status >= 500
    return isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, OSError))
