"""CustomResourceDefinitions, generated from the API models (`contentgen crds`)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .kinds import CATEGORY, GROUP, KINDS, Kind
from .schema import definition, openapi_schema

HEADER = "# Generated from the API models by `contentgen crds`; do not edit.\n"


def crd(kind: Kind) -> dict[str, Any]:
    return definition(
        kind.kind,
        kind.plural,
        kind.short_names,
        CATEGORY,
        [
            {
                "name": c.name,
                "type": c.type,
                "jsonPath": c.json_path,
                **({"description": c.description} if c.description else {}),
                **({"priority": c.priority} if c.priority else {}),
            }
            for c in kind.columns
        ],
        kind.description,
        spec={"description": f"The desired {kind.kind}.", **openapi_schema(kind.spec)},
        status={
            "description": f"What the operator observed of this {kind.kind}; set by the operator.",
            **openapi_schema(kind.status),
        },
    )


def as_stored(kind: Kind, spec: Mapping[str, Any]) -> dict[str, Any]:
    """`spec` as the API server stores it under `kind`'s CRD, as the operator reads it: each field
    missing where its schema has a default set to it, within objects given or defaulted
    (Kubernetes' structural defaulting), every object's keys in order and a whole float an integer
    (the server's JSON, through Go's encoder)."""
    stored = _stored(_defaulted(dict(spec), openapi_schema(kind.spec)))
    assert isinstance(stored, dict)
    return stored


def _defaulted(value: Any, schema: Mapping[str, Any]) -> Any:
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        out = dict(value)
        for name, sub in properties.items():
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
        values = schema.get("additionalProperties")
        for name in out:
            sub = properties.get(name) or (values if isinstance(values, dict) else None)
            if sub is not None:
                out[name] = _defaulted(out[name], sub)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_defaulted(item, schema["items"]) for item in value]
    return value


def _stored(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _stored(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_stored(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def crd_file_name(kind: Kind) -> str:
    return f"{GROUP}_{kind.plural}.yaml"


def _dump(document: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True)


def render(kind: Kind) -> str:
    return _dump(crd(kind))


def crds() -> dict[str, dict[str, Any]]:
    """File name -> CRD: every kind, and Notification (a subscription, not a kind of work)."""
    from .notification import PLURAL, notification_crd

    made = {crd_file_name(k): crd(k) for k in KINDS.values()}
    made[f"{GROUP}_{PLURAL}.yaml"] = notification_crd()
    return made


def rendered_crds() -> dict[str, str]:
    """File name -> the YAML of `crds()`."""
    return {name: _dump(document) for name, document in crds().items()}


def write_crds(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered_crds().items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written
