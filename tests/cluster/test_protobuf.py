"""The protobuf request-body decoder on messages built here field by field (the field numbers of
k8s.io/api and k8s.io/apimachinery's generated.proto); the real kubectl's bodies are decoded in
test_kubectl.py."""

from __future__ import annotations

import struct

import pytest

from contentgen.cluster import protobuf


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers as 64-bit two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def entry(key: str, value: str | bytes) -> bytes:
    return field(1, key) + field(2, value)


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return protobuf.PREFIX + field(1, field(1, api_version) + field(2, kind)) + field(2, raw)


def meta(name: str, *extra: bytes) -> bytes:
    # gogo-protobuf writes every plain field, empty or not: generateName "", generation 0, a zero
    # creationTimestamp (an empty Time)
    return field(1, name) + field(2, "") + field(3, "team") + field(7, 0) + field(8, b"") + b"".join(extra)


def test_zero_values_are_left_out_but_pointers_keep_theirs() -> None:
    account = field(1, meta("robot")) + field(4, 0) + field(3, field(1, "pull"))
    decoded = protobuf.decode(envelope("v1", "ServiceAccount", account))
    assert decoded == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "robot", "namespace": "team"},
        "imagePullSecrets": [{"name": "pull"}],
        "automountServiceAccountToken": False,
    }


def test_metadata_maps_times_and_owner_references() -> None:
    owner = field(5, "batch/v1") + field(1, "Job") + field(3, "j") + field(4, "u-1") + field(6, 1)
    created = field(1, 1_767_225_600) + field(2, 999)  # nanoseconds are dropped, as metav1.Time does
    metadata = meta(
        "c",
        field(11, entry("app", "x")),
        field(11, entry("tier", "")),
        field(12, entry("note", "é")),
        field(13, owner),
        field(14, "a.io/x"),
        field(14, "b.io/y"),
        field(9, created),
        field(10, 30),
    )
    config = field(1, metadata) + field(2, entry("k", "v")) + field(3, entry("bin", b"\x00\xff"))
    decoded = protobuf.decode(envelope("v1", "ConfigMap", config))
    assert decoded["metadata"] == {
        "name": "c",
        "namespace": "team",
        "labels": {"app": "x", "tier": ""},
        "annotations": {"note": "é"},
        "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "u-1", "controller": True}
        ],
        "finalizers": ["a.io/x", "b.io/y"],
        "deletionTimestamp": "2026-01-01T00:00:00Z",
        "deletionGracePeriodSeconds": 30,
    }
    assert decoded["data"] == {"k": "v"} and decoded["binaryData"] == {"bin": "AP8="}


def test_fields_it_does_not_know_are_skipped() -> None:
    unknown = (
        field(99, 5)
        + varint(98 << 3 | 1)
        + struct.pack("<d", 1.5)
        + varint(97 << 3 | 5)
        + struct.pack("<f", 2.5)
        + field(96, "later")
    )
    secret = (
        field(1, meta("s"))
        + unknown
        + field(2, entry("k", b"v"))
        + field(3, "Opaque")
        + field(4, entry("s", "t"))
    )
    decoded = protobuf.decode(envelope("v1", "Secret", secret))
    assert decoded == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "team"},
        "data": {"k": "dg=="},
        "type": "Opaque",
        "stringData": {"s": "t"},
    }


def test_an_access_review() -> None:
    attributes = field(1, "team") + field(2, "create") + field(3, "batch") + field(4, "") + field(5, "jobs")
    review = field(1, b"") + field(2, field(1, attributes)) + field(3, field(1, 0))
    decoded = protobuf.decode(envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", review))
    assert decoded["spec"] == {
        "resourceAttributes": {"namespace": "team", "verb": "create", "group": "batch", "resource": "jobs"}
    }
    assert decoded["metadata"] == {} and decoded["status"] == {}


def test_a_namespace_with_a_negative_number_and_conditions() -> None:
    condition = field(1, "NamespaceDeletionContentFailure") + field(2, "False") + field(4, field(1, 0))
    namespace = (
        field(1, meta("n", field(7, -1)))
        + field(2, field(1, "kubernetes"))
        + field(3, field(1, "Active") + field(2, condition))
    )
    decoded = protobuf.decode(envelope("v1", "Namespace", namespace))
    assert decoded["metadata"]["generation"] == -1
    assert decoded["spec"] == {"finalizers": ["kubernetes"]}
    assert decoded["status"] == {
        "phase": "Active",
        "conditions": [
            {
                "type": "NamespaceDeletionContentFailure",
                "status": "False",
                "lastTransitionTime": "1970-01-01T00:00:00Z",
            }
        ],
    }


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"kind":"Namespace"}', "does not appear to be a protobuf message"),
        (protobuf.PREFIX, "empty body"),
        (envelope("v1", "Namespace", field(1, b"\x0a\x05ab")), "unexpected end"),
        (envelope("v1", "Namespace", field(1, field(1, 5))), "name: wire type 0, expected 2"),
        (
            envelope("v1", "Namespace", b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
            "varint is too long",
        ),
        (envelope("v1", "Namespace", varint(1 << 3 | 3)), "wire type 3 is not supported"),
        (
            protobuf.PREFIX + field(1, field(1, "v1") + field(2, "Namespace")) + field(3, "gzip"),
            "content encoding gzip",
        ),
    ],
)
def test_what_is_not_a_message_is_refused(body: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        protobuf.decode(body)


def test_a_kind_it_cannot_describe_is_unsupported() -> None:
    with pytest.raises(protobuf.Unsupported, match="Deployment"):
        protobuf.decode(envelope("apps/v1", "Deployment", field(1, meta("d"))))
    with pytest.raises(protobuf.Unsupported):  # same kind, other version
        protobuf.decode(envelope("v2", "Namespace", b""))
