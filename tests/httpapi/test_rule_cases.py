"""The creates' rules said case by case (httpapi/rule_cases.py) pass the same specs as the rules said
one after another: on random specs whose every field a rule reads takes a value its own schema
allows (the values the rules name, their bounds, each field's enum, or left out). And the document
they make is one schemathesis's engine reasons about (before, two dozen LoraTraining rules made it
give POST /api/resources' body up as an UnsupportedSchema)."""

from __future__ import annotations

import random
from typing import Any

import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contentgen.httpapi import request_rules
from tests.httpapi.conftest import MakeApp

SPECS_PER_KIND = 1500
FieldPath = tuple[str, ...]
GENERIC = [None, "x", "", 0, 1, 2, 4, 8, 50, 1.0, 2.5, True, False]


def _read(schema: Any, at: FieldPath, found: dict[FieldPath, list[Any]]) -> None:
    """Each field path a rule reads, with the values it names (and a step past each bound)."""
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key in ("anyOf", "allOf", "oneOf"):
            for inner in value:
                _read(inner, at, found)
        elif key == "not":
            _read(value, at, found)
        elif key == "properties":
            for name, inner in value.items():
                found.setdefault((*at, name), [])
                _read(inner, (*at, name), found)
        elif key == "required":
            for name in value:
                found.setdefault((*at, name), [])
        elif key == "const":
            found.setdefault(at, []).append(value)
        elif key == "enum":
            found.setdefault(at, []).extend(value)
        elif key in ("maximum", "minimum"):
            found.setdefault(at, []).extend([value - 1, value, value + 1])
        elif key == "maxItems":
            found.setdefault(at, []).extend([[], [{}], [{}, {}]])


class _Spec:
    """A kind's spec component in the document: its fields' schemas, through references."""

    def __init__(self, document: dict[str, Any], name: str) -> None:
        self.components = document["components"]["schemas"]
        self.root = {"components": document["components"]}
        self.node = self.components[name]

    def field(self, path: FieldPath) -> dict[str, Any] | None:
        schema: dict[str, Any] | None = self.node
        for part in path:
            if schema is None:
                return None
            schema = schema.get("properties", {}).get(part)
            while schema is not None and "$ref" in schema:
                schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def allows(self, path: FieldPath, value: Any) -> bool:
        schema = self.field(path)
        return schema is not None and jsonschema.Draft202012Validator({**schema, **self.root}).is_valid(value)


def _pools(spec: _Spec, rules: list[Any]) -> dict[FieldPath, list[Any]]:
    """For each leaf field the rules read: the values it may hold that a rule names, or any of
    GENERIC, or its enum; an object's presence alone for an object field."""
    found: dict[FieldPath, list[Any]] = {}
    for rule in rules:
        _read(rule, (), found)
    pools: dict[FieldPath, list[Any]] = {}
    for path, named in found.items():
        if any(other[: len(path)] == path and other != path for other in found):
            continue  # an object on another field's path: made present by that field
        schema = spec.field(path) or {}
        if schema.get("type") == "object":
            pools[path] = [{}]
            continue
        candidates = [*named, *schema.get("enum", []), *GENERIC]
        pools[path] = [v for v in candidates if spec.allows(path, v)]
    return {path: values for path, values in pools.items() if values}


def _random_spec(pools: dict[FieldPath, list[Any]], rng: random.Random) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for path, values in sorted(pools.items()):
        if rng.random() < 0.4:
            if len(path) > 1 and rng.random() < 0.5:
                node = spec
                for part in path[:-1]:
                    node = node.setdefault(part, {})  # its object present, the field left out
            continue
        node = spec
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = rng.choice(values)
    return spec


def test_the_cases_pass_the_same_specs_as_the_rules(
    rules_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spec's rules are the same on a laptop and in a cluster (only a URL's rule, of one field,
    takes local files on a laptop)."""
    cased = rules_app(local=False).openapi()
    monkeypatch.setattr(request_rules, "by_cases", lambda node, rules, components: rules)
    plain = rules_app(local=False).openapi()
    rng = random.Random(78)
    compared = 0
    for name, node in plain["components"]["schemas"].items():
        if not name.endswith("RequestSpec") or "allOf" not in node:
            continue
        spec, rules = _Spec(plain, name), node["allOf"]
        as_rules = jsonschema.Draft202012Validator({"allOf": rules})
        as_cases = jsonschema.Draft202012Validator({"allOf": cased["components"]["schemas"][name]["allOf"]})
        pools = _pools(spec, rules)
        passed = 0
        for _ in range(SPECS_PER_KIND):
            value = _random_spec(pools, rng)
            said = as_rules.is_valid(value)
            assert as_cases.is_valid(value) == said, f"{name}: {value} (the rules say {said})"
            passed += said
        # both sides of the rules met: some specs pass them, some do not
        assert 0 < passed < SPECS_PER_KIND, (name, passed)
        compared += 1
    assert compared >= 4  # LoraTraining, ImageGeneration, VideoGeneration, Transcription: rules across fields


@pytest.mark.parametrize("local", [False, True], ids=["cluster", "laptop"])
def test_schemathesis_reasons_about_every_create_body(local: bool, rules_app: MakeApp) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", rules_app(local=local))
    strategy = schema["/api/resources"]["POST"].as_strategy()
    drawn: list[Any] = []

    @settings(max_examples=3, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draw(data: st.DataObject) -> None:
        drawn.append(data.draw(strategy))

    draw()  # an UnsupportedSchema where the engine gives the body's schema up
    assert drawn
