"""What the API server does to a custom resource on create/update, from the CRD alone.

Without a cluster, this is how tests hold the generated CRDs to their promises: apply the
schema's defaults, validate the object against the structural schema (OpenAPI 3.0 keywords,
which JSON Schema draft 4 shares), then evaluate every `x-kubernetes-validations` CEL rule
with a CEL interpreter (cel-python). Fidelity gaps (see tests/README.md): regexes run on
Python's engine rather than RE2, and CEL cost limits are checked structurally
(tests/api/test_crds.py) rather than by the API server's estimator.
"""

from __future__ import annotations

import copy
from typing import Any

import celpy
import jsonschema


def _default(schema: dict[str, Any], value: Any) -> Any:
    if isinstance(value, dict) and schema.get("type") == "object":
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = _default(sub, value[name])
    elif isinstance(value, list) and "items" in schema:
        return [_default(schema["items"], item) for item in value]
    return value


def _prune(schema: dict[str, Any], value: Any) -> Any:
    if isinstance(value, dict) and "properties" in schema:
        return {k: _prune(schema["properties"][k], v) for k, v in value.items() if k in schema["properties"]}
    if isinstance(value, list) and "items" in schema:
        return [_prune(schema["items"], item) for item in value]
    return value


_env = celpy.Environment()
_programs: dict[str, Any] = {}


def _program(rule: str) -> Any:
    if rule not in _programs:
        _programs[rule] = _env.program(_env.compile(rule))
    return _programs[rule]


def _cel(schema: dict[str, Any], value: Any, old: Any, path: str, errors: list[tuple[str, str]]) -> None:
    for entry in schema.get("x-kubernetes-validations", []):
        rule = entry["rule"]
        transition = "oldSelf" in rule
        if transition and old is None:
            continue
        activation = {"self": celpy.json_to_cel(value)}
        if transition:
            activation["oldSelf"] = celpy.json_to_cel(old)
        result = _program(rule).evaluate(activation)
        if isinstance(result, celpy.CELEvalError):
            raise AssertionError(f"CEL rule {rule!r} failed to evaluate at {path}: {result}")
        if not bool(result):
            where = path + entry.get("fieldPath", "")
            errors.append((where, entry["message"]))
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                old_sub = old.get(name) if isinstance(old, dict) else None
                _cel(sub, value[name], old_sub, f"{path}.{name}", errors)
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            # Items of lists without a map key have no old value (not correlatable).
            _cel(schema["items"], item, None, f"{path}[{i}]", errors)


def _path(error: jsonschema.ValidationError) -> str:
    text = ""
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    if error.validator == "required":
        missing = error.message.split("'")[1]
        text = f"{text}.{missing}" if text else missing
    return text


def admit(
    crd: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Returns (the object as stored: defaulted and pruned, [(field path, message)])."""
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    stored = _prune(schema, _default(schema, copy.deepcopy(obj)))
    errors = [(_path(e), e.message) for e in jsonschema.Draft4Validator(schema).iter_errors(stored)]
    if not errors:  # the API server runs CEL on a schema-valid object
        _cel(schema, stored, old, "", errors)
    return stored, [(path.lstrip("."), message) for path, message in errors]
