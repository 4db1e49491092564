"""The Notification resource's spec, as `contentgen validate` and admission check it."""

from __future__ import annotations

import yaml

from contentgen.api.manifests import Document
from contentgen.api.notification import NotificationSpec
from contentgen.api.validation import validate_document


def _doc(spec: dict[str, object]) -> Document:
    content = {"apiVersion": "contentgen.io/v1alpha1", "kind": "Notification", "metadata": {"name": "n"}}
    return Document(source="t.yaml", index=1, content={**content, "spec": spec})


def test_a_notification_is_validated_not_refused_as_an_unknown_kind() -> None:
    ok = validate_document(
        _doc({"url": "https://hooks.example.com/in", "secretRef": {"name": "contentgen-webhook"}})
    )
    assert not ok.problems and ok.note == "a Notification: valid"
    bad = validate_document(
        _doc({"url": "https://u:p@hooks.example.com", "secretRef": {"name": "s", "keys": ["a", "b", "c"]},
              "events": ["done"]})
    )  # fmt: skip
    assert sorted(p.path for p in bad.problems) == ["spec.events[0]", "spec.secretRef.keys", "spec.url"]


def test_defaults_sign_with_the_current_and_the_previous_key() -> None:
    spec = NotificationSpec.model_validate(yaml.safe_load("url: http://h/x\nsecretRef: {name: s}"))
    assert spec.secret_ref.keys == ["secret", "previous"] and spec.events == [] and not spec.paused
