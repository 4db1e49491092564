"""Decoding of `application/vnd.kubernetes.protobuf` request bodies, for the kinds kubectl's typed
commands send that way (`kubectl create namespace|secret|configmap|serviceaccount`,
`kubectl auth can-i`): Namespace, Secret, ConfigMap, ServiceAccount, SelfSubjectAccessReview.

The body is the 4 bytes `k8s\\x00`, then a runtime.Unknown message {typeMeta = 1 {apiVersion = 1,
kind = 2}, raw = 2, contentEncoding = 3, contentType = 4} whose `raw` is the object's message. The
field numbers below are those of the generated.proto files of k8s.io/apimachinery (runtime,
meta/v1) and k8s.io/api (core/v1, authorization/v1). The result is the object as kubectl would
have sent it in JSON: zero values of plain fields are left out (Go's `omitempty`; gogo-protobuf
writes them all), fields that are pointers in Go keep a zero (`automountServiceAccountToken:
false`), bytes are base64, times RFC 3339 in whole seconds (metav1.Time drops the nanoseconds).

Responses stay JSON (kubectl accepts JSON). Other kinds are refused with 415 (`Unsupported`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PREFIX = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


class Unsupported(Exception):
    """A kind this decoder has no message description for."""


@dataclass(frozen=True)
class F:
    name: str
    kind: str  # string, bytes, raw, int, bool, message, time, fieldsv1, map_string, map_bytes
    message: dict[int, F] | None = None
    repeated: bool = False
    pointer: bool = False  # a Go pointer: a zero value on the wire is kept


def _s(name: str) -> F:
    return F(name, "string")


# k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto
OWNER_REFERENCE = {
    5: _s("apiVersion"),
    1: _s("kind"),
    3: _s("name"),
    4: _s("uid"),
    6: F("controller", "bool", pointer=True),
    7: F("blockOwnerDeletion", "bool", pointer=True),
}
MANAGED_FIELDS_ENTRY = {
    1: _s("manager"),
    2: _s("operation"),
    3: _s("apiVersion"),
    4: F("time", "time", pointer=True),
    6: _s("fieldsType"),
    7: F("fieldsV1", "fieldsv1", pointer=True),
    8: _s("subresource"),
}
OBJECT_META = {
    1: _s("name"),
    2: _s("generateName"),
    3: _s("namespace"),
    4: _s("selfLink"),
    5: _s("uid"),
    6: _s("resourceVersion"),
    7: F("generation", "int"),
    8: F("creationTimestamp", "time"),
    9: F("deletionTimestamp", "time", pointer=True),
    10: F("deletionGracePeriodSeconds", "int", pointer=True),
    11: F("labels", "map_string"),
    12: F("annotations", "map_string"),
    13: F("ownerReferences", "message", OWNER_REFERENCE, repeated=True),
    14: F("finalizers", "string", repeated=True),
    17: F("managedFields", "message", MANAGED_FIELDS_ENTRY, repeated=True),
}
SELECTOR_REQUIREMENT = {1: _s("key"), 2: _s("operator"), 3: F("values", "string", repeated=True)}

# k8s.io/api/core/v1/generated.proto
NAMESPACE_CONDITION = {
    1: _s("type"),
    2: _s("status"),
    4: F("lastTransitionTime", "time"),
    5: _s("reason"),
    6: _s("message"),
}
NAMESPACE = {
    1: F("metadata", "message", OBJECT_META),
    2: F("spec", "message", {1: F("finalizers", "string", repeated=True)}),
    3: F(
        "status",
        "message",
        {1: _s("phase"), 2: F("conditions", "message", NAMESPACE_CONDITION, repeated=True)},
    ),
}
SECRET = {
    1: F("metadata", "message", OBJECT_META),
    5: F("immutable", "bool", pointer=True),
    2: F("data", "map_bytes"),
    4: F("stringData", "map_string"),
    3: _s("type"),
}
CONFIG_MAP = {
    1: F("metadata", "message", OBJECT_META),
    4: F("immutable", "bool", pointer=True),
    2: F("data", "map_string"),
    3: F("binaryData", "map_bytes"),
}
OBJECT_REFERENCE = {
    1: _s("kind"),
    2: _s("namespace"),
    3: _s("name"),
    4: _s("uid"),
    5: _s("apiVersion"),
    6: _s("resourceVersion"),
    7: _s("fieldPath"),
}
SERVICE_ACCOUNT = {
    1: F("metadata", "message", OBJECT_META),
    2: F("secrets", "message", OBJECT_REFERENCE, repeated=True),
    3: F("imagePullSecrets", "message", {1: _s("name")}, repeated=True),
    4: F("automountServiceAccountToken", "bool", pointer=True),
}

# k8s.io/api/authorization/v1/generated.proto
SELECTOR_ATTRIBUTES = {
    1: _s("rawSelector"),
    2: F("requirements", "message", SELECTOR_REQUIREMENT, repeated=True),
}
RESOURCE_ATTRIBUTES = {
    1: _s("namespace"),
    2: _s("verb"),
    3: _s("group"),
    4: _s("version"),
    5: _s("resource"),
    6: _s("subresource"),
    7: _s("name"),
    8: F("fieldSelector", "message", SELECTOR_ATTRIBUTES, pointer=True),
    9: F("labelSelector", "message", SELECTOR_ATTRIBUTES, pointer=True),
}
SELF_SUBJECT_ACCESS_REVIEW = {
    1: F("metadata", "message", OBJECT_META),
    2: F(
        "spec",
        "message",
        {
            1: F("resourceAttributes", "message", RESOURCE_ATTRIBUTES, pointer=True),
            2: F("nonResourceAttributes", "message", {1: _s("path"), 2: _s("verb")}, pointer=True),
        },
    ),
    3: F(
        "status",
        "message",
        {1: F("allowed", "bool"), 4: F("denied", "bool"), 2: _s("reason"), 3: _s("evaluationError")},
    ),
}

KINDS: dict[tuple[str, str], dict[int, F]] = {
    ("v1", "Namespace"): NAMESPACE,
    ("v1", "Secret"): SECRET,
    ("v1", "ConfigMap"): CONFIG_MAP,
    ("v1", "ServiceAccount"): SERVICE_ACCOUNT,
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): SELF_SUBJECT_ACCESS_REVIEW,
}
UNKNOWN = {  # k8s.io/apimachinery/pkg/runtime/generated.proto
    1: F("typeMeta", "message", {1: _s("apiVersion"), 2: _s("kind")}),
    2: F("raw", "raw"),
    3: _s("contentEncoding"),
    4: _s("contentType"),
}


# --- the wire format -----------------------------------------------------------------------------------


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data):
            raise ValueError("unexpected end of a varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
        if shift >= 70:
            raise ValueError("a varint is too long")


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) in order: varints as ints, length-delimited as bytes."""
    out: list[tuple[int, int, Any]] = []
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        value: int | bytes
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 1:
            value, at = data[at : at + 8], at + 8
        elif wire == 2:
            length, at = _varint(data, at)
            value, at = data[at : at + length], at + length
        elif wire == 5:
            value, at = data[at : at + 4], at + 4
        else:
            raise ValueError(f"wire type {wire} is not supported")
        if at > len(data):
            raise ValueError("unexpected end of a field")
        out.append((number, wire, value))
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _time(data: bytes) -> str | None:
    if not data:  # a zero metav1.Time marshals to nothing
        return None
    seconds = next((_signed(v) for n, w, v in _fields(data) if n == 1 and w == 0), 0)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scalar(field: F, wire: int, value: Any) -> Any:
    expected = 0 if field.kind in ("int", "bool") else 2
    if wire != expected:
        raise ValueError(f"{field.name}: wire type {wire}, expected {expected}")
    if field.kind == "int":
        return _signed(value)
    if field.kind == "bool":
        return value != 0
    if field.kind == "string":
        return value.decode("utf-8")
    if field.kind == "bytes":  # []byte in JSON
        return base64.b64encode(value).decode()
    if field.kind == "raw":
        return bytes(value)
    if field.kind == "time":
        return _time(value)
    if field.kind == "fieldsv1":
        raw = next((v for n, w, v in _fields(value) if n == 1 and w == 2), b"")
        return json.loads(raw) if raw else {}
    if field.kind == "message":
        assert field.message is not None
        return decode_message(value, field.message)
    raise ValueError(f"{field.name}: unknown kind {field.kind}")


def _map_entry(field: F, value: bytes) -> tuple[str, str]:
    key, item = "", ""
    for number, wire, raw in _fields(value):
        if wire != 2:
            raise ValueError(f"{field.name}: a map entry's field {number} has wire type {wire}")
        if number == 1:
            key = raw.decode("utf-8")
        elif number == 2:
            item = base64.b64encode(raw).decode() if field.kind == "map_bytes" else raw.decode("utf-8")
    return key, item


def _zero(value: Any) -> bool:
    return value in (None, "", 0, [], {})  # False == 0


def decode_message(data: bytes, message: dict[int, F]) -> dict[str, Any]:
    """One message as JSON would carry it; fields the description does not know are skipped, as
    protobuf decoders do."""
    out: dict[str, Any] = {}
    for number, wire, value in _fields(data):
        field = message.get(number)
        if field is None:
            continue
        if field.kind in ("map_string", "map_bytes"):
            if wire != 2:
                raise ValueError(f"{field.name}: wire type {wire}, expected 2")
            key, item = _map_entry(field, value)
            out.setdefault(field.name, {})[key] = item
        elif field.repeated:
            out.setdefault(field.name, []).append(_scalar(field, wire, value))
        else:
            out[field.name] = _scalar(field, wire, value)
    for field in message.values():  # omitempty: what JSON would not have carried
        if field.name not in out:
            continue
        value = out[field.name]
        if value is None or (not field.pointer and field.kind != "message" and _zero(value)):
            del out[field.name]
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf request body as the JSON object it stands for. ValueError when it is not one;
    Unsupported for a kind not described here."""
    if len(body) < len(PREFIX) or body[: len(PREFIX)] != PREFIX:
        raise ValueError(
            f"provided data does not appear to be a protobuf message, expected prefix {list(PREFIX)}"
        )
    if len(body) == len(PREFIX):
        raise ValueError("empty body")
    envelope = decode_message(body[len(PREFIX) :], UNKNOWN)
    if envelope.get("contentEncoding"):
        raise ValueError(f"content encoding {envelope['contentEncoding']} is not supported")
    type_meta = envelope.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    message = KINDS.get((api_version, kind))
    if message is None:
        raise Unsupported(f"{kind} ({api_version or 'no apiVersion'})")
    obj = decode_message(envelope.get("raw", b""), message)
    return {"apiVersion": api_version, "kind": kind, **obj}


SUPPORTED = sorted(kind for _, kind in KINDS)
