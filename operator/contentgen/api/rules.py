"""A rule over a spec's fields, declared once as typed terms and made into its three forms: the CEL
rule the API server enforces at admission (`x-kubernetes-validations`), its Python check
(`contentgen validate`, the models' validation) and its JSON Schema (the HTTP API's document,
httpapi/request_rules.py), so the three cannot drift apart.

A rule holds where any of its terms does, in order (CEL's `||`, and Python's `any`, stop at the
first: a term after `Absent(f)` may read `f`). A term's JSON Schema is the spec as sent, its
defaults left out, so a field's default says what its absence means; None where JSON Schema
cannot say the term (two values compared, multiplied or divided, a frame count on a grid).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic.alias_generators import to_snake

from .base import CelRule

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class SpecField:
    """A spec's field as the rules read it: its wire name (dotted for a field of a nested object,
    `training.memoryPlan`, which `AtDefault` reads; the other terms read the spec's own fields), its
    JSON type, its default (None: none)."""

    name: str
    json_type: str
    default: Any = None

    @property
    def path(self) -> list[str]:
        return self.name.split(".")

    def value(self, spec: Any) -> Any:
        """The field's value; None where it, or the object holding it, is left out."""
        for part in self.path:
            if spec is None:
                return None
            spec = getattr(spec, to_snake(part))
        return spec

    def within(self, schema: JsonDict) -> JsonDict:
        """`schema` said of the object holding the field (an object left out passes)."""
        for part in reversed(self.path[:-1]):
            schema = {"properties": {part: schema}}
        return schema

    def has(self) -> JsonDict:
        """`has(self.field)` as pydantic reads it: present and not null."""
        return {"required": [self.name], "properties": {self.name: {"type": self.json_type}}}

    def cel_literal(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return f"'{value}'"
        return repr(float(value)) if self.json_type == "number" else repr(value)

    def cel_equals(self, value: Any) -> str:
        """CEL's `self.field == value`; a field that is true is said as itself."""
        return f"self.{self.name}" if value is True else f"self.{self.name} == {self.cel_literal(value)}"


class Term(ABC):
    """One alternative of a rule."""

    # CEL that needs no parentheses after `!` or beside `&&`
    atomic = False
    # CEL that is an `&&` chain: no parentheses beside `&&`, and (as the rules have always been
    # written) in parentheses beside `||`
    conjunction = False

    @abstractmethod
    def cel(self) -> str: ...

    @abstractmethod
    def check(self, spec: Any) -> bool: ...

    @abstractmethod
    def json_schema(self) -> list[JsonDict] | None:
        """The term's alternatives in JSON Schema (any of them holds); None: it cannot say it."""


@dataclass(frozen=True)
class Has(Term):
    field: SpecField
    atomic = True

    def cel(self) -> str:
        return f"has(self.{self.field.name})"

    def check(self, spec: Any) -> bool:
        return self.field.value(spec) is not None

    def json_schema(self) -> list[JsonDict]:
        return [self.field.has()]


@dataclass(frozen=True)
class Not(Term):
    term: Term

    def cel(self) -> str:
        inner = self.term.cel()
        return f"!{inner}" if self.term.atomic else f"!({inner})"

    def check(self, spec: Any) -> bool:
        return not self.term.check(spec)

    def json_schema(self) -> list[JsonDict] | None:
        said = self.term.json_schema()
        if said is None:
            return None
        return [{"not": said[0] if len(said) == 1 else {"anyOf": said}}]


@dataclass(frozen=True)
class Absent(Term):
    field: SpecField
    atomic = True

    def cel(self) -> str:
        return f"!has(self.{self.field.name})"

    def check(self, spec: Any) -> bool:
        return self.field.value(spec) is None

    def json_schema(self) -> list[JsonDict]:
        return [{"not": self.field.has()}]


@dataclass(frozen=True)
class Unset(Term):
    """The field is left out, or an object holding it is (`Absent` of a field of a nested object,
    `training.stopWhen`: each object on its path asked in CEL, as admission needs)."""

    field: SpecField

    def cel(self) -> str:
        path = self.field.path
        return " || ".join(f"!has(self.{'.'.join(path[: n + 1])})" for n in range(len(path)))

    def check(self, spec: Any) -> bool:
        return self.field.value(spec) is None

    def json_schema(self) -> list[JsonDict]:
        return [self.field.within({"not": {"required": [self.field.path[-1]]}})]


@dataclass(frozen=True)
class Either(Term):
    """Any of `terms` (one alternative in JSON Schema, so `Not` can take it whole)."""

    terms: tuple[Term, ...]

    def cel(self) -> str:
        return " || ".join(f"({t.cel()})" if t.conjunction else t.cel() for t in self.terms)

    def check(self, spec: Any) -> bool:
        return any(t.check(spec) for t in self.terms)

    def json_schema(self) -> list[JsonDict] | None:
        return _joined("anyOf", self.terms)


@dataclass(frozen=True)
class Both(Term):
    """All of `terms`; fields each set to a value (`Is`) are one object in JSON Schema."""

    terms: tuple[Term, ...]
    conjunction = True

    def cel(self) -> str:
        # `&&` binds tighter than the `||` inside a term
        return " && ".join(t.cel() if t.atomic or t.conjunction else f"({t.cel()})" for t in self.terms)

    def check(self, spec: Any) -> bool:
        return all(t.check(spec) for t in self.terms)

    def json_schema(self) -> list[JsonDict] | None:
        values = _values(self.terms, Is)
        return [_set_to(values)] if values else _joined("allOf", self.terms)


@dataclass(frozen=True)
class Is(Term):
    """The field is set to `value`, which is not its default: `has` guards it in CEL, as admission
    sees a defaulted field as set."""

    field: SpecField
    value: Any
    conjunction = True

    def __post_init__(self) -> None:
        if self.value == self.field.default:
            raise ValueError(f"{self.field.name}: its default {self.value!r} is not a value it is set to")

    def cel(self) -> str:
        return f"has(self.{self.field.name}) && {self.field.cel_equals(self.value)}"

    def check(self, spec: Any) -> bool:
        return bool(self.field.value(spec) == self.value)

    def json_schema(self) -> list[JsonDict]:
        return [_set_to({self.field: self.value})]


@dataclass(frozen=True)
class NotDefault(Term):
    """The field is set to a value other than its default: `Differs` from the default in meaning,
    said in JSON Schema as a present field's `not const`."""

    field: SpecField

    def cel(self) -> str:
        return f"self.{self.field.name} != {self.field.cel_literal(self.field.default)}"

    def check(self, spec: Any) -> bool:
        return bool(self.field.value(spec) != self.field.default)

    def json_schema(self) -> list[JsonDict]:
        name = self.field.name
        return [{"required": [name], "properties": {name: {"not": {"const": self.field.default}}}}]


@dataclass(frozen=True)
class AtDefault(Term):
    """The field (or the object holding it) is left out, or it is at its default."""

    field: SpecField

    def cel(self) -> str:
        path = self.field.path
        left_out = [f"!has(self.{'.'.join(path[: n + 1])})" for n in range(len(path))]
        return " || ".join([*left_out, self.field.cel_equals(self.field.default)])

    def check(self, spec: Any) -> bool:
        value = self.field.value(spec)
        return value is None or bool(value == self.field.default)

    def json_schema(self) -> list[JsonDict]:
        return [self.field.within({"properties": {self.field.path[-1]: {"const": self.field.default}}})]


@dataclass(frozen=True)
class AtMost(Term):
    """The field is at most `high` (read after `Absent`, or of a field with a default)."""

    field: SpecField
    high: int

    def cel(self) -> str:
        return f"self.{self.field.name} <= {self.field.cel_literal(self.high)}"

    def check(self, spec: Any) -> bool:
        return bool(self.field.value(spec) <= self.high)

    def json_schema(self) -> list[JsonDict]:
        return [{"properties": {self.field.name: {"maximum": self.high}}}]


@dataclass(frozen=True)
class NotAbove(Term):
    """The field is at most `other` (its default where it is left out; read after `Absent`)."""

    field: SpecField
    other: SpecField

    def cel(self) -> str:
        other = self.other.name
        default = self.other.cel_literal(self.other.default)
        return f"self.{self.field.name} <= (has(self.{other}) ? self.{other} : {default})"

    def check(self, spec: Any) -> bool:
        other = self.other.value(spec)
        return bool(self.field.value(spec) <= (self.other.default if other is None else other))

    def json_schema(self) -> None:
        return None  # two values compared


@dataclass(frozen=True)
class Distinct(Term):
    """The list (left out: empty) holds no value twice."""

    field: SpecField

    def cel(self) -> str:
        name = self.field.name
        return f"!has(self.{name}) || self.{name}.all(s, self.{name}.filter(t, t == s).size() == 1)"

    def check(self, spec: Any) -> bool:
        values = self.field.value(spec) or []
        return len(set(values)) == len(values)

    def json_schema(self) -> list[JsonDict]:
        return [{"properties": {self.field.name: {"uniqueItems": True}}}]


@dataclass(frozen=True)
class Written(Term):
    """A term no other term says (values divided, say), written in CEL and as its Python check;
    JSON Schema cannot say it. Read after `Absent`."""

    cel_text: str
    holds: Callable[[Any], bool]

    def cel(self) -> str:
        return self.cel_text

    def check(self, spec: Any) -> bool:
        return self.holds(spec)

    def json_schema(self) -> None:
        return None


@dataclass(frozen=True)
class OneOf(Term):
    """Exactly one of the two fields is set."""

    first: SpecField
    second: SpecField

    def cel(self) -> str:
        return f"has(self.{self.first.name}) != has(self.{self.second.name})"

    def check(self, spec: Any) -> bool:
        return (self.first.value(spec) is None) != (self.second.value(spec) is None)

    def json_schema(self) -> list[JsonDict]:
        return [{"oneOf": [self.first.has(), self.second.has()]}]


@dataclass(frozen=True)
class Differs(Term):
    """The field is not `value` (its default where it is left out)."""

    field: SpecField
    value: Any

    def cel(self) -> str:
        return f"self.{self.field.name} != {self.field.cel_literal(self.value)}"

    def check(self, spec: Any) -> bool:
        return bool(self.field.value(spec) != self.value)

    def json_schema(self) -> list[JsonDict]:
        name = self.field.name
        named: JsonDict = {"required": [name], "properties": {name: {"const": self.value}}}
        left_out = {"anyOf": [{"not": {"required": [name]}}, named]}
        return [{"not": left_out if self.value == self.field.default else named}]


@dataclass(frozen=True)
class Equals(Term):
    """The field is one of `values` (its default where it is left out), said as CEL's `==`."""

    field: SpecField
    values: tuple[str, ...]

    def cel(self) -> str:
        return " || ".join(f"self.{self.field.name} == {self.field.cel_literal(v)}" for v in self.values)

    def check(self, spec: Any) -> bool:
        return self.field.value(spec) in self.values

    def json_schema(self) -> list[JsonDict]:
        name = self.field.name
        named: JsonDict = {"required": [name], "properties": {name: _one_of(self.values)}}
        return [named, *([{"not": {"required": [name]}}] if self.field.default in self.values else [])]


@dataclass(frozen=True)
class In(Term):
    """The field's value is one of `values` (CEL's `in`; read after `Absent`)."""

    field: SpecField
    values: tuple[Any, ...]

    def cel(self) -> str:
        listed = ", ".join(self.field.cel_literal(v) for v in self.values)
        return f"self.{self.field.name} in [{listed}]"

    def check(self, spec: Any) -> bool:
        return self.field.value(spec) in self.values

    def json_schema(self) -> list[JsonDict]:
        return [self.field.within({"properties": {self.field.path[-1]: {"enum": list(self.values)}}})]


@dataclass(frozen=True)
class ValueIs(Term):
    """The field's value is `value` (CEL's `==`; read after `Absent`)."""

    field: SpecField
    value: Any

    def cel(self) -> str:
        return self.field.cel_equals(self.value)

    def check(self, spec: Any) -> bool:
        return bool(self.field.value(spec) == self.value)

    def json_schema(self) -> list[JsonDict]:
        return [{"properties": {self.field.name: {"const": self.value}}}]


@dataclass(frozen=True)
class Between(Term):
    """low ≤ the field ≤ high, and on the grid step·k + 1 where step > 1 (read after `Absent`)."""

    field: SpecField
    low: int
    high: int
    step: int = 1

    def cel(self) -> str:
        name = self.field.name
        grid = f" && (self.{name} - 1) % {self.step} == 0" if self.step > 1 else ""
        return f"(self.{name} >= {self.low} && self.{name} <= {self.high}{grid})"

    def check(self, spec: Any) -> bool:
        value = self.field.value(spec)
        return bool(self.low <= value <= self.high and (value - 1) % self.step == 0)

    def json_schema(self) -> list[JsonDict] | None:
        if self.step > 1:
            return None  # JSON Schema's multipleOf cannot shift by one
        return [{"properties": {self.field.name: {"minimum": self.low, "maximum": self.high}}}]


@dataclass(frozen=True)
class ProductBetween(Term):
    """low ≤ the field times `by` (`by_default` where `by` is left out) ≤ high (read after `Absent`)."""

    field: SpecField
    by: SpecField
    by_default: float
    low: int
    high: int

    def cel(self) -> str:
        by = f"(has(self.{self.by.name}) ? double(self.{self.by.name}) : {float(self.by_default)})"
        product = f"self.{self.field.name} * {by}"
        return f"({product} >= {float(self.low)} && {product} <= {float(self.high)})"

    def check(self, spec: Any) -> bool:
        by = self.by.value(spec)
        product = self.field.value(spec) * float(by if by is not None else self.by_default)
        return bool(self.low <= product <= self.high)

    def json_schema(self) -> None:
        return None  # two values multiplied


@dataclass(frozen=True)
class Empty(Term):
    """The list is left out or empty."""

    field: SpecField

    def cel(self) -> str:
        return f"!has(self.{self.field.name}) || size(self.{self.field.name}) == 0"

    def check(self, spec: Any) -> bool:
        return not self.field.value(spec)

    def json_schema(self) -> list[JsonDict]:
        return [{"properties": {self.field.name: {"maxItems": 0}}}]


@dataclass(frozen=True)
class FewItems(Term):
    """The list (left out: empty) holds at most `high` items."""

    field: SpecField
    high: int

    def cel(self) -> str:
        return f"!has(self.{self.field.name}) || size(self.{self.field.name}) <= {self.high}"

    def check(self, spec: Any) -> bool:
        return len(self.field.value(spec) or ()) <= self.high

    def json_schema(self) -> list[JsonDict]:
        return [{"properties": {self.field.name: {"maxItems": self.high}}}]


@dataclass(frozen=True)
class NoneHas(Term):
    """No entry of the list (left out: none) has the entry field `key`."""

    field: SpecField
    key: str

    def cel(self) -> str:
        name = self.field.name
        return f"!has(self.{name}) || self.{name}.all(l, !has(l.{self.key}))"

    def check(self, spec: Any) -> bool:
        attribute = to_snake(self.key)
        return all(getattr(entry, attribute) is None for entry in self.field.value(spec))

    def json_schema(self) -> list[JsonDict]:
        return [{"properties": {self.field.name: {"items": {"not": {"required": [self.key]}}}}}]


def _one_of(values: tuple[Any, ...]) -> JsonDict:
    return {"const": values[0]} if len(values) == 1 else {"enum": list(values)}


def _set_to(values: dict[SpecField, Any]) -> JsonDict:
    """Each field present, at its value (a field of a nested object: that object present too)."""
    schema: JsonDict = {"required": [], "properties": {}}
    for f, v in values.items():
        node = schema
        for part in f.path[:-1]:
            if part not in node["required"]:
                node["required"].append(part)
            node = node["properties"].setdefault(part, {"required": [], "properties": {}})
        node["required"].append(f.path[-1])
        node["properties"][f.path[-1]] = {"const": v}
    return schema


def _values(terms: tuple[Term, ...], kind: type[Is | Differs]) -> dict[SpecField, Any] | None:
    """Each term's field and value, where every term is a `kind` of a value other than its field's
    default, each of another field; else None."""
    values = {t.field: t.value for t in terms if isinstance(t, kind) and t.value != t.field.default}
    return values if len(values) == len(terms) > 1 else None


def _joined(keyword: str, terms: tuple[Term, ...]) -> list[JsonDict] | None:
    said = _alternatives(terms)
    return None if said is None else [{keyword: said}]


def _alternatives(terms: tuple[Term, ...]) -> list[JsonDict] | None:
    said = [t.json_schema() for t in terms]
    return None if any(s is None for s in said) else [a for s in said if s is not None for a in s]


@dataclass(frozen=True)
class Rule:
    """A spec holds where any of `terms` does; else `message`, at `field` (None: at the object)."""

    field: SpecField | None
    message: str
    terms: tuple[Term, ...]

    def cel_rule(self) -> CelRule:
        holds = Either(self.terms)
        field_path = None if self.field is None else f".{self.field.name}"
        return CelRule(rule=holds.cel(), message=self.message, check=holds.check, field_path=field_path)

    def json_schema(self) -> JsonDict | None:
        # fields that differ from values (none a default), any of them: not all of them at theirs
        differ = _values(self.terms, Differs)
        if differ:
            return {"not": _set_to(differ)}
        said = _alternatives(self.terms)
        if said is None:
            return None
        return said[0] if len(said) == 1 else {"anyOf": said}


@dataclass(frozen=True)
class ForModel:
    """Rules for one model (`model` is `name`): every other model passes them."""

    model: SpecField
    name: str

    def takes(self, field: SpecField, message: str, holds: Term | None = None) -> Rule:
        """The model takes `field` where `holds` does (None: no value of it): the field left out, or
        another model, or `holds`."""
        return Rule(
            field, message, (Absent(field), Differs(self.model, self.name), *([holds] if holds else []))
        )

    def needs(self, field: SpecField, message: str, holds: Term) -> Rule:
        """The model needs `holds`, whatever the spec leaves out: the error names `field`."""
        return Rule(field, message, (holds, Differs(self.model, self.name)))


@dataclass(frozen=True)
class GeneratedRule:
    """A rule's CEL with its Python check (`cel`), and its JSON Schema (None: JSON Schema cannot
    say it)."""

    cel: CelRule
    json_schema: JsonDict | None


# Every rule generated, by its CEL text: what the HTTP API's document states of the specs
# (httpapi/request_rules.py), without a list there that a new rule would have to be added to.
GENERATED: dict[str, GeneratedRule] = {}


def generate(rule: Rule) -> GeneratedRule:
    """`rule`'s three forms, registered in GENERATED (a rule declared twice must say the same)."""
    generated = GeneratedRule(rule.cel_rule(), rule.json_schema())
    known = GENERATED.setdefault(generated.cel.rule, generated)
    if known.json_schema != generated.json_schema:
        raise ValueError(f"the rule {generated.cel.rule!r} is declared twice with two JSON Schemas")
    return generated
