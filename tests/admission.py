"""Admission of a custom resource by its CRD, done by the real kube-apiserver (tests/apiserver.py):
the CRD is installed (the server checks it first: structural schema, CEL that compiles and fits
its cost budget, defaults valid against their schema), then the object is created, or updated from
`old`, with dryRun=All: pruning, defaulting, the OpenAPI schema, list types and CEL rules (with
`oldSelf` on update) run exactly as they would, and nothing is stored."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from tests.apiserver import ApiError, admin, fresh_namespace

_installed: dict[str, str] = {}  # CRD name -> its spec as last installed (JSON)
_namespace: list[str] = []


def _served(crd: dict[str, Any]) -> str:
    """Install `crd` (again, if it changed) and return its kind's collection path in the test namespace."""
    client = admin()
    name, spec = crd["metadata"]["name"], crd["spec"]
    text = json.dumps(spec, sort_keys=True)
    if _installed.get(name) != text:
        client.apply(copy.deepcopy(crd))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            current = client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conditions = {
                c["type"]: c["status"] for c in (current.get("status") or {}).get("conditions") or []
            }
            if conditions.get("Established") == "True" and current["metadata"].get("generation") == (
                current["status"].get("observedGeneration", current["metadata"].get("generation"))
            ):
                break
            time.sleep(0.05)
        _installed[name] = text
    if not _namespace:
        _namespace.append(fresh_namespace("admission"))
    version = next(v["name"] for v in spec["versions"] if v.get("storage"))
    return f"/apis/{spec['group']}/{version}/namespaces/{_namespace[0]}/{spec['names']['plural']}"


def _errors(exc: ApiError) -> list[tuple[str, str]]:
    body = exc.body if isinstance(exc.body, dict) else {}
    causes = (body.get("details") or {}).get("causes") or [{"field": "", "message": exc.message}]
    return [(c.get("field", ""), c.get("message", "")) for c in causes]


def admit(
    crd: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Returns (the object as the server would store it: defaulted and pruned, [(field path, message)])."""
    client = admin()
    collection = _served(crd)
    candidate = copy.deepcopy(obj)
    candidate.setdefault("metadata", {}).setdefault("name", "x")
    candidate["metadata"].pop("namespace", None)
    if old is None:
        try:
            return client.request("POST", collection, body=candidate, params={"dryRun": "All"}), []
        except ApiError as exc:
            return candidate, _errors(exc)
    previous = copy.deepcopy(old)
    previous.setdefault("metadata", {})["name"] = candidate["metadata"]["name"]
    previous["metadata"].pop("namespace", None)
    path = f"{collection}/{candidate['metadata']['name']}"
    stored = client.create(collection, previous)  # the old object must exist for an update
    try:
        candidate["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"]
        return client.request("PUT", path, body=candidate, params={"dryRun": "All"}), []
    except ApiError as exc:
        return candidate, _errors(exc)
    finally:
        client.delete(path)
