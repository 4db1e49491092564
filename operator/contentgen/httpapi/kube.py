"""The API's connection to the Kubernetes API server: a few JSON calls (TokenReview; create, get and
delete of contentgen resources; a LoraTraining's promotion annotation patched), made with the
standard library so the API needs no client package. Configured in a pod from its ServiceAccount
(the token file is read again for each call, so a rotated token is used at once), elsewhere from a
kubeconfig (CONTENTGEN_API_KUBECONFIG, else $KUBECONFIG): its current context's server, CA, and
token or client certificate."""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TIMEOUT_SECONDS = 10.0


class KubeUnavailable(Exception):
    """The API server could not be reached or answered with a server error."""


class KubeError(Exception):
    """The API server refused a request; `status` is its HTTP status, `body` its Status object."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("message") or f"HTTP {status}"))
        self.status = status
        self.body = body

    @property
    def reason(self) -> str:
        return str(self.body.get("reason") or "")

    @property
    def message(self) -> str:
        return str(self.body.get("message") or "")

    def causes(self) -> list[dict[str, str]]:
        return list((self.body.get("details") or {}).get("causes") or [])


@dataclass
class KubeConfig:
    server: str
    context: ssl.SSLContext
    token: str = ""
    token_file: Path | None = None
    namespace: str = "default"

    def bearer(self) -> str:
        if self.token_file is not None:
            return self.token_file.read_text().strip()
        return self.token


def in_cluster() -> KubeConfig | None:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    token = SERVICE_ACCOUNT / "token"
    if not host or not port or not token.is_file():
        return None
    context = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT / "ca.crt"))
    namespace_file = SERVICE_ACCOUNT / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.is_file() else "default"
    address = f"[{host}]" if ":" in host else host
    return KubeConfig(f"https://{address}:{port}", context, token_file=token, namespace=namespace)


def _data_file(data: str, suffix: str) -> str:
    """Kubeconfig *-data fields as a private file (mode 0600; ssl loads certificates from files),
    removed when the process exits: a client key is not left behind in the temporary directory."""
    handle, name = tempfile.mkstemp(prefix="contentgen-api-", suffix=suffix)
    atexit.register(_remove, name)
    with os.fdopen(handle, "wb") as out:
        out.write(base64.b64decode(data))
    return name


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def from_kubeconfig(path: Path) -> KubeConfig:
    """The current context of a kubeconfig file; ValueError naming what is missing."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read the kubeconfig {path}: {exc}") from None
    current = doc.get("current-context") or ""
    context = _named(doc, path, "contexts", current)
    cluster = _named(doc, path, "clusters", context.get("cluster", ""))
    user = _named(doc, path, "users", context.get("user", ""))
    server = cluster.get("server")
    if not server:
        raise ValueError(f"kubeconfig {path}: the cluster of context {current!r} has no server")
    base = path.parent
    ssl_context = _trusting(cluster, base)
    _with_client_certificate(ssl_context, user, base)
    token_file = Path(base / user["tokenFile"]) if user.get("tokenFile") else None
    return KubeConfig(
        str(server).rstrip("/"),
        ssl_context,
        token=str(user.get("token") or ""),
        token_file=token_file,
        namespace=str(context.get("namespace") or "default"),
    )


def _named(doc: dict[str, Any], path: Path, section: str, name: str) -> dict[str, Any]:
    """The kubeconfig's entry `name` of `section` (contexts, clusters, users)."""
    for item in doc.get(section) or []:
        if item.get("name") == name:
            return dict(item.get(section.rstrip("s")) or {})
    raise ValueError(f"kubeconfig {path}: no {section.rstrip('s')} {name!r}")


def _trusting(cluster: dict[str, Any], base: Path) -> ssl.SSLContext:
    """What the cluster's server is trusted by: the kubeconfig's CA (data or file), the system's,
    or nothing where it asks to skip the check."""
    if cluster.get("insecure-skip-tls-verify"):
        return ssl._create_unverified_context()  # noqa: S323 - the kubeconfig asks for it
    if cluster.get("certificate-authority-data"):
        return ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
    if cluster.get("certificate-authority"):
        return ssl.create_default_context(cafile=str(base / cluster["certificate-authority"]))
    return ssl.create_default_context()


def _with_client_certificate(ssl_context: ssl.SSLContext, user: dict[str, Any], base: Path) -> None:
    """The user's client certificate and key loaded, from files or their *-data (written to
    temporary files for the load, removed after)."""
    cert = user.get("client-certificate") or (
        _data_file(user["client-certificate-data"], ".crt") if user.get("client-certificate-data") else None
    )
    key = user.get("client-key") or (
        _data_file(user["client-key-data"], ".key") if user.get("client-key-data") else None
    )
    if cert and key:
        ssl_context.load_cert_chain(str(base / cert), str(base / key))
    for written in (cert, key):  # loaded: the copies of *-data are not needed any more
        if written and not user.get("client-certificate") and not user.get("client-key"):
            _remove(str(written))


def load(kubeconfig: Path | None = None) -> KubeConfig | None:
    """In a pod: its ServiceAccount; else `kubeconfig`, else $KUBECONFIG; None when there is none."""
    if kubeconfig is not None:
        return from_kubeconfig(kubeconfig)
    found = in_cluster()
    if found is not None:
        return found
    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return from_kubeconfig(Path(env)) if env else None


class Kube:
    """JSON requests to the API server."""

    def __init__(self, config: KubeConfig, timeout: float = TIMEOUT_SECONDS) -> None:
        self.config = config
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        url = self.config.server + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - https to the API server
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        token = self.config.bearer()
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.config.context) as answer:  # noqa: S310
                return json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                status_body = json.loads(exc.read() or b"{}")
            except ValueError:
                status_body = {}
            if not isinstance(status_body, dict):
                status_body = {}
            if exc.code >= 500 and exc.code != 501:
                raise KubeUnavailable(
                    f"the Kubernetes API answered {exc.code}: {status_body.get('message', '')}"
                ) from None
            raise KubeError(exc.code, status_body) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise KubeUnavailable(
                f"the Kubernetes API at {self.config.server} cannot be reached: {reason}"
            ) from None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def create(self, path: str, body: Any, dry_run: bool = False) -> Any:
        return self.request("POST", path, body, {"dryRun": "All"} if dry_run else None)

    def merge_patch(self, path: str, body: Any) -> Any:
        """A JSON merge patch (RFC 7386); with metadata.resourceVersion in it, the API server
        applies it only to that version (409 Conflict otherwise)."""
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def delete(self, path: str, propagation: str = "Background") -> Any:
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        return self.request("DELETE", path, body)
