"""The OpenAPI document states exactly what the create routes accept: it is a valid OpenAPI
document, and POST /api/resources' body schema (one schema per kind, from the API models) takes
every example manifest as it is and refuses what the server refuses (an unknown kind, an unknown
spec field, a bad value). What the routes answer is checked against it in every httpapi test
(documented.py)."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from openapi_spec_validator import validate

from contentgen.api import KINDS
from contentgen.httpapi import ApiSettings, create_app
from tests.conftest import EXAMPLES


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tokens = tmp_path_factory.mktemp("openapi") / "tokens.yaml"
    tokens.write_text("tokens: [{owner: alice, token: alice-token-0123456789}]")
    app = create_app(ApiSettings(catalog="unused://", api_tokens_file=tokens), catalog=object(), creator=None)  # type: ignore[arg-type]
    return app.openapi()


def request_schema(document: dict[str, Any]) -> jsonschema.Validator:
    body = document["paths"]["/api/resources"]["post"]["requestBody"]["content"]["application/json"]
    schema = {**body["schema"], "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    for path in ("/api/resources", "/api/lora/train", "/api/images/generate", "/api/transcribe"):
        responses = document["paths"][path]["post"]["responses"]
        assert set(responses) == {"200", "201", "400", "401", "403", "404", "409", "502", "503"}, path


def test_the_examples_are_valid_create_requests(document: dict[str, Any]) -> None:
    validator = request_schema(document)
    manifests = [d for p in sorted(EXAMPLES.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    assert [m["kind"] for m in manifests if m["kind"] not in KINDS] == ["Notification"]  # not created here
    manifests = [m for m in manifests if m["kind"] in KINDS]
    assert {m["kind"] for m in manifests} == {
        "LoraTraining",
        "ImageGeneration",
        "Transcription",
        "LoraEvaluation",
        "VideoGeneration",
    }
    for manifest in manifests:
        body = {**manifest, "metadata": {"name": manifest["metadata"]["name"]}}
        assert list(validator.iter_errors(body)) == [], manifest["metadata"]["name"]
        without_owner = {**body, "spec": {k: v for k, v in body["spec"].items() if k != "owner"}}
        assert list(validator.iter_errors(without_owner)) == []  # the caller's owner by default


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "Notification", "spec": {"prompt": "p"}},
        {"kind": "ImageGeneration", "spec": {"prompt": "p", "videoUrl": "x"}},
        {"kind": "ImageGeneration", "spec": {"prompt": "p", "numImages": 0}},
        {"kind": "ImageGeneration", "spec": {"prompt": "p"}, "status": {}},
        {"kind": "Transcription", "spec": {}},
    ],
)
def test_what_the_server_refuses_the_document_refuses(document: dict[str, Any], body: dict[str, Any]) -> None:
    assert list(request_schema(document).iter_errors(body)) != []
