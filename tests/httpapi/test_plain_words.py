"""Refusals in plain words (issue 70): no regular expression and no phrase of pydantic's reaches a
person, whatever they get wrong. A sweep: every parameter and body field the HTTP API's OpenAPI
document states is sent a value of the wrong type, too long, or off its pattern, and every 400
names the field and says what it must be; every pattern the document states has words; `contentgen
validate`, `contentgen run` and `contentgen collections` say the same of manifests, settings and a
collection's name ("Waves & Lighthouses")."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from contentgen.api.validation import PATTERN_HINTS, in_words
from contentgen.catalog import Catalog
from contentgen.cli.main import main
from contentgen.httpapi import ApiSettings, create_app
from contentgen.pipeline.settings import PipelineSettings
from contentgen.store import LocalStore
from tests.conftest import EXAMPLES, ROOT
from tests.harness.creators import HeldCreator
from tests.httpapi.conftest import auth, fill

# What pydantic says in its own words, and what a regular expression looks like
PYDANTIC = (
    "should match pattern",
    "Input should",
    "Field required",
    "Value error",
    "String should",
    "Extra inputs",
    "type=",
    "pydantic",
    "unable to parse",
    "For further information",
)
REGEX = re.compile(r"\^\(|\[\^|\\s|\\d|\{0,|\(\?:|\]\*|\]\+|\$\)|\[0-9A-Za-z\]|\[a-z0-9\]")
WRONG = "Waves & Lighthouses / \x7f"


def leaks(text: str, patterns: set[str]) -> list[str]:
    found = [p for p in PYDANTIC if p.lower() in text.lower()]
    found += [m.group(0) for m in REGEX.finditer(text)]
    found += [p for p in patterns if p in text]
    return found


def document_patterns(document: Any) -> dict[str, str]:
    """Every `pattern` the document states, with where (a rule's JSON Schema, request_rules.py, is
    under an allOf: its refusal is the rule's message, not the pattern's)."""
    found: dict[str, str] = {}

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    found.setdefault(value, where)
                else:
                    walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk(document, "")
    return found


@pytest.fixture
def app(catalog: Catalog, store: LocalStore, settings: ApiSettings, tmp_path: Path) -> Any:
    fill(catalog, store)
    creator = HeldCreator(
        catalog, lambda: store, offline=True, settings=PipelineSettings(work_dir=tmp_path / "w")
    )
    yield create_app(settings, catalog=catalog, store=lambda: store, creator=creator)
    creator.close()


def test_every_pattern_the_document_and_the_crds_state_is_said_in_words(app: Any) -> None:
    patterns = document_patterns(app.openapi())
    for crd in sorted((ROOT / "crds").glob("*.yaml")):
        patterns.update(
            {p: f"{crd.name}{w}" for p, w in document_patterns(yaml.safe_load(crd.read_text())).items()}
        )
    unsaid = {p: w for p, w in patterns.items() if p not in PATTERN_HINTS and "/allOf" not in w}
    assert unsaid == {}, "give these words with api.validation.said:\n" + json.dumps(unsaid, indent=1)


def _bad_values(schema: dict[str, Any]) -> list[Any]:
    """Values a parameter or field of `schema` refuses, one for each way of being wrong."""
    schema = next((s for s in schema.get("anyOf", []) if s.get("type") != "null"), schema)
    kind = schema.get("type")
    values: list[Any] = []
    if kind in ("integer", "number"):
        values += ["abc", 1.5 if kind == "integer" else "1e999x"]
        if "maximum" in schema:
            values.append(schema["maximum"] + 1)
        if "minimum" in schema:
            values.append(schema["minimum"] - 1)
    elif kind == "string" or "enum" in schema:
        values += [12345, WRONG]
        if "maxLength" in schema:
            values.append("a" * (schema["maxLength"] + 1))
    elif kind == "boolean":
        values += ["maybe"]
    elif kind == "array":
        values += ["not a list"]
    elif kind == "object" or "$ref" in schema:
        values += ["not an object"]
    return values


def _requests(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], Any]]:
    """(method, path, query, json body) with one bad value each, for every operation."""
    made: list[tuple[str, str, dict[str, Any], Any]] = []
    schemas = document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            params = operation.get("parameters", [])
            path_values = {p["name"]: "a-lora-1" for p in params if p["in"] == "path"}
            for param in params:
                for bad in _bad_values(param.get("schema", {})):
                    where = dict(path_values)
                    query: dict[str, Any] = {}
                    if param["in"] == "path":
                        where[param["name"]] = quote(str(bad), safe="")
                    elif param["in"] == "query":
                        query[param["name"]] = str(bad)
                    else:
                        continue
                    made.append((method, path.format(**where), query, None))
            body = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
            if body is None:
                continue
            url = path.format(**path_values)
            made += [(method, url, {}, b) for b in ([], "text", {"zzz": 1})]
            ref = body["schema"].get("$ref", "")
            fields = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}) if ref else {}
            for name, schema in fields.items():
                made += [(method, url, {}, {name: bad}) for bad in _bad_values(schema)]
    return made


def test_no_refusal_shows_a_pattern_or_a_phrase_of_pydantic(app: Any) -> None:
    document = app.openapi()
    patterns = set(document_patterns(document))
    requests = _requests(document)
    assert len(requests) > 300  # the sweep reaches every operation's parameters and fields

    async def sweep() -> list[str]:
        found: list[str] = []
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            for method, url, query, body in requests:
                answer = await http.request(
                    method.upper(),
                    url,
                    params=query,
                    headers=auth("alice"),
                    **({"json": body} if body is not None else {}),
                )
                if answer.status_code != 400:
                    continue
                error = answer.json()["error"]
                said = [error["message"], *(f["message"] for f in error.get("fields") or [])]
                found += [
                    f"{method} {url} {query} {body!r}: {s} ({bad})"
                    for s in said
                    if (bad := leaks(s, patterns))
                ]
        return found

    assert asyncio.run(sweep()) == []


def test_a_collection_named_with_an_ampersand_is_refused_in_words(app: Any) -> None:
    async def create() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            return await http.post(
                "/api/collections", json={"name": "Waves & Lighthouses"}, headers=auth("alice")
            )

    answer = asyncio.run(create())
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["fields"] == [
        {
            "field": "name",
            "message": "\"Waves & Lighthouses\" is not valid: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit",
        }
    ]
    assert leaks(error["message"], set()) == []


def test_pydantic_errors_of_every_kind_are_worded() -> None:
    """in_words covers the kinds of error the API's models and parameters can raise; one it has no
    wording for still loses pydantic's phrases."""
    for err in (
        {
            "type": "int_parsing",
            "loc": ("query", "limit"),
            "msg": "Input should be a valid integer",
            "input": "x",
        },
        {"type": "bool_parsing", "loc": ("x",), "msg": "Input should be a valid boolean", "input": "maybe"},
        {
            "type": "json_invalid",
            "loc": ("body", 1),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": "x"},
        },
        {"type": "missing", "loc": ("body", "to"), "msg": "Field required", "input": {}},
        {"type": "some_new_kind", "loc": ("x",), "msg": "Input should be shiny", "input": 1},
    ):
        assert leaks(in_words(err), set()) == [], err


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    said = capsys.readouterr()
    return code, said.out + said.err


def test_the_command_line_says_it_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    example = yaml.safe_load((EXAMPLES / "loratraining.yaml").read_text())
    spec = example["spec"]
    wrong = {
        **spec,
        "owner": "Demo User",
        "triggerWord": "dm avatar!",
        "source": {"url": "ftp://x"},
        "tags": "demo",
        "training": {**spec.get("training", {}), "steps": "many"},
        "queueName": "Queue_1",
    }
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**example, "spec": wrong}))
    code, said = _cli(["validate", "bad.yaml"], capsys)
    assert code == 1 and "spec.owner" in said and "spec.queueName" in said, said
    assert leaks(said, set(PATTERN_HINTS)) == [], said
    code, said = _cli(["run", "--offline", "bad.yaml"], capsys)
    assert code == 1 and leaks(said, set(PATTERN_HINTS)) == [], said

    monkeypatch.setenv("CONTENTGEN_MAX_DOWNLOAD_BYTES", "lots")
    code, said = _cli(["run", "--offline", str(EXAMPLES / "transcription.yaml")], capsys)
    assert code == 1, said
    assert said.strip().splitlines() == [
        'contentgen run: CONTENTGEN_MAX_DOWNLOAD_BYTES: must be an integer, got "lots"'
    ], said
    monkeypatch.delenv("CONTENTGEN_MAX_DOWNLOAD_BYTES")

    code, said = _cli(["collections", "create", "Waves & Lighthouses", "--owner", "demo-user"], capsys)
    assert code == 1, said
    assert said.strip() == (
        "contentgen collections: 'Waves & Lighthouses' cannot name a collection: use letters, digits, "
        "'.', '_' and '-', starting with a letter or digit, at most 100 characters "
        "(e.g. waves-and-lighthouses)"
    )
