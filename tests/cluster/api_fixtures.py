"""A control plane in the test process: the request pipeline with RBAC, the admission plugins,
the bootstrap policy, the default namespaces and the project's CRDs (no HTTP)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from contentgen.cluster.apiserver import ControlPlane, Request, Response, User
from contentgen.cluster.errors import ApiError
from contentgen.cluster.server import ADMIN, LocalControlPlane
from tests.conftest import ROOT


def crds() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds").glob("*.yaml"))]


def chart_rbac() -> list[dict[str, Any]]:
    path = ROOT / "operator" / "contentgen" / "cluster" / "chart-rbac.yaml"
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


class Api:
    """Calls through the request pipeline, as `user`."""

    def __init__(self, plane: ControlPlane, user: User = ADMIN) -> None:
        self.plane, self.user = plane, user

    def as_user(self, user: User) -> Api:
        return Api(self.plane, user)

    def call(
        self,
        verb: str,
        group: str,
        plural: str,
        namespace: str = "",
        name: str = "",
        body: Any = None,
        *,
        sub: str = "",
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Response:
        t = self.plane.type_of(group, plural)
        return self.plane.handle(
            Request(self.user, verb, t, namespace, name, sub, body, dict(query or {}), content_type)
        )

    def create(
        self, group: str, plural: str, body: dict[str, Any], namespace: str = "", **kw: Any
    ) -> dict[str, Any]:
        return self.call("create", group, plural, namespace, body=body, **kw).body  # type: ignore[no-any-return]

    def get(self, group: str, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return self.call("get", group, plural, namespace, name).body  # type: ignore[no-any-return]

    def patch(
        self, group: str, plural: str, namespace: str, name: str, body: Any, *, kind: str = "merge", **kw: Any
    ) -> dict[str, Any]:
        content_type = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
            "apply": "application/apply-patch+yaml",
        }[kind]
        return self.call("patch", group, plural, namespace, name, body, content_type=content_type, **kw).body  # type: ignore[no-any-return]

    def delete(self, group: str, plural: str, namespace: str, name: str, body: Any = None) -> Response:
        return self.call("delete", group, plural, namespace, name, body)


def refused(call: Callable[[], Any], code: int) -> ApiError:
    """The ApiError `call` raises, which must have status `code`."""
    with pytest.raises(ApiError) as info:
        call()
    assert info.value.code == code, info.value.message
    return info.value


def control_plane(tmp_path: Any, *, install_crds: bool = True, rbac: bool = True) -> LocalControlPlane:
    """A LocalControlPlane (not started: no HTTP), with the CRDs and the chart's RBAC installed."""
    local = LocalControlPlane(tmp_path)
    if install_crds:
        local.apply_all(crds())
    if rbac:
        local.apply_all(chart_rbac())
    return local


def lora(name: str = "demo", **spec: Any) -> dict[str, Any]:
    body = {
        "owner": "alice",
        "source": {"url": "https://example.com/v.mp4"},
        "triggerWord": "tw",
        "provider": "offline",
    }
    body.update(spec)
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "LoraTraining",
        "metadata": {"name": name},
        "spec": body,
    }
