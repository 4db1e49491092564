"""A spec's rules in JSON Schema (request_rules.py), said once for each value of the fields most of
them turn on, so that a client's JSON Schema engine can work out what a spec may hold.

The rules are a conjunction of alternatives: "training.memoryPlan is auto, or the provider is
cluster"; "the base model is not z-image-base, or the provider is cluster or offline". An engine
that reasons about a schema (schemathesis's, through jsonschema_rs's canonical form) multiplies
such a conjunction out; two dozen rules of two to five alternatives each pass its budget, and it
gives the whole schema up. Most alternatives read one field of a few values (provider,
training.baseModel, a video's model), so the rules are said case by case: "the field is one of
these values, and what the rules still ask where it is" for each group of values the rules treat
alike. Each alternative that reads only the fields a case fixes is decided there (true: its rule
holds; false: left out), so a case keeps only what is still open. The same requests pass: the
cases cover every value each field may take, its absence included, and no value is in two, so
they are said as oneOf. With anyOf the engine multiplied the cases by the rules beside them: nine
video models with three rules of two alternatives beside them passed its budget again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from contentgen.api.rules import JsonDict

FieldPath = tuple[str, ...]
Fixed = tuple[tuple[FieldPath, "Witness"], ...]

ANNOTATIONS = frozenset({"title", "description", "default", "examples"})
COMBINATORS = frozenset({"anyOf", "allOf", "oneOf", "not"})
VALUES = frozenset({"const", "enum", "type"})
_COMPONENTS = "#/components/schemas/"


@dataclass(frozen=True)
class Witness:
    """One case of a field: its value (`depth` None), or the field left out, or an object on its
    path left out (`depth`: how many of the path's objects are present)."""

    value: Any = None
    depth: int | None = None


@dataclass(frozen=True)
class Reads:
    """The field paths a schema reads: `values` by their values (const, enum, type), `shapes` by
    whether they are present or objects; `exact`: every keyword it uses is one `_holds` evaluates."""

    values: frozenset[FieldPath]
    shapes: frozenset[FieldPath]
    exact: bool


def by_cases(node: JsonDict, rules: list[JsonDict], components: dict[str, JsonDict]) -> list[JsonDict]:
    """`rules` (the node's conjunction) said case by case of the fields they turn on."""
    said = _split(rules, (), _Fields(node, components))
    return [{"not": {}}] if said is None else said  # None: no spec passes


class _Fields:
    """The node's fields that may tell cases apart: those of a few values (an enum, a boolean)."""

    def __init__(self, node: JsonDict, components: dict[str, JsonDict]) -> None:
        self.node, self.components = node, components
        self.known: dict[FieldPath, list[Witness] | None] = {}

    def witnesses(self, path: FieldPath) -> list[Witness] | None:
        if path not in self.known:
            self.known[path] = self._witnesses(path)
        return self.known[path]

    def _resolve(self, schema: Any) -> JsonDict | None:
        if not isinstance(schema, dict):
            return None
        ref = schema.get("$ref")
        if ref is None:
            return schema
        return self.components.get(ref.removeprefix(_COMPONENTS)) if ref.startswith(_COMPONENTS) else None

    def _witnesses(self, path: FieldPath) -> list[Witness] | None:
        schema: JsonDict | None = self.node
        found: list[Witness] = []
        for depth, part in enumerate(path):
            if schema is None or part not in schema.get("properties", {}):
                return None
            if part not in schema.get("required", []):
                found.append(Witness(depth=depth))
            schema = self._resolve(schema["properties"][part])
            if depth < len(path) - 1 and (schema is None or schema.get("type") != "object"):
                return None  # an object on the path that may be something else (null, say)
        values = self._values(schema)
        return None if values is None else [*found, *(Witness(value=v) for v in values)]

    def _values(self, schema: JsonDict | None) -> list[Any] | None:
        if schema is None:
            return None
        if "enum" in schema or "const" in schema:
            return list(schema.get("enum", [schema.get("const")]))
        if schema.get("type") == "boolean":
            return [True, False]
        alternatives = [self._resolve(s) for s in schema.get("anyOf", [])]
        if alternatives and {"type": "null"} in alternatives:
            held = [self._values(s) for s in alternatives if s != {"type": "null"}]
            if held and all(h is not None for h in held):
                return [*(v for h in held if h is not None for v in h), None]
        return None


def _split(rules: list[JsonDict], fixed: Fixed, fields: _Fields) -> list[JsonDict] | None:
    """`rules` where the `fixed` fields hold their witnesses: None where no spec passes them."""
    reduced: list[JsonDict] = []
    for rule in rules:
        said = _reduce(rule, fixed)
        if said is False:
            return None
        if said is not True:
            reduced.append(said)
    field = _most_read(reduced, fixed, fields)
    if field is None:
        return reduced
    reading = [r for r in reduced if field in _reads(r, ()).values]
    rest = _split([r for r in reduced if field not in _reads(r, ()).values], fixed, fields)
    witnesses = fields.witnesses(field) or []
    cases: dict[str, tuple[list[Witness], list[JsonDict]]] = {}
    for witness in witnesses:
        held = _split(reading, (*fixed, (field, witness)), fields)
        if held is not None:
            cases.setdefault(json.dumps(held, sort_keys=True), ([], held))[0].append(witness)
    if not cases or rest is None:
        return None
    if len(cases) == 1 and len(next(iter(cases.values()))[0]) == len(witnesses):
        return [*rest, *next(iter(cases.values()))[1]]  # the field decides nothing after all
    said = [_all([_case(field, held, witnesses), *kept]) for held, kept in cases.values()]
    # one case holds for any spec (each says which of the field's values it is for, and no value is
    # in two): oneOf, which an engine reasons about case by case, where it would multiply anyOf's
    # alternatives by every rule beside them
    return [*rest, said[0] if len(said) == 1 else {"oneOf": said}]


def _most_read(rules: list[JsonDict], fixed: Fixed, fields: _Fields) -> FieldPath | None:
    """The field that the most rules read by value (two at least), of a few values, whose first
    object no fixed field shares (so a case's witnesses make one document)."""
    taken = {path[0] for path, _ in fixed}
    counts: dict[FieldPath, int] = {}
    for rule in rules:
        for path in _reads(rule, ()).values:
            counts[path] = counts.get(path, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return next(
        (p for p, n in ranked if n >= 2 and p[0] not in taken and fields.witnesses(p) is not None), None
    )


def _case(path: FieldPath, witnesses: list[Witness], every: list[Witness]) -> JsonDict:
    """The field holds one of `witnesses` (of `every` it may hold)."""
    values = [w.value for w in witnesses if w.depth is None]
    depths = [w.depth for w in witnesses if w.depth is not None]
    leaf: JsonDict = {"enum": values} if len(values) != 1 else {"const": values[0]}
    if values and len(depths) == sum(w.depth is not None for w in every):
        return _within(path, leaf, required=False)  # left out anywhere, or one of the values
    said = [_within(path, leaf, required=True)] if values else []
    said += [_within(path[:d], {"not": {"required": [path[d]]}}, required=True) for d in depths]
    return said[0] if len(said) == 1 else {"anyOf": said}


def _within(path: FieldPath, leaf: JsonDict, *, required: bool) -> JsonDict:
    """`leaf` of the field at `path`: each object on it present (`required`) or passing if left out."""
    for part in reversed(path):
        leaf = {"required": [part], "properties": {part: leaf}} if required else {"properties": {part: leaf}}
    return leaf


def _all(items: list[JsonDict]) -> JsonDict:
    return items[0] if len(items) == 1 else {"allOf": items}


def _reduce(schema: Any, fixed: Fixed) -> Any:
    """`schema` with what the `fixed` fields decide decided: True, False, or what is still open."""
    if isinstance(schema, bool) or not fixed:
        return schema
    keys = set(schema) - ANNOTATIONS
    if keys == {"not"}:
        inner = _reduce(schema["not"], fixed)
        return (not inner) if isinstance(inner, bool) else {"not": inner}
    if keys in ({"anyOf"}, {"allOf"}):
        keyword = next(iter(keys))
        return _joined(keyword, [_reduce(s, fixed) for s in schema[keyword]])
    parts = list(_parts(schema)) if keys <= {"required", "properties"} else [schema]
    if len(parts) > 1:
        return _joined("allOf", [_reduce(p, fixed) for p in parts])
    reads = _reads(schema, ())
    paths = [path for path, _ in fixed]
    if reads.exact and reads.values <= set(paths) and all(_on(s, paths) for s in reads.shapes):
        return _holds(schema, _document(fixed))
    return schema


def _joined(keyword: str, items: list[Any]) -> Any:
    """anyOf or allOf of `items`, each True, False or a schema, said as short as it goes."""
    decides, passes = (True, False) if keyword == "anyOf" else (False, True)
    if decides in items:
        return decides
    open_ = [i for i in items if i is not passes]
    if not open_:
        return passes
    return open_[0] if len(open_) == 1 else {keyword: open_}


def _parts(schema: JsonDict) -> Iterator[JsonDict]:
    """An object's `required` and `properties`, one field at a time (the same conjunction)."""
    required, properties = schema.get("required", []), schema.get("properties", {})
    for name in dict.fromkeys([*required, *properties]):
        part: JsonDict = {"required": [name]} if name in required else {}
        if name in properties:
            part["properties"] = {name: properties[name]}
        yield part


def _on(path: FieldPath, fixed: list[FieldPath]) -> bool:
    return any(f[: len(path)] == path for f in fixed)


def _reads(schema: Any, at: FieldPath) -> Reads:
    if isinstance(schema, bool):
        return Reads(frozenset(), frozenset(), True)
    values: set[FieldPath] = set()
    shapes: set[FieldPath] = set()
    exact = True
    for key, value in schema.items():
        if key in ANNOTATIONS:
            continue
        inner: list[Reads] = []
        if key in COMBINATORS:
            inner = [_reads(s, at) for s in (value if isinstance(value, list) else [value])]
        elif key == "properties":
            inner = [_reads(s, (*at, name)) for name, s in value.items()]
            shapes.update((*at, name) for name in value)
        elif key == "required":
            shapes.update((*at, name) for name in value)
        elif key == "type" and isinstance(value, str) and value in ("object", "array"):
            shapes.add(at)
        else:
            values.add(at)
            exact = exact and key in VALUES
        for read in inner:
            values |= read.values
            shapes |= read.shapes
            exact = exact and read.exact
    return Reads(frozenset(values), frozenset(shapes), exact)


def _document(fixed: Fixed) -> JsonDict:
    """The smallest spec in which each fixed field holds its witness."""
    document: JsonDict = {}
    for path, witness in fixed:
        objects = path[:-1] if witness.depth is None else path[: witness.depth]
        node = document
        for part in objects:
            node = node.setdefault(part, {})
        if witness.depth is None:
            node[path[-1]] = witness.value
    return document


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


def _same(a: Any, b: Any) -> bool:
    """JSON's equality: a boolean is no number."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _holds(schema: Any, value: Any) -> bool:
    """`value` passes `schema`, of the keywords `_reads` calls exact."""
    if isinstance(schema, bool):
        return schema
    checks = {
        "const": lambda s: _same(value, s),
        "enum": lambda s: any(_same(value, v) for v in s),
        "type": lambda s: any(_TYPES[t](value) for t in ([s] if isinstance(s, str) else s)),
        "not": lambda s: not _holds(s, value),
        "anyOf": lambda s: any(_holds(x, value) for x in s),
        "allOf": lambda s: all(_holds(x, value) for x in s),
        "oneOf": lambda s: sum(_holds(x, value) for x in s) == 1,
        "required": lambda s: not isinstance(value, dict) or all(n in value for n in s),
        "properties": lambda s: (
            not isinstance(value, dict) or all(_holds(x, value[n]) for n, x in s.items() if n in value)
        ),
    }
    return all(checks[key](s) for key, s in schema.items() if key not in ANNOTATIONS)
