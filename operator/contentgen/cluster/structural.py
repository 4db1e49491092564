"""What apiextensions does to a custom resource with its structural schema: pruning of unknown
fields, defaulting, OpenAPI v3 validation (kube-openapi's rules and messages), list types
(`x-kubernetes-list-type` set and map), and CEL rules (`x-kubernetes-validations`, with
`oldSelf` for transition rules on update).

Regular expressions run on RE2 (google-re2, as Go's regexp) and, as in kube-openapi, `pattern`
searches the string (it is not implicitly anchored).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from .errors import Cause

try:  # RE2, the engine Go's regexp implements; cel-python brings it
    import re2 as _regex
except ImportError:  # pragma: no cover - the cluster extra installs it
    _regex = re

Schema = dict[str, Any]

# --- field errors, as k8s.io/apimachinery/pkg/util/validation/field renders them -------------

_TYPE_TEXT = {
    "FieldValueRequired": "Required value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "FieldValueTypeInvalid": "Invalid value",
}
_OMIT = object()


class Raw(str):
    """A bad value printed as it is (Go's %#v of a number: 0x0)."""


def go_value(value: Any) -> str:
    """A bad value as Go's field errors print it (%v for numbers and bools, %q for strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class FieldError:
    type: str  # a CauseType: FieldValueRequired, FieldValueInvalid, ...
    field: str
    value: Any = _OMIT
    detail: str = ""

    def body(self) -> str:
        text = _TYPE_TEXT[self.type]
        if self.type in ("FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong"):
            pass
        elif self.value is not _OMIT:
            text = f"{text}: {go_value(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def cause(self) -> Cause:
        return Cause(self.field, self.body(), self.type)


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, detail=detail)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", path, value, detail)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", path, detail=detail)


def not_supported(path: str, value: Any, values: list[Any]) -> FieldError:
    quoted = ", ".join(json.dumps(str(v)) for v in values)
    return FieldError("FieldValueNotSupported", path, value, f"supported values: {quoted}" if values else "")


def too_long(path: str, limit: int) -> FieldError:
    unit = "byte" if limit == 1 else "bytes"
    return FieldError("FieldValueTooLong", path, detail=f"may not be more than {limit} {unit}")


def too_many(path: str, actual: int, limit: int) -> FieldError:
    unit = "item" if limit == 1 else "items"
    return FieldError("FieldValueTooMany", path, actual, f"must have at most {limit} {unit}")


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", path, value)


def child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def index(path: str, i: int | str) -> str:
    return f"{path}[{i}]"


# --- pruning ---------------------------------------------------------------------------------

ROOT_KEEP = ("apiVersion", "kind", "metadata")


def prune(
    value: Any, schema: Schema, path: str = "", root: bool = True, pruned: list[str] | None = None
) -> Any:
    """Drop fields the schema does not specify (in place); their paths go to `pruned`."""
    pruned = pruned if pruned is not None else []
    keep_meta = root or schema.get("x-kubernetes-embedded-resource")
    if isinstance(value, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
            if isinstance(schema.get("additionalProperties"), dict):
                for k in value:
                    prune(value[k], schema["additionalProperties"], child(path, k), False, pruned)
            return value
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        for k in list(value):
            if keep_meta and k in ROOT_KEEP:
                continue
            if properties is not None and k in properties:
                prune(value[k], properties[k], child(path, k), False, pruned)
            elif isinstance(additional, dict):
                prune(value[k], additional, child(path, k), False, pruned)
            elif additional is True or schema.get("x-kubernetes-preserve-unknown-fields"):
                continue
            else:
                pruned.append(child(path, k))
                del value[k]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            prune(item, schema["items"], index(path, i), False, pruned)
    return value


# --- defaulting --------------------------------------------------------------------------------


def _non_nullable_null(value: Any, schema: Schema | None) -> bool:
    return value is None and schema is not None and not schema.get("nullable")


def default(value: Any, schema: Schema | None) -> Any:
    """Apply defaults in place, top-down, as structuraldefaulting.Default does: a missing field
    (or a null one that is not nullable) gets its default, then defaults apply inside it."""
    if schema is None:
        return value
    if isinstance(value, dict):
        for k, prop in (schema.get("properties") or {}).items():
            if "default" in prop and (k not in value or _non_nullable_null(value[k], prop)):
                value[k] = json.loads(json.dumps(prop["default"]))
        for k, v in list(value.items()):
            prop = (schema.get("properties") or {}).get(k)
            if prop is not None:
                default(v, prop)
            elif isinstance(schema.get("additionalProperties"), dict):
                default(v, schema["additionalProperties"])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        items = schema["items"]
        for i, v in enumerate(value):
            if _non_nullable_null(v, items) and "default" in items:
                value[i] = json.loads(json.dumps(items["default"]))
            default(value[i], items)
    return value


def drop_non_nullable_nulls(value: Any, schema: Schema | None) -> Any:
    """PruneNonNullableNullsWithoutDefaults: a null field that is not nullable and has no default
    is removed (after defaulting)."""
    if schema is None:
        return value
    if isinstance(value, dict):
        for k in list(value):
            prop = (schema.get("properties") or {}).get(k)
            if prop is None and isinstance(schema.get("additionalProperties"), dict):
                prop = schema["additionalProperties"]
            if prop is None:
                continue
            if value[k] is None and not prop.get("nullable") and "default" not in prop:
                del value[k]
            else:
                drop_non_nullable_nulls(value[k], prop)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            drop_non_nullable_nulls(item, schema["items"])
    return value


# --- OpenAPI v3 validation (kube-openapi) ------------------------------------------------------


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(value: Any, expected: str) -> bool:
    actual = _type_of(value)
    return actual == expected or (expected == "number" and actual == "integer")


_FORMATS: dict[str, re.Pattern[str]] = {
    "date-time": re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"),
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "uuid": re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"),
    "byte": re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"),
}


def _format_ok(value: str, fmt: str) -> bool:
    pattern = _FORMATS.get(fmt)
    if pattern is None:
        return True  # formats kube-openapi does not check (int32, password, ...) pass
    if not pattern.match(value):
        return False
    if fmt == "date-time":
        try:
            datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00").replace(" ", "T"))
        except ValueError:
            return False
    return True


def compile_regex(pattern: str) -> Any:
    """The pattern compiled with RE2 (what apiextensions checks a schema's pattern with)."""
    return _regex.compile(pattern)


def _search(pattern: str, text: str) -> bool:
    return _regex.search(pattern, text) is not None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def validate(
    value: Any, schema: Schema, path: str = "", errors: list[FieldError] | None = None
) -> list[FieldError]:
    """kube-openapi's schema validation, with the messages apiextensions turns its errors into."""
    errors = errors if errors is not None else []
    where = path or "<root>"
    if value is None:
        if schema.get("nullable"):
            return errors
        if "type" in schema:
            errors.append(
                FieldError(
                    "FieldValueTypeInvalid",
                    path,
                    "null",
                    f'{where} in body must be of type {schema["type"]}: "null"',
                )
            )
        return errors
    if schema.get("x-kubernetes-int-or-string"):
        if _type_of(value) not in ("integer", "string"):
            errors.append(
                FieldError(
                    "FieldValueTypeInvalid",
                    path,
                    _type_of(value),
                    f'{where} in body must be of type integer,string: "{_type_of(value)}"',
                )
            )
            return errors
    elif "type" in schema and not _type_ok(value, schema["type"]):
        errors.append(
            FieldError(
                "FieldValueTypeInvalid",
                path,
                _type_of(value),
                f'{where} in body must be of type {schema["type"]}: "{_type_of(value)}"',
            )
        )
        return errors

    if "enum" in schema and value not in schema["enum"]:
        errors.append(not_supported(path, value, schema["enum"]))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _numeric(value, schema, path, where, errors)
    elif isinstance(value, str):
        _string(value, schema, path, where, errors)
    elif isinstance(value, list):
        _array(value, schema, path, where, errors)
    elif isinstance(value, dict):
        _object(value, schema, path, where, errors)
    for keyword in ("allOf", "anyOf", "oneOf", "not"):
        if keyword in schema:
            _combinator(keyword, value, schema[keyword], path, where, errors)
    return errors


def _numeric(value: float, schema: Schema, path: str, where: str, errors: list[FieldError]) -> None:
    if "maximum" in schema:
        limit = schema["maximum"]
        if schema.get("exclusiveMaximum") and value >= limit:
            errors.append(invalid(path, value, f"{where} in body should be less than {_number(limit)}"))
        elif value > limit:
            errors.append(
                invalid(path, value, f"{where} in body should be less than or equal to {_number(limit)}")
            )
    if "minimum" in schema:
        limit = schema["minimum"]
        if schema.get("exclusiveMinimum") and value <= limit:
            errors.append(invalid(path, value, f"{where} in body should be greater than {_number(limit)}"))
        elif value < limit:
            errors.append(
                invalid(path, value, f"{where} in body should be greater than or equal to {_number(limit)}")
            )
    if "multipleOf" in schema:
        quotient = value / schema["multipleOf"]
        if not math.isclose(quotient, round(quotient)):
            errors.append(
                invalid(
                    path, value, f"{where} in body should be a multiple of {_number(schema['multipleOf'])}"
                )
            )


def _string(value: str, schema: Schema, path: str, where: str, errors: list[FieldError]) -> None:
    length = len(value)  # kube-openapi counts Unicode code points
    if "maxLength" in schema and length > schema["maxLength"]:
        errors.append(too_long(path, schema["maxLength"]))
    if "minLength" in schema and length < schema["minLength"]:
        errors.append(
            invalid(path, value, f"{where} in body should be at least {schema['minLength']} chars long")
        )
    if "pattern" in schema and not _search(schema["pattern"], value):
        errors.append(invalid(path, value, f"{where} in body should match '{schema['pattern']}'"))
    if "format" in schema and not _format_ok(value, schema["format"]):
        errors.append(
            invalid(path, value, f"{where} in body must be of type {schema['format']}: {json.dumps(value)}")
        )


def _array(value: list[Any], schema: Schema, path: str, where: str, errors: list[FieldError]) -> None:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(too_many(path, len(value), schema["maxItems"]))
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(
            invalid(path, value, f"{where} in body should have at least {schema['minItems']} items")
        )
    if isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            validate(item, schema["items"], index(path, i), errors)
    errors.extend(list_type_errors(value, schema, path))


def _object(value: dict[str, Any], schema: Schema, path: str, where: str, errors: list[FieldError]) -> None:
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errors.append(too_many(path, len(value), schema["maxProperties"]))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        errors.append(
            invalid(
                path, len(value), f"{where} in body should have at least {schema['minProperties']} properties"
            )
        )
    for name in schema.get("required") or []:
        if name not in value:
            errors.append(required(child(path, name)))
    properties = schema.get("properties") or {}
    for k, v in value.items():
        if k in properties:
            validate(v, properties[k], child(path, k), errors)
        elif isinstance(schema.get("additionalProperties"), dict):
            validate(v, schema["additionalProperties"], child(path, k), errors)


def _combinator(
    keyword: str, value: Any, branches: Any, path: str, where: str, errors: list[FieldError]
) -> None:
    if keyword == "not":
        if not validate(value, branches, path, []):
            errors.append(invalid(path, value, f"{where} in body must not validate the schema (not)"))
        return
    results = [validate(value, branch, path, []) for branch in branches]
    if keyword == "allOf":
        for result in results:
            errors.extend(result)
    elif keyword == "anyOf" and all(results):
        errors.append(invalid(path, value, f"{where} in body must validate at least one schema (anyOf)"))
    elif keyword == "oneOf" and sum(1 for r in results if not r) != 1:
        errors.append(invalid(path, value, f"{where} in body must validate one and only one schema (oneOf)"))


def list_type_errors(value: list[Any], schema: Schema, path: str) -> list[FieldError]:
    """x-kubernetes-list-type: set (unique scalars) and map (unique by the map keys)."""
    kind = schema.get("x-kubernetes-list-type")
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        if kind == "set":
            key = json.dumps(item, sort_keys=True)
            shown: Any = item
        elif kind == "map" and isinstance(item, dict):
            keys = schema.get("x-kubernetes-list-map-keys") or []
            shown = {k: item.get(k) for k in keys if k in item}
            key = json.dumps(shown, sort_keys=True)
        else:
            continue
        if key in seen:
            errors.append(duplicate(index(path, i), shown))
        seen.add(key)
    return errors


# --- CEL ---------------------------------------------------------------------------------------

_cel_programs: dict[str, Any] = {}


def _celpy() -> Any:
    import celpy

    return celpy


def cel_program(rule: str) -> Any:
    if rule not in _cel_programs:
        celpy = _celpy()
        env = celpy.Environment()
        _cel_programs[rule] = env.program(env.compile(rule))
    return _cel_programs[rule]


@lru_cache(maxsize=20000)
def _evaluate(rule: str, value_json: str, old_json: str | None, transition: bool) -> tuple[bool, str]:
    """(the rule held, an evaluation error or ""). Rules are pure functions of self and oldSelf,
    so the answer for the same values is remembered: a status update re-validates the spec."""
    celpy = _celpy()
    activation: dict[str, Any] = {"self": celpy.json_to_cel(json.loads(value_json))}
    if transition:
        activation["oldSelf"] = celpy.json_to_cel(json.loads(old_json)) if old_json is not None else None
    result = cel_program(rule).evaluate(activation)
    if isinstance(result, celpy.CELEvalError):
        return False, str(result)
    return bool(result), ""


def _schema_type(schema: Schema) -> str:
    if schema.get("x-kubernetes-int-or-string"):
        return "integer"  # apiextensions reports int-or-string as its int type here
    return str(schema.get("type", "object"))


def cel_errors(
    value: Any, old: Any, schema: Schema, path: str = "", *, has_old: bool = False
) -> list[FieldError]:
    """Every failing x-kubernetes-validations rule, evaluated where its schema node is. Transition
    rules (those reading `oldSelf`) run only when there is a correlatable old value."""
    errors: list[FieldError] = []
    celpy = _celpy()
    for entry in schema.get("x-kubernetes-validations") or []:
        rule = entry["rule"]
        transition = "oldSelf" in rule
        if transition and not has_old and not entry.get("optionalOldSelf"):
            continue
        old_json = json.dumps(old, sort_keys=True) if transition and has_old else None
        passed, failure = _evaluate(rule, json.dumps(value, sort_keys=True), old_json, transition)
        where = path + entry.get("fieldPath", "") if entry.get("fieldPath") else path
        if failure:
            errors.append(invalid(where, _schema_type(schema), f"rule evaluation failed: {failure}"))
            continue
        if passed:
            continue
        activation: dict[str, Any] = {"self": celpy.json_to_cel(value)}
        if transition:
            activation["oldSelf"] = celpy.json_to_cel(old) if has_old else None
        message = entry.get("message") or f"failed rule: {rule}"
        if entry.get("messageExpression"):
            dynamic = cel_program(entry["messageExpression"]).evaluate(activation)
            if isinstance(dynamic, str) and dynamic.strip():
                message = str(dynamic)
        reason = entry.get("reason", "FieldValueInvalid")
        if reason == "FieldValueForbidden":
            errors.append(forbidden(where, message))
        elif reason == "FieldValueRequired":
            errors.append(required(where, message))
        elif reason == "FieldValueDuplicate":
            errors.append(FieldError("FieldValueDuplicate", where, _schema_type(schema), message))
        else:
            errors.append(invalid(where, _schema_type(schema), message))
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for k, v in value.items():
            sub = properties.get(k) or (additional if isinstance(additional, dict) else None)
            if sub is None:
                continue
            old_has = has_old and isinstance(old, dict) and k in old
            errors += cel_errors(v, old.get(k) if old_has else None, sub, child(path, k), has_old=old_has)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        items = schema["items"]
        old_items = _correlate(value, old if has_old else None, schema)
        for i, item in enumerate(value):
            correlated = old_items[i]
            errors += cel_errors(item, correlated[1], items, index(path, i), has_old=correlated[0])
    return errors


def _correlate(value: list[Any], old: Any, schema: Schema) -> list[tuple[bool, Any]]:
    """Old values for list items: only map lists (by key) and sets (by value) correlate."""
    if not isinstance(old, list):
        return [(False, None)] * len(value)
    kind = schema.get("x-kubernetes-list-type")
    if kind == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        by_key = {json.dumps([o.get(k) for k in keys]): o for o in old if isinstance(o, dict)}
        out = []
        for item in value:
            key = json.dumps([item.get(k) for k in keys]) if isinstance(item, dict) else None
            out.append((key in by_key, by_key.get(key)) if key else (False, None))
        return out
    if kind == "set":
        return [(item in old, item if item in old else None) for item in value]
    return [(False, None)] * len(value)
