"""Object metadata as the API server validates it (apimachinery's ValidateObjectMeta): names,
labels, annotations, finalizers and owner references."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any

from .structural import FieldError, forbidden, invalid, required, too_long

_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# The characters of generateName's random suffix (utilrand.String): no vowels, no confusables.
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
TOTAL_ANNOTATION_BYTES = 256 * 1024


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def drop_empty(meta: dict[str, Any]) -> None:
    """ObjectMeta's maps and lists are `omitempty`, and every write passes metadata through the
    typed ObjectMeta (custom resources too: apiextensions' objectmeta.Coerce), so an empty or
    null one is not stored (`finalizers: []` comes back as no `finalizers` at all). managedFields
    are left to the field manager: an empty list in a request means "reset"."""
    for key in ("labels", "annotations", "ownerReferences", "finalizers"):
        if key in meta and meta[key] in (None, [], {}):
            del meta[key]


def generate_name(prefix: str) -> str:
    return prefix[:58] + "".join(secrets.choice(_ALPHANUMS) for _ in range(5))


def dns1123_subdomain(value: str) -> str:
    if len(value) > 253:
        return "must be no more than 253 characters"
    if not _DNS1123_SUBDOMAIN.match(value):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return ""


def dns1123_label(value: str) -> str:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _DNS1123_LABEL.match(value):
        return (
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
            "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    return ""


def path_segment(value: str) -> str:
    """RBAC objects and a few others only need names that are valid path segments."""
    if value in (".", ".."):
        return f"may not be '{value}'"
    for bad in ("/", "%"):
        if bad in value:
            return f"may not contain '{bad}'"
    return ""


def qualified_name(value: str) -> str:
    """A label key, finalizer or annotation key: [prefix/]name."""
    prefix, _, name = value.rpartition("/")
    if "/" in value and (not prefix or dns1123_subdomain(prefix)):
        return "prefix part " + (dns1123_subdomain(prefix) or "must be non-empty")
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _QUALIFIED_NAME.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
            "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    return ""


def label_value(value: str) -> str:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _LABEL_VALUE.match(value):
        return (
            "a valid label must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'MyValue',  or 'my_value',  or '12345', "
            "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        )
    return ""


def validate_meta(
    meta: dict[str, Any], *, namespaced: bool, name_rule: str = "subdomain"
) -> list[FieldError]:
    errors: list[FieldError] = []
    name = meta.get("name", "")
    if not name:
        errors.append(required("metadata.name", "name or generateName is required"))
    else:
        check = {"subdomain": dns1123_subdomain, "label": dns1123_label, "segment": path_segment}[name_rule]
        if why := check(name):
            errors.append(invalid("metadata.name", name, why))
    if namespaced and not meta.get("namespace"):
        errors.append(required("metadata.namespace"))
    for key, value in (meta.get("labels") or {}).items():
        if why := qualified_name(key):
            errors.append(invalid("metadata.labels", key, why))
        if not isinstance(value, str):
            errors.append(invalid(f"metadata.labels[{key}]", value, "must be a string"))
        elif why := label_value(value):
            errors.append(invalid("metadata.labels", value, why))
    annotations = meta.get("annotations") or {}
    for key in annotations:
        if why := qualified_name(key.lower()):
            errors.append(invalid("metadata.annotations", key, why))
    size = sum(len(k) + len(str(v)) for k, v in annotations.items())
    if size > TOTAL_ANNOTATION_BYTES:
        errors.append(too_long("metadata.annotations", TOTAL_ANNOTATION_BYTES))
    for i, finalizer in enumerate(meta.get("finalizers") or []):
        if why := qualified_name(finalizer):
            errors.append(invalid(f"metadata.finalizers[{i}]", finalizer, why))
    controllers = 0
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        where = f"metadata.ownerReferences[{i}]"
        for field in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(field):
                errors.append(invalid(f"{where}.{field}", ref.get(field, ""), f"{field} must not be empty"))
        controllers += 1 if ref.get("controller") else 0
    if controllers > 1:
        errors.append(
            invalid(
                "metadata.ownerReferences",
                meta["ownerReferences"],
                "Only one reference can have Controller set to true.",
            )
        )
    return errors


def new_finalizers_on_deleting(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    """No finalizer may be added to an object that is being deleted."""
    if not old.get("deletionTimestamp"):
        return []
    added = [f for f in new.get("finalizers") or [] if f not in (old.get("finalizers") or [])]
    if not added:
        return []
    listed = ", ".join(f'"{f}"' for f in added)
    return [
        forbidden(
            "metadata.finalizers",
            "no new finalizers can be added if the object is being deleted, "
            f"found new finalizers []string{{{listed}}}",
        )
    ]
