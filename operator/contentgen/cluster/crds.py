"""CustomResourceDefinition admission, as apiextensions validates a CRD before serving it
(pkg/apis/apiextensions/validation and pkg/apiserver/schema): names, versions, structural
schemas, list and map types, CEL rules that compile, printer columns and defaults that are
pruned and validate against their own schema (ValidateDefaults). A CRD that fails any of these
is refused with 422, naming the field, as a real server does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import structural
from .structural import FieldError, child, forbidden, invalid, not_supported, required

Schema = dict[str, Any]

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
PRINTER_TYPES = ("boolean", "date", "integer", "number", "string")
PRINTER_FORMATS = ("byte", "date", "date-time", "double", "float", "int32", "int64", "password")
SCHEMA_TYPES = ("array", "boolean", "integer", "number", "object", "string")
RULE_REASONS = ("FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired")


def dns1035_errors(value: str) -> str:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _DNS1035.match(value):
        return (
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
            "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        )
    return ""


def dns1123_subdomain_errors(value: str) -> str:
    if len(value) > 253:
        return "must be no more than 253 characters"
    if not _DNS1123_SUBDOMAIN.match(value):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return ""


def validate_crd(crd: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    name = (crd.get("metadata") or {}).get("name", "")
    if name != f"{names.get('plural', '')}.{group}":
        errors.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if not group:
        errors.append(required("spec.group"))
    elif why := dns1123_subdomain_errors(group):
        errors.append(invalid("spec.group", group, why))
    elif "." not in group:
        errors.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    if spec.get("scope") not in ("Cluster", "Namespaced"):
        errors.append(not_supported("spec.scope", spec.get("scope", ""), ["Cluster", "Namespaced"]))
    errors += _names(names)
    versions = spec.get("versions") or []
    if not versions:
        errors.append(required("spec.versions", "must have at least one version"))
    if len({v.get("name") for v in versions}) != len(versions):
        errors.append(invalid("spec.versions", "...", "must contain unique version names"))
    if sum(1 for v in versions if v.get("storage")) != 1:
        errors.append(
            invalid("spec.versions", "...", "must have exactly one version marked as storage version")
        )
    for i, version in enumerate(versions):
        errors += _version(version, f"spec.versions[{i}]")
    return errors


def _names(names: dict[str, Any]) -> list[FieldError]:
    errors = []
    for field in ("plural", "singular", "kind", "listKind"):
        if not names.get(field):
            errors.append(required(f"spec.names.{field}"))
    for field in ("plural", "singular"):
        if names.get(field) and (why := dns1035_errors(names[field])):
            errors.append(invalid(f"spec.names.{field}", names[field], why))
    for field in ("kind", "listKind"):
        if names.get(field) and (why := dns1035_errors(names[field].lower())):
            errors.append(
                invalid(
                    f"spec.names.{field}",
                    names[field],
                    "may have mixed case, but should otherwise match: " + why,
                )
            )
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errors.append(
            invalid("spec.names.listKind", names["listKind"], "kind and listKind may not be the same")
        )
    for i, short in enumerate(names.get("shortNames") or []):
        if why := dns1035_errors(short):
            errors.append(invalid(f"spec.names.shortNames[{i}]", short, why))
    for i, category in enumerate(names.get("categories") or []):
        if why := dns1035_errors(category):
            errors.append(invalid(f"spec.names.categories[{i}]", category, why))
    return errors


def _version(version: dict[str, Any], path: str) -> list[FieldError]:
    errors = []
    if why := dns1035_errors(str(version.get("name", ""))):
        errors.append(invalid(child(path, "name"), version.get("name", ""), why))
    schema = (version.get("schema") or {}).get("openAPIV3Schema")
    schema_path = child(path, "schema.openAPIV3Schema")
    if schema is None:
        errors.append(required(schema_path, "schemas are required"))
    else:
        errors += schema_errors(schema, schema_path, status="status" in (version.get("subresources") or {}))
    subresources = version.get("subresources") or {}
    if "status" in subresources and subresources["status"] not in ({}, None):
        errors.append(invalid(child(path, "subresources.status"), subresources["status"], "must be empty"))
    seen = set()
    for i, column in enumerate(version.get("additionalPrinterColumns") or []):
        where = f"{path}.additionalPrinterColumns[{i}]"
        if not column.get("name"):
            errors.append(required(child(where, "name")))
        elif column["name"] in seen:
            errors.append(structural.duplicate(child(where, "name"), column["name"]))
        seen.add(column.get("name"))
        if not column.get("type"):
            errors.append(required(child(where, "type"), f"must be one of {','.join(PRINTER_TYPES)}"))
        elif column["type"] not in PRINTER_TYPES:
            errors.append(
                invalid(child(where, "type"), column["type"], f"must be one of {','.join(PRINTER_TYPES)}")
            )
        if column.get("format") and column["format"] not in PRINTER_FORMATS:
            errors.append(
                invalid(
                    child(where, "format"), column["format"], f"must be one of {','.join(PRINTER_FORMATS)}"
                )
            )
        json_path = column.get("jsonPath", "")
        if not json_path:
            errors.append(required(child(where, "JSONPath")))
        elif not json_path.startswith("."):
            errors.append(
                invalid(child(where, "JSONPath"), json_path, "must be a simple json path starting with .")
            )
    return errors


# --- schemas -----------------------------------------------------------------------------------

_FORBIDDEN_KEYWORDS = {
    "id": "id is not supported",
    "additionalItems": "additionalItems is not supported",
    "patternProperties": "patternProperties is not supported",
    "definitions": "definitions is not supported",
    "dependencies": "dependencies is not supported",
    "$ref": "$ref is not supported",
}
_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")


def schema_errors(schema: Schema, path: str, *, status: bool = False) -> list[FieldError]:
    """Why `schema` is not a valid structural schema for a CRD version (empty when it is)."""
    errors: list[FieldError] = []
    if schema.get("type") != "object":
        if not schema.get("type"):
            errors.append(required(child(path, "type"), "must not be empty at the root"))
        else:
            errors.append(invalid(child(path, "type"), schema["type"], "must be object at the root"))
    if schema.get("nullable"):
        errors.append(forbidden(child(path, "nullable"), "nullable cannot be true at the root"))
    if "additionalProperties" in schema:
        errors.append(forbidden(child(path, "additionalProperties"), "must not be used at the root"))
    metadata = (schema.get("properties") or {}).get("metadata")
    if metadata is not None:
        if metadata.get("type") not in (None, "object"):
            errors.append(
                invalid(child(path, "properties[metadata].type"), metadata["type"], "must be object")
            )
        if set(metadata.get("properties") or {}) - {"name", "generateName"} or any(
            k not in ("type", "properties", "description") for k in metadata
        ):
            errors.append(
                forbidden(
                    child(path, "properties[metadata]"),
                    "must not specify anything other than name and generateName, "
                    "but metadata is implicitly specified",
                )
            )
    errors += _node(schema, path, root=True, context="root")
    if not errors:
        errors += default_errors(schema, path)
        errors += cel_rule_errors(schema, path)
    return errors


def _node(schema: Schema, path: str, *, root: bool = False, context: str = "field") -> list[FieldError]:
    errors: list[FieldError] = []
    for keyword, why in _FORBIDDEN_KEYWORDS.items():
        if keyword in schema:
            errors.append(forbidden(child(path, keyword), why))
    if schema.get("uniqueItems"):
        errors.append(
            forbidden(
                child(path, "uniqueItems"),
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        )
    if "properties" in schema and "additionalProperties" in schema and not root:
        errors.append(
            forbidden(
                child(path, "additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            )
        )
    if "type" in schema and schema["type"] not in SCHEMA_TYPES:
        if schema["type"] == "null":
            errors.append(
                forbidden(child(path, "type"), "type cannot be set to null, use nullable as an alternative")
            )
        else:
            errors.append(not_supported(child(path, "type"), schema["type"], list(SCHEMA_TYPES)))
    if isinstance(schema.get("items"), list):
        errors.append(forbidden(child(path, "items"), "items must be a schema object and not an array"))
    escape = schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-preserve-unknown-fields")
    if not schema.get("type") and not escape and not root:
        where = "specified array items" if context == "items" else "specified object fields"
        errors.append(required(child(path, "type"), f"must not be empty for {where}"))
    if schema.get("x-kubernetes-preserve-unknown-fields") is False:
        errors.append(
            invalid(child(path, "x-kubernetes-preserve-unknown-fields"), False, "must be true or undefined")
        )
    if schema.get("x-kubernetes-int-or-string") and schema.get("type"):
        errors.append(forbidden(child(path, "type"), "must be empty if x-kubernetes-int-or-string is true"))
    if schema.get("x-kubernetes-embedded-resource") and schema.get("type") != "object":
        errors.append(
            required(child(path, "type"), "must be object if x-kubernetes-embedded-resource is true")
        )
    if schema.get("type") == "array" and "items" not in schema:
        errors.append(required(child(path, "items"), "must be specified"))
    if "pattern" in schema:
        try:
            structural.compile_regex(schema["pattern"])
        except Exception as exc:
            errors.append(
                invalid(
                    child(path, "pattern"),
                    schema["pattern"],
                    f"must be a valid regular expression, but isn't: {exc}",
                )
            )
    errors += _list_type_errors(schema, path)
    errors += _rule_shape_errors(schema, path)
    for junctor in _JUNCTORS:
        if junctor in schema:
            branches = schema[junctor] if isinstance(schema[junctor], list) else [schema[junctor]]
            for i, branch in enumerate(branches):
                where = f"{path}.{junctor}[{i}]" if junctor != "not" else f"{path}.not"
                errors += _value_validation_errors(branch, where)
    for name, sub in (schema.get("properties") or {}).items():
        if not root and name == "metadata" and not schema.get("x-kubernetes-embedded-resource"):
            pass
        errors += _node(sub, f"{path}.properties[{name}]")
    if isinstance(schema.get("items"), dict):
        errors += _node(schema["items"], f"{path}.items", context="items")
    if isinstance(schema.get("additionalProperties"), dict):
        errors += _node(schema["additionalProperties"], f"{path}.additionalProperties")
    return errors


def _value_validation_errors(schema: Schema, path: str) -> list[FieldError]:
    """Inside allOf/anyOf/oneOf/not only value validations may appear (structural schema rule)."""
    errors = []
    for keyword, why in (
        ("type", "must be empty to be structural"),
        ("additionalProperties", "must be undefined to be structural"),
        ("default", "must be undefined to be structural"),
        ("title", "must be empty to be structural"),
        ("description", "must be empty to be structural"),
        ("nullable", "must be false to be structural"),
        ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
        ("x-kubernetes-embedded-resource", "must be false to be structural"),
        ("x-kubernetes-int-or-string", "must be false to be structural"),
        ("x-kubernetes-list-map-keys", "must be empty to be structural"),
        ("x-kubernetes-list-type", "must be undefined to be structural"),
        ("x-kubernetes-map-type", "must be undefined to be structural"),
        ("x-kubernetes-validations", "must be empty to be structural"),
    ):
        if keyword in schema:
            errors.append(forbidden(child(path, keyword), why))
    for name, sub in (schema.get("properties") or {}).items():
        errors += _value_validation_errors(sub, f"{path}.properties[{name}]")
    if isinstance(schema.get("items"), dict):
        errors += _value_validation_errors(schema["items"], f"{path}.items")
    return errors


def _list_type_errors(schema: Schema, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    list_type = schema.get("x-kubernetes-list-type")
    keys = schema.get("x-kubernetes-list-map-keys") or []
    if "x-kubernetes-map-type" in schema:
        if schema.get("type") != "object":
            errors.append(
                invalid(
                    child(path, "type"),
                    schema.get("type", ""),
                    "must be object if x-kubernetes-map-type is specified",
                )
            )
        if schema["x-kubernetes-map-type"] not in ("atomic", "granular"):
            errors.append(
                not_supported(
                    child(path, "x-kubernetes-map-type"),
                    schema["x-kubernetes-map-type"],
                    ["atomic", "granular"],
                )
            )
    if list_type is None:
        if keys:
            errors.append(
                required(
                    child(path, "x-kubernetes-list-type"),
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                )
            )
        return errors
    if schema.get("type") != "array":
        errors.append(
            invalid(
                child(path, "type"),
                schema.get("type", ""),
                "must be array if x-kubernetes-list-type is specified",
            )
        )
        return errors
    if list_type not in ("atomic", "set", "map"):
        errors.append(
            not_supported(child(path, "x-kubernetes-list-type"), list_type, ["atomic", "set", "map"])
        )
        return errors
    raw_items = schema.get("items")
    items: Schema = raw_items if isinstance(raw_items, dict) else {}
    if (
        list_type == "set"
        and items.get("type") == "object"
        and items.get("x-kubernetes-map-type") != "atomic"
    ):
        errors.append(
            invalid(
                child(path, "items.x-kubernetes-map-type"),
                items.get("x-kubernetes-map-type"),
                "must be atomic as item of a list with x-kubernetes-list-type=set",
            )
        )
    if (
        list_type == "set"
        and items.get("type") == "array"
        and items.get("x-kubernetes-list-type", "atomic") != "atomic"
    ):
        errors.append(
            invalid(
                child(path, "items.x-kubernetes-list-type"),
                items.get("x-kubernetes-list-type"),
                "must be atomic as item of a list with x-kubernetes-list-type=set",
            )
        )
    if list_type != "map":
        if keys:
            errors.append(
                invalid(
                    child(path, "x-kubernetes-list-type"),
                    list_type,
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                )
            )
        return errors
    if not keys:
        errors.append(
            required(
                child(path, "x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            )
        )
    if items.get("type") != "object":
        errors.append(
            invalid(
                child(path, "items.type"),
                items.get("type", ""),
                "must be object if parent array's x-kubernetes-list-type is map",
            )
        )
        return errors
    properties = items.get("properties") or {}
    if len(set(keys)) != len(keys):
        errors.append(
            invalid(child(path, "x-kubernetes-list-map-keys"), keys, "must not contain duplicate entries")
        )
    if any(k not in properties for k in keys):
        errors.append(
            invalid(
                child(path, "x-kubernetes-list-map-keys"),
                keys,
                "entries must all be names of item properties",
            )
        )
    if items.get("nullable"):
        errors.append(
            forbidden(
                child(path, "items.nullable"),
                f"cannot be nullable when x-kubernetes-list-type is {list_type}",
            )
        )
    for k in keys:
        prop = properties.get(k)
        if prop is None:
            continue
        if prop.get("type") not in ("string", "integer", "number", "boolean"):
            errors.append(
                invalid(
                    f"{path}.items.properties[{k}].type",
                    prop.get("type", ""),
                    "must be a scalar type if parent array's x-kubernetes-list-type is map",
                )
            )
        if k not in (items.get("required") or []) and "default" not in prop:
            errors.append(
                required(
                    f"{path}.items.properties[{k}].default",
                    "this property is in x-kubernetes-list-map-keys, "
                    "so it must have a default or be a required property",
                )
            )
        if prop.get("nullable"):
            errors.append(
                forbidden(
                    f"{path}.items.properties[{k}].nullable",
                    "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                )
            )
    return errors


def _rule_shape_errors(schema: Schema, path: str) -> list[FieldError]:
    errors = []
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        where = f"{path}.x-kubernetes-validations[{i}]"
        if not rule.get("rule"):
            errors.append(required(child(where, "rule"), "rule is not specified"))
        if "message" in rule and not str(rule["message"]).strip():
            errors.append(invalid(child(where, "message"), rule["message"], "must be non-empty if specified"))
        elif "\n" in str(rule.get("message", "")):
            errors.append(invalid(child(where, "message"), rule["message"], "must not contain line breaks"))
        if "messageExpression" in rule and not str(rule["messageExpression"]).strip():
            errors.append(
                required(
                    child(where, "messageExpression"), "messageExpression must be non-empty if specified"
                )
            )
        if "reason" in rule and rule["reason"] not in RULE_REASONS:
            errors.append(not_supported(child(where, "reason"), rule["reason"], list(RULE_REASONS)))
        if "fieldPath" in rule and not _field_path_ok(schema, rule["fieldPath"]):
            errors.append(invalid(child(where, "fieldPath"), rule["fieldPath"], "must be a valid path"))
        if rule.get("optionalOldSelf") and "oldSelf" not in rule.get("rule", ""):
            errors.append(
                invalid(
                    child(where, "optionalOldSelf"), True, "may not be set if oldSelf is not used in rule"
                )
            )
    return errors


def _field_path_ok(schema: Schema, field_path: str) -> bool:
    if not field_path or "\n" in field_path or not field_path.startswith("."):
        return False
    node = schema
    for part in re.findall(r"\.([A-Za-z0-9_-]+)|\['([^']+)'\]", field_path):
        name = part[0] or part[1]
        properties = node.get("properties") or {}
        if name in properties:
            node = properties[name]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return False
    return True


# --- defaults (ValidateDefaults) -------------------------------------------------------------------


def default_errors(schema: Schema, path: str, *, inside_meta: bool = False) -> list[FieldError]:
    """Every default must be pruned already and valid against its own schema (and its CEL rules);
    defaults under metadata other than name/generateName are refused. Defaults inside
    additionalProperties are not followed, as in the API server."""
    errors: list[FieldError] = []
    if "default" in schema:
        where = child(path, "default")
        value = json.loads(json.dumps(schema["default"]))
        pruned: list[str] = []
        structural.prune(value, schema, root=False, pruned=pruned)
        if pruned:
            errors.append(invalid(where, schema["default"], "must not have unknown fields"))
        else:
            problems = structural.validate(schema["default"], schema, where)
            if not problems:
                problems = structural.cel_errors(
                    schema["default"], schema["default"], schema, where, has_old=True
                )
            errors += problems
    if isinstance(schema.get("items"), dict):
        errors += default_errors(schema["items"], f"{path}.items")
    for name, sub in (schema.get("properties") or {}).items():
        errors += default_errors(sub, f"{path}.properties[{name}]")
    return errors


# --- CEL rules: compile, a type check of field selections, and a cost bound --------------------

# CEL's standard functions and the Kubernetes libraries (strings, lists, regex, urls, quantity, ...)
_CEL_FUNCTIONS = {
    "has",
    "size",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "type",
    "duration",
    "timestamp",
    "dyn",
    "matches",
    "contains",
    "startsWith",
    "endsWith",
    "exists",
    "all",
    "exists_one",
    "map",
    "filter",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getFullYear",
    "getHours",
    "getMilliseconds",
    "getMinutes",
    "getMonth",
    "getSeconds",
    "charAt",
    "indexOf",
    "lastIndexOf",
    "lowerAscii",
    "upperAscii",
    "replace",
    "split",
    "substring",
    "trim",
    "join",
    "quote",
    "format",
    "isSorted",
    "sum",
    "min",
    "max",
    "find",
    "findAll",
    "url",
    "isURL",
    "getScheme",
    "getHost",
    "getHostname",
    "getPort",
    "getEscapedPath",
    "getQuery",
    "quantity",
    "isQuantity",
    "ip",
    "isIP",
    "cidr",
    "isCIDR",
    "reverse",
    "sets",
    "optional",
    "orValue",
    "value",
    "hasValue",
    "of",
    "none",
    "ofNonZeroValue",
    "semver",
    "isSemver",
    "compareTo",
    "isGreaterThan",
    "isLessThan",
    "add",
    "sub",
    "asInteger",
    "asApproximateFloat",
    "sign",
    "isInteger",
    "getMajor",
    "getMinor",
    "getPatch",
    "ext",
    "containsSubset",
    "intersects",
    "equivalent",
    "flatten",
    "distinct",
    "range",
    "slice",
    "first",
    "last",
    "sort",
    "sortBy",
    "lowerBound",
    "upperBound",
    "base64",
    "encode",
    "decode",
    "math",
    "greatest",
    "least",
}
PER_RULE_LIMIT = 10_000_000  # StaticEstimatedCostLimit: a rule's estimated worst-case cost
CRD_COST_LIMIT = 100_000_000  # StaticEstimatedCRDCostLimit
MAX_REQUEST_BYTES = 3 * 1024 * 1024  # what an unbounded string or list is estimated from
_COST_HINT = (
    "(try simplifying the rule, or adding maxItems, maxProperties, and maxLength "
    "where arrays, maps, and strings are declared)"
)


def cel_rule_errors(schema: Schema, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    total = [0.0]
    _walk_rules(schema, path, 1.0, errors, total, uncorrelatable="")
    if total[0] > CRD_COST_LIMIT:
        errors.append(
            forbidden(
                path,
                "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema "
                f"exceeds budget by factor of {total[0] / CRD_COST_LIMIT:.6g}x {_COST_HINT}",
            )
        )
    return errors


def _walk_rules(
    schema: Schema,
    path: str,
    cardinality: float,
    errors: list[FieldError],
    total: list[float],
    uncorrelatable: str,
) -> None:
    for i, entry in enumerate(schema.get("x-kubernetes-validations") or []):
        where = f"{path}.x-kubernetes-validations[{i}].rule"
        rule = entry.get("rule", "")
        problem = compile_problem(rule, schema)
        if problem:
            errors.append(invalid(where, entry, problem))
            continue
        if "oldSelf" in rule and uncorrelatable:
            errors.append(
                invalid(
                    where,
                    rule,
                    "oldSelf cannot be used on the uncorrelatable portion of the schema "
                    f"within {uncorrelatable}",
                )
            )
        cost = estimate_cost(rule, schema)
        if cost > PER_RULE_LIMIT:
            errors.append(
                forbidden(
                    where,
                    "estimated rule cost exceeds budget by factor of "
                    f"{cost / PER_RULE_LIMIT:.6g}x {_COST_HINT}",
                )
            )
        total[0] += cost * cardinality
        if entry.get("messageExpression") and (
            problem := compile_problem(entry["messageExpression"], schema)
        ):
            errors.append(invalid(f"{path}.x-kubernetes-validations[{i}].messageExpression", entry, problem))
    for name, sub in (schema.get("properties") or {}).items():
        _walk_rules(sub, f"{path}.properties[{name}]", cardinality, errors, total, uncorrelatable)
    if isinstance(schema.get("additionalProperties"), dict):
        n = schema.get("maxProperties", MAX_REQUEST_BYTES / 4)
        _walk_rules(
            schema["additionalProperties"],
            f"{path}.additionalProperties",
            cardinality * n,
            errors,
            total,
            uncorrelatable,
        )
    if isinstance(schema.get("items"), dict):
        n = schema.get("maxItems", MAX_REQUEST_BYTES / 2)
        correlatable = schema.get("x-kubernetes-list-type") in ("map", "set")
        _walk_rules(
            schema["items"],
            f"{path}.items",
            cardinality * n,
            errors,
            total,
            uncorrelatable or ("" if correlatable else path),
        )


def compile_problem(rule: str, schema: Schema) -> str:
    """Why `rule` does not compile against `schema` ("" when it does): a syntax error, an unknown
    function, or a field selection the schema does not have."""
    import celpy
    from celpy.celparser import CELParseError
    from lark import Token, Tree

    env = celpy.Environment()
    try:
        tree = env.compile(rule)
    except CELParseError as exc:
        return f"compilation failed: ERROR: <input>:1:1: Syntax error: {str(exc).splitlines()[0]}"
    for node in tree.iter_subtrees():
        if node.data in ("ident_arg", "member_dot_arg"):
            token = node.children[0] if node.data == "ident_arg" else node.children[1]
            if isinstance(token, Token) and str(token) not in _CEL_FUNCTIONS:
                return (
                    f"compilation failed: ERROR: <input>:1:1: undeclared reference to '{token}' "
                    "(in container '')"
                )
        if node.data == "member_dot":
            chain = _dot_chain(node)
            if chain and chain[0] in ("self", "oldSelf"):
                problem = _select(schema, chain[1:])
                if problem:
                    return f"compilation failed: ERROR: <input>:1:1: {problem}"
    del Tree
    return ""


def _dot_chain(node: Any) -> list[str]:
    """`self.a.b` as ["self", "a", "b"] (empty when the chain does not start at an identifier)."""
    from lark import Token, Tree

    names: list[str] = []
    while isinstance(node, Tree):
        if node.data == "member_dot":
            names.append(str(node.children[1]))
            node = node.children[0]
        elif node.data in ("member", "primary") and len(node.children) == 1:
            node = node.children[0]
        elif node.data == "ident":
            names.append(str(node.children[0]))
            break
        else:
            return []
    if isinstance(node, Token):
        names.append(str(node))
    return list(reversed(names))


def _select(schema: Schema, fields: list[str]) -> str:
    node = schema
    for name in fields:
        if node.get("x-kubernetes-preserve-unknown-fields") and "properties" not in node:
            return ""
        if node.get("type") == "object" and name in (node.get("properties") or {}):
            node = node["properties"][name]
        elif node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        elif node.get("type") == "object":
            return f"undefined field '{name}'"
        else:
            return f"type '{node.get('type', 'dyn')}' does not support field selection"
    return ""


def _max_string(schema: Schema) -> float:
    if "maxLength" in schema:
        return float(schema["maxLength"])
    if "enum" in schema:
        return float(max(len(str(v)) for v in schema["enum"]))
    return float(MAX_REQUEST_BYTES)


def estimate_cost(rule: str, schema: Schema) -> float:
    """A worst-case cost in the spirit of the API server's estimator: string functions cost in
    proportion to the longest string they may read (0.1 per character, as CEL's string traversal
    factor), regular expressions to string length × pattern length, list macros to the size of
    the list. Unbounded strings and lists are as long as the largest request could make them."""
    length = _max_string(schema) if schema.get("type") == "string" else 0.0
    cost = 1.0 + rule.count("&&") + rule.count("||") + rule.count("==")
    for function in ("contains", "startsWith", "endsWith", "size", "lowerAscii", "upperAscii", "split"):
        cost += rule.count(f".{function}(") * (0.1 * length + 1)
    for match in re.finditer(r"\.matches\('((?:[^'\\]|\\.)*)'\)", rule):
        cost += 0.1 * length * max(1, len(match.group(1))) / 4 + 1
    if schema.get("type") == "array":
        items = schema.get("maxItems", MAX_REQUEST_BYTES / 2)
        for macro in ("all(", "exists(", "exists_one(", "map(", "filter("):
            cost += rule.count(f".{macro}") * items * 2
    return cost
