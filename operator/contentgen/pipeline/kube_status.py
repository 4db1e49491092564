"""The worker's progress channel: patch `progress` and `stage` (and a training's `training`, the
run under way: pipeline/live.py) on its own resource's status.

The worker's ServiceAccount may only patch the status subresource of the kinds in its namespace
(the chart's contentgen.workerRules). Each patch is a JSON patch that first tests
`status.jobName`, so a pod of a Job the operator has moved on from (a newer spec) cannot overwrite
the newer run's progress. The answer to a patch is the whole resource: its annotations are how a
training learns that a person asked it to stop (pipeline/live.py), with no right beyond that one.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from contentgen.api import GROUP, VERSION, Kind

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeStatusClient:
    def __init__(
        self, base_url: str, token_file: Path | None, ca_file: Path | None, timeout: float = 5.0
    ) -> None:
        self.token_file = token_file
        self.client = httpx.Client(
            base_url=base_url,
            verify=ssl.create_default_context(cafile=str(ca_file)) if ca_file and ca_file.exists() else True,
            timeout=timeout,
            trust_env=False,
        )

    @classmethod
    def from_environment(cls) -> KubeStatusClient | None:
        """In a pod: the API server from the service environment and the mounted token.
        CONTENTGEN_KUBE_API, CONTENTGEN_KUBE_TOKEN_FILE and CONTENTGEN_KUBE_CA_FILE override the
        address and the mounted files (local-cluster's pod runner, which has no mounts)."""
        base = os.environ.get("CONTENTGEN_KUBE_API")
        if not base:
            host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
            if not host or not port:
                return None
            host = f"[{host}]" if ":" in host else host
            base = f"https://{host}:{port}"
        token = Path(os.environ.get("CONTENTGEN_KUBE_TOKEN_FILE", SERVICE_ACCOUNT / "token"))
        ca = Path(os.environ.get("CONTENTGEN_KUBE_CA_FILE", SERVICE_ACCOUNT / "ca.crt"))
        return cls(base, token if token.exists() else None, ca)

    def patch_progress(
        self, kind: Kind, namespace: str, name: str, job_name: str, stage: str, percent: int, uid: str = ""
    ) -> None:
        """Stage and percent into the resource's status, only while this Job is its current one:
        the JSON patch tests the resource's uid (a resource deleted and made again under the same
        name has the same Job name, `NAME-g1`, but not the same uid) and its status.jobName."""
        patch = [
            *([{"op": "test", "path": "/metadata/uid", "value": uid}] if uid else []),
            {"op": "test", "path": "/status/jobName", "value": job_name},
            {"op": "add", "path": "/status/progress", "value": max(0, min(100, percent))},
            {"op": "add", "path": "/status/stage", "value": stage[:63]},
        ]
        self._patch(kind, namespace, name, patch)

    def patch_pool(
        self, kind: Kind, namespace: str, name: str, job_name: str, state: str, position: int, uid: str = ""
    ) -> None:
        """status.pool (a warm pool's request: its state and place), only while this Job is the
        resource's current one; state "" removes it (the request is done with the pool; where the
        status has none, the patch fails as a moved-on Job's does, and changes nothing)."""
        change = (
            {"op": "add", "path": "/status/pool", "value": {"state": state, "position": max(0, position)}}
            if state
            else {"op": "remove", "path": "/status/pool"}
        )
        patch = [
            *([{"op": "test", "path": "/metadata/uid", "value": uid}] if uid else []),
            {"op": "test", "path": "/status/jobName", "value": job_name},
            change,
        ]
        self._patch(kind, namespace, name, patch)

    def patch_training(
        self, kind: Kind, namespace: str, name: str, job_name: str, training: dict[str, Any], uid: str = ""
    ) -> dict[str, str] | None:
        """status.training (the training under way), only while this Job is the resource's current
        one; the resource's annotations as the answer has them (None where the test failed)."""
        patch = [
            *([{"op": "test", "path": "/metadata/uid", "value": uid}] if uid else []),
            {"op": "test", "path": "/status/jobName", "value": job_name},
            {"op": "add", "path": "/status/training", "value": training},
        ]
        answer = self._patch(kind, namespace, name, patch)
        return _annotations(answer) if answer is not None else None

    def _url(self, kind: Kind, namespace: str, name: str) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{kind.plural}/{name}/status"

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.token_file is not None:  # re-read: projected tokens rotate
            headers["Authorization"] = f"Bearer {self.token_file.read_text().strip()}"
        return headers

    def _patch(self, kind: Kind, namespace: str, name: str, patch: Sequence[object]) -> dict[str, Any] | None:
        """The resource as the patch left it; None where a test failed (this Job is no longer the
        resource's current one)."""
        headers = {**self._headers(), "Content-Type": "application/json-patch+json"}
        response = self.client.patch(self._url(kind, namespace, name), json=patch, headers=headers)
        if response.status_code == 422:
            return None  # the test failed: this Job is no longer the resource's current one
        response.raise_for_status()
        try:
            answer = response.json()
        except ValueError:
            return {}
        return answer if isinstance(answer, dict) else {}


def _annotations(resource: dict[str, Any]) -> dict[str, str]:
    found = (resource.get("metadata") or {}).get("annotations") or {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
