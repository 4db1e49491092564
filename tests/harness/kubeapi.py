"""The real kube-apiserver as the HTTP API's tests meet it: the CRDs applied, a ServiceAccount's token
(tests/httpapi, owners)."""

from __future__ import annotations

import time

import yaml

from contentgen.api.crd import rendered_crds
from tests import apiserver
from tests.waiting import wait_for

RELEASE_NAMESPACE = "contentgen"  # where the chart renders the API's ServiceAccount


def apply_crds() -> None:
    client = apiserver.admin()
    for text in rendered_crds().values():
        client.apply(yaml.safe_load(text))
    for text in rendered_crds().values():
        name = yaml.safe_load(text)["metadata"]["name"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            crd = client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            if any(
                c["type"] == "Established" and c["status"] == "True"
                for c in crd["status"].get("conditions", [])
            ):
                break
            time.sleep(0.05)
        plural, _, group = name.partition(".")
        path = f"/apis/{group}/v1alpha1/{plural}"
        wait_for(lambda path=path: served_kind(path), 60, f"{name} served")


def service_token(namespace: str, account: str) -> str:
    client = apiserver.admin()
    if client.get_or_none(f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}") is None:
        client.create(
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}},
        )
    answer = client.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    return str(answer["status"]["token"])


def served_kind(path: str) -> bool:
    """Whether the API server lists `path` (a CRD just established may answer 429 while its
    storage starts)."""
    try:
        apiserver.admin().get(path)
    except apiserver.ApiError as exc:
        if exc.code == 429:
            return False
        raise
    return True
