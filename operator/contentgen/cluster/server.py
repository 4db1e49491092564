"""The control plane assembled: API server with RBAC and admission plugins, the bootstrap policy,
the default namespaces, TLS, an admin kubeconfig, and the controllers when asked for."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from .admission import DEFAULT_PLUGINS
from .apiserver import MASTERS, ControlPlane, Request, User
from .errors import ApiError
from .http import ApiHttpServer
from .rbac import BOOTSTRAP, Authenticator, RbacAuthorizer, service_account_user
from .tls import kubeconfig as render_kubeconfig
from .tls import make_certificates

ADMIN = User("kubernetes-admin", (MASTERS, "system:authenticated"))
SYSTEM = User("system:apiserver", (MASTERS, "system:authenticated"))


class LocalControlPlane:
    """An API server over TLS on 127.0.0.1 that enforces RBAC and admission like a real one."""

    def __init__(self, directory: Path, *, port: int = 0, history: int = 20000) -> None:
        self.directory = directory
        self.plane = ControlPlane(history=history)
        self.plane.authorizer = RbacAuthorizer(self.plane)
        self.plane.plugins = list(DEFAULT_PLUGINS)
        self.authenticator = Authenticator(self.plane)
        self.admin_token = "admin." + secrets.token_urlsafe(32)
        self.authenticator.add_static(self.admin_token, ADMIN)
        certs = make_certificates()
        self.ca_file, cert_file, key_file = certs.write(directory / "pki")
        self.ca_pem = certs.ca_pem
        self.http = ApiHttpServer(
            self.plane, self.authenticator, port=port, cert_file=cert_file, key_file=key_file
        )
        self._bootstrap()

    @property
    def url(self) -> str:
        return self.http.url

    def start(self) -> LocalControlPlane:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()

    # --- objects -------------------------------------------------------------------------------

    def _bootstrap(self) -> None:
        for obj in BOOTSTRAP:
            self.apply(obj, user=SYSTEM)
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, user=SYSTEM)

    def apply(self, obj: dict[str, Any], *, user: User = ADMIN, namespace: str = "") -> dict[str, Any]:
        """Create `obj` (as `user`, through the request pipeline), or leave it if it exists."""
        t = self.plane.kind_type(obj["apiVersion"], obj["kind"])
        if t is None:
            raise ApiError(
                404, "NotFound", f'no matches for kind "{obj["kind"]}" in version "{obj["apiVersion"]}"'
            )
        ns = (obj.get("metadata") or {}).get("namespace") or namespace or ("default" if t.namespaced else "")
        try:
            created = self.plane.handle(Request(user, "create", t, ns if t.namespaced else "", body=obj))
        except ApiError as exc:
            if exc.code != 409 or exc.reason != "AlreadyExists":
                raise
            created = self.plane.handle(
                Request(user, "get", t, ns if t.namespaced else "", obj["metadata"]["name"])
            )
        return cast(dict[str, Any], created.body)

    def apply_all(self, objects: Iterable[dict[str, Any]], *, user: User = ADMIN) -> None:
        for obj in objects:
            if obj:
                self.apply(obj, user=user)

    # --- credentials ---------------------------------------------------------------------------

    def token_for(self, namespace: str, service_account: str) -> str:
        account = self.plane.store.peek(("", "serviceaccounts"), namespace, service_account)
        if account is None:
            raise ApiError(404, "NotFound", f'serviceaccounts "{service_account}" not found')
        return self.authenticator.mint(namespace, service_account, account["metadata"]["uid"])

    def kubeconfig(self, token: str | None = None, user: str = "admin", namespace: str = "") -> str:
        return render_kubeconfig(self.url, self.ca_pem, token or self.admin_token, user, namespace)

    def write_kubeconfig(
        self, path: Path, token: str | None = None, user: str = "admin", namespace: str = ""
    ) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(self.kubeconfig(token, user, namespace))
        temporary.chmod(0o600)
        temporary.replace(path)  # appears whole, once ready
        return path


__all__ = ["ADMIN", "LocalControlPlane", "service_account_user"]
