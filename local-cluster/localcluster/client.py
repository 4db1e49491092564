"""A small client for the cluster's own parts (the launcher and the node): JSON over HTTPS with
a client certificate or a bearer token, server-side apply of manifests, and watches."""

from __future__ import annotations

import json
import logging
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is too much

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


class ApiError(Exception):
    def __init__(self, code: int, body: Any) -> None:
        self.code = code
        self.body = body
        self.message = body.get("message", "") if isinstance(body, dict) else str(body)
        self.reason = body.get("reason", "") if isinstance(body, dict) else ""
        super().__init__(f"{code} {self.reason}: {self.message}")


class Unreachable(ConnectionError):
    """The API server did not answer (it is restarting, or gone): an OSError, as the node's loops
    expect of a connection that failed, where httpx's own errors are not."""


class Client:
    def __init__(
        self,
        server: str,
        ca_file: Path,
        *,
        cert: Path | None = None,
        key: Path | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        user_agent: str = "localcluster",
    ) -> None:
        self.server = server.rstrip("/")
        context = ssl.create_default_context(cafile=str(ca_file))
        if cert is not None and key is not None:
            context.load_cert_chain(str(cert), str(key))
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.server, verify=context, headers=headers, timeout=timeout)
        self._kinds: dict[
            tuple[str, str], tuple[str, bool]
        ] = {}  # (apiVersion, kind) -> (plural, namespaced)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    # --- plain requests ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> Any:
        content = None
        if body is not None:
            content = body if isinstance(body, str | bytes) else json.dumps(body)
        try:
            response = self._http.request(
                method,
                path,
                content=content,
                params=params,
                headers={"Content-Type": content_type} if content is not None else None,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            raise Unreachable(f"{method} {path}: {exc}{self._who_answered(exc)}") from exc
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = response.text
        if response.status_code >= 400:
            raise ApiError(response.status_code, data)
        return data

    def _who_answered(self, exc: httpx.TransportError) -> str:
        """For an answer that was not TLS, who listens on the server's port (`ss`): a stranger on
        it, or the server itself garbling its answer (tests/kube/test_video.py, twice on 11-30)."""
        if "WRONG_VERSION_NUMBER" not in str(exc):
            return ""
        port = httpx.URL(self.server).port
        try:
            listening = subprocess.run(  # noqa: S603
                ["ss", "-Hltnp", f"sport = :{port}"],  # noqa: S607
                capture_output=True, text=True, timeout=5, check=False,
            ).stdout.split()  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return f" (listening on port {port}: {' '.join(listening) or 'nothing'})"

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def get_or_none(self, path: str) -> Any:
        try:
            return self.get(path)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def create(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: Any, content_type: str = MERGE, **params: Any) -> Any:
        return self.request("PATCH", path, body=body, content_type=content_type, params=params or None)

    def delete(self, path: str, body: Any = None) -> Any:
        return self.request("DELETE", path, body=body)

    def text(self, path: str, **params: Any) -> str:
        response = self._http.get(path, params=params or None, headers={"Accept": "*/*"})
        if response.status_code >= 400:
            raise ApiError(response.status_code, response.text)
        return response.text

    # --- manifests -----------------------------------------------------------------------------

    def resource_path(self, obj: dict[str, Any]) -> str:
        """The object's URL path, from discovery (CRDs installed meanwhile are looked up again)."""
        api_version, kind = obj["apiVersion"], obj["kind"]
        with self._lock:
            known = self._kinds.get((api_version, kind))
        if known is None:
            base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            for resource in self.get(base)["resources"]:
                if "/" not in resource["name"]:
                    with self._lock:
                        self._kinds[(api_version, resource["kind"])] = (
                            resource["name"],
                            resource["namespaced"],
                        )
            with self._lock:
                known = self._kinds.get((api_version, kind))
            if known is None:
                raise ApiError(404, {"message": f"no {kind} in {api_version}"})
        plural, namespaced = known
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        meta = obj.get("metadata") or {}
        ns = f"/namespaces/{meta.get('namespace') or 'default'}" if namespaced else ""
        return f"{base}{ns}/{plural}/{meta['name']}"

    def apply(self, obj: dict[str, Any], manager: str = "localcluster") -> Any:
        """Server-side apply, forcing ownership (`kubectl apply --server-side --force-conflicts`)."""
        return self.patch(self.resource_path(obj), obj, APPLY, fieldManager=manager, force="true")

    # --- watches ---------------------------------------------------------------------------------

    def watch(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Events of a watch (ERROR events included, as the server sends them); ends with the stream."""
        query = {"watch": "true", "allowWatchBookmarks": "true", **params}
        try:
            with self._http.stream(
                "GET", path, params=query, timeout=httpx.Timeout(30.0, read=None)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(response.status_code, response.json() if response.content else None)
                for line in response.iter_lines():
                    if line:
                        yield json.loads(line)
        except httpx.TransportError as exc:
            raise Unreachable(f"watch {path}: {exc}") from exc
