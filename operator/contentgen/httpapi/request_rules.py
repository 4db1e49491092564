"""The API models' CEL rules (api/base.py: admission's `x-kubernetes-validations`, and their Python
twins) said in JSON Schema, for the create requests' part of the OpenAPI document: a request the
document allows is one the server takes. What JSON Schema cannot say (a rule comparing two fields'
values) keeps its own error code, `invalid_combination`, documented with the routes' 400.

`RULES` is keyed by the rule's CEL text, so a rule that changes or is added without its JSON
Schema here shows in `untranslated` (tests/httpapi/test_request_rules.py fails on it).
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from typing import Any

from contentgen.api import KINDS
from contentgen.api.base_models import WAN_FRAMES
from contentgen.api.common import LORA_URL_RULE, SOURCE_URL_RULE
from contentgen.api.regex import SPACES
from contentgen.api.rules import GENERATED, JsonDict

from .rule_cases import by_cases

INVALID = "invalid"
INVALID_COMBINATION = "invalid_combination"

# A local run's allowance (api/common.py is_local_path): a plain path or a file:// URL.
_LOCAL_PATH: JsonDict = {
    "anyOf": [{"pattern": "^file://"}, {"not": {"pattern": "^[a-zA-Z][a-zA-Z0-9+.-]*://"}}]
}


def _matches(rule: str) -> str:
    """The pattern of a `regex_rule` (`self.matches('^(?:…)$')`), as a JSON Schema pattern that
    every engine reads as Python does."""
    found = re.fullmatch(r"self\.matches\('(.*)'\)", rule)
    if found is None:
        raise ValueError(f"not a regex rule: {rule}")
    pattern = found.group(1).replace("\\'", "'").replace("\\\\", "\\")
    # `\s` appears in a class ([^\s/?#@]), `\S` on its own; the server checks with Python's re.
    return pattern.replace("\\S", f"[^{SPACES}]").replace("\\s", SPACES)


def url_schema(rule: str, *, local: bool) -> JsonDict:
    """A URL rule's pattern; with a local run's allowance, a local path too."""
    pattern = {"pattern": _matches(rule)}
    return {"anyOf": [pattern, _LOCAL_PATH]} if local else pattern


def rules(*, local: bool) -> dict[str, JsonDict | None]:
    """Each CEL rule of a create's spec as JSON Schema (applied to the node that carries it); None
    where JSON Schema cannot say it."""
    return {
        SOURCE_URL_RULE.rule: url_schema(SOURCE_URL_RULE.rule, local=local),
        LORA_URL_RULE.rule: url_schema(LORA_URL_RULE.rule, local=local),
        # A transition rule: it constrains updates, never a create.
        "self == oldSelf": {},
        # LoraTraining dataset.captionTemplate
        "self.contains('{trigger}')": {"pattern": r"\{trigger\}"},
        # LoraTraining dataset.clips.frames: Wan's frame rule, every count it allows within its bounds
        f"(self - 1) % {WAN_FRAMES.step} == 0": {
            "enum": list(range(WAN_FRAMES.step + 1, WAN_FRAMES.max_frames + 1, WAN_FRAMES.step))
        },
        # The specs' rules, each declared once as terms (api/rules.py, which registers each in
        # GENERATED) with its JSON Schema (None where two values are compared, multiplied or divided)
        **{rule: generated.json_schema for rule, generated in GENERATED.items()},
    }


def _nodes(node: Any) -> Iterator[JsonDict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def validations(schemas: list[JsonDict]) -> Iterator[JsonDict]:
    """Every `x-kubernetes-validations` entry ({rule, message}) in `schemas`."""
    for schema in schemas:
        for node in _nodes(schema):
            yield from node.get("x-kubernetes-validations") or []


def untranslated(schemas: list[JsonDict], *, local: bool = False) -> list[str]:
    """The CEL rules in `schemas` that `rules` does not know (it must say each, or say None)."""
    known = rules(local=local)
    return sorted({entry["rule"] for entry in validations(schemas) if entry["rule"] not in known})


@functools.cache
def spec_schemas() -> tuple[JsonDict, ...]:
    """The JSON Schema of each kind's spec (with its rules' `x-kubernetes-validations`)."""
    return tuple(kind.spec.model_json_schema(by_alias=True) for kind in KINDS.values())


@functools.cache
def beyond_schema() -> frozenset[str]:
    """The messages of the specs' rules that JSON Schema cannot say."""
    known = rules(local=False)
    entries = validations(list(spec_schemas()))
    return frozenset(e["message"] for e in entries if e["rule"] in known and known[e["rule"]] is None)


def apply(components: dict[str, JsonDict], *, local: bool) -> None:
    """Add each node's rules, as JSON Schema, to the node (in place): `allOf` keeps them apart from
    what the node says already, said case by case of the fields they turn on (rule_cases.py).
    `components`: the document's schemas, by name (a rule's field may be another's)."""
    known = rules(local=local)
    for schema in components.values():
        for node in list(_nodes(schema)):
            said = [known.get(e["rule"]) for e in node.get("x-kubernetes-validations") or []]
            extra = [copy.deepcopy(s) for s in said if s]
            if extra:
                node["allOf"] = by_cases(node, [*node.get("allOf", []), *extra], components)


def code_of(messages: list[str]) -> str:
    """A create's refusal's code: `invalid_combination` when every problem is a rule JSON Schema
    cannot say (the document allowed the request), else `invalid` (the document says why)."""
    beyond = beyond_schema()
    return INVALID_COMBINATION if messages and all(m in beyond for m in messages) else INVALID
