"""The operator's Kubernetes calls: a thin adapter over the official client (run in threads).

These are all the API calls the operator makes beyond kopf's own (watching, finalizers,
events, peering); the chart's RBAC grants exactly these (tests/kube records and checks them).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from contentgen.api import GROUP, VERSION, Kind

# Waiting reasons that mean a pod will not start by itself (a missing Secret, a wrong image).
POD_START_PROBLEMS = {
    "CreateContainerConfigError",
    "CreateContainerError",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
}


def client_configuration() -> Any:
    """The API server and credentials: in-cluster (the ServiceAccount), else $KUBECONFIG.

    Read explicitly each time: the kubernetes package captures $KUBECONFIG when imported.
    Both kopf (see handlers.login) and the operator's own calls use this.
    """
    import os

    import kubernetes

    config = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        path = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        kubernetes.config.load_kube_config(config_file=path, client_configuration=config)  # type: ignore[no-untyped-call]
    return config


def load_client() -> Any:
    import kubernetes

    return kubernetes.client.ApiClient(client_configuration())


class Kube:
    def __init__(self, api_client: Any) -> None:
        import kubernetes

        # Typed as Any: the client's generated types add nothing over the dicts sent here.
        self.custom: Any = kubernetes.client.CustomObjectsApi(api_client)
        self.batch: Any = kubernetes.client.BatchV1Api(api_client)
        self.core: Any = kubernetes.client.CoreV1Api(api_client)
        self.rbac: Any = kubernetes.client.RbacAuthorizationV1Api(api_client)
        self.ApiException = kubernetes.client.ApiException

    async def get_resource(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = await asyncio.to_thread(
                self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, kind.plural, name
            )
        except self.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return body

    async def patch_status(self, kind: Kind, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """A merge patch of the status subresource (the operator never writes spec)."""
        await asyncio.to_thread(
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            kind.plural,
            name,
            {"status": patch},
        )

    async def create_job(self, manifest: dict[str, Any]) -> bool:
        """Create the Job; False when it already exists (it is deterministic, so it is this one)."""
        namespace = manifest["metadata"]["namespace"]
        try:
            await asyncio.to_thread(self.batch.create_namespaced_job, namespace, manifest)
        except self.ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def ensure_worker_access(
        self, namespace: str, account: str, cluster_role: str, annotations: dict[str, str] | None = None
    ) -> None:
        """The worker's ServiceAccount and a RoleBinding to its ClusterRole, in `namespace`.
        Existing ones are left as they are (an administrator may have made them)."""
        labels = {
            "app.kubernetes.io/managed-by": "contentgen-operator",
            "app.kubernetes.io/part-of": "contentgen",
        }
        meta = {"name": account, "namespace": namespace, "labels": labels, "annotations": annotations or {}}
        service_account = {"metadata": meta}
        binding = {
            "metadata": {"name": account, "namespace": namespace, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        }
        for read, create, body in (
            (
                self.core.read_namespaced_service_account,
                self.core.create_namespaced_service_account,
                service_account,
            ),
            (self.rbac.read_namespaced_role_binding, self.rbac.create_namespaced_role_binding, binding),
        ):
            try:
                await asyncio.to_thread(read, account, namespace, _preload_content=False)
                continue
            except self.ApiException as exc:
                if exc.status != 404:
                    raise
            try:
                await asyncio.to_thread(create, namespace, body, _preload_content=False)
            except self.ApiException as exc:
                if exc.status != 409:
                    raise

    async def delete_job(self, namespace: str, name: str) -> None:
        """Delete a Job and, in the background, its pods."""
        try:
            await asyncio.to_thread(
                self.batch.delete_namespaced_job, name, namespace, propagation_policy="Background"
            )
        except self.ApiException as exc:
            if exc.status != 404:
                raise

    async def _job_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        response = await asyncio.to_thread(
            self.core.list_namespaced_pod,
            namespace,
            label_selector=f"batch.kubernetes.io/job-name={job_name}",
            _preload_content=False,  # plain JSON: only a few fields are read
        )
        pods: list[dict[str, Any]] = json.loads(response.data)["items"]
        return pods

    async def namespace_annotations(self, name: str) -> dict[str, str]:
        """The Namespace's annotations ({} when it is gone); for budgets (issue 12)."""
        try:
            response = await asyncio.to_thread(self.core.read_namespace, name, _preload_content=False)
        except self.ApiException as exc:
            if exc.status == 404:
                return {}
            raise
        annotations: dict[str, str] = json.loads(response.data).get("metadata", {}).get("annotations") or {}
        return annotations

    async def pod_problem(self, namespace: str, job_name: str) -> str:
        """Why the Job's pod cannot start its worker ("" when nothing is wrong that we can see)."""
        for pod in await self._job_pods(namespace, job_name):
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (container.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") in POD_START_PROBLEMS:
                    return f"{waiting['reason']}: {waiting.get('message', '')}".strip(": ")
        return ""

    async def termination_message(self, namespace: str, job_name: str) -> str | None:
        """The worker's termination message from the Job's latest finished pod."""
        finished = []
        for pod in await self._job_pods(namespace, job_name):
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                terminated = (container.get("state") or {}).get("terminated")
                if container.get("name") == "worker" and terminated:
                    finished.append((str(terminated.get("finishedAt") or ""), terminated))
        if not finished:
            return None
        finished.sort(key=lambda item: item[0])
        message = finished[-1][1].get("message")
        return str(message) if message is not None else None
