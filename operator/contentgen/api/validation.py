"""Validating manifests as admission would, plus what admission cannot see.

The API server prunes unknown fields silently and knows nothing about apiVersions it does
not serve; here both are errors, so a typo such as `videoUrl` fails in CI instead of being
dropped on the cluster. Every problem names the field path and says what to do.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .base import CEL_ERROR, ApiModel
from .common import NAME_PATTERN, OWNER_PATTERN, CommonSpec
from .kinds import API_VERSION, GROUP, KINDS, Kind
from .manifests import Document
from .notification import KIND as NOTIFICATION
from .notification import NotificationSpec
from .resource import DNS_LABEL_PATTERN, Resource
from .sharing import (
    COLLECTION_NAME_PATTERN,
    COLLECTION_NAME_WORDS,
    GRANTEE_PATTERN,
    GROUP_GRANTEE_PATTERN,
    OWNER_GRANTEE_PATTERN,
)

# What a pattern means, in words: a person is never shown a regular expression. A pattern defined
# elsewhere (the HTTP API's parameters) is given its words where it is defined, with `said`.
PATTERN_HINTS = {
    OWNER_PATTERN: "lowercase letters, digits, '.', '_' and '-', starting and ending with a letter or "
    "digit, at most 63 characters (it becomes part of object-store keys)",
    NAME_PATTERN: "a Kubernetes name: lowercase letters, digits, '-' and '.', starting and ending with "
    "a letter or digit",
    DNS_LABEL_PATTERN: "lowercase letters, digits and '-', starting and ending with a letter or digit",
    GRANTEE_PATTERN: "owner:NAME (an owner: lowercase letters, digits, '.', '_' and '-') or group:NAME "
    "(an identity group, without spaces, commas or '=')",
    OWNER_GRANTEE_PATTERN: "owner:NAME (an owner: lowercase letters, digits, '.', '_' and '-')",
    GROUP_GRANTEE_PATTERN: "group:NAME (an identity group, without spaces, commas or '=')",
    COLLECTION_NAME_PATTERN: COLLECTION_NAME_WORDS,
    r"^[A-Za-z0-9_-]{1,32}$": "1-32 of A-Z, a-z, 0-9, '_' and '-'",
    r"^[a-z]{2}(_[a-z]{2})?$": "a language code such as en or en_us",
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$": "a Kueue LocalQueue's name: lowercase letters, digits, '-' "
    "and '.', starting and ending with a letter or digit (or empty)",
    r"^[a-z0-9][a-z0-9.-]{0,63}$": "a speech model's name: lowercase letters, digits, '.' and '-', "
    "starting with a letter or digit, at most 64 characters (e.g. universal)",
    r"^[-._a-zA-Z0-9]+$": "a Secret's key: letters, digits, '-', '_' and '.'",
    r"^[A-Z][A-Za-z0-9]*$": "a kind's name, such as LoraTraining: letters and digits, starting with a "
    "capital letter",
    r"^[0-9a-f]{64}$": "a SHA-256 digest: 64 lowercase hexadecimal digits",
    r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$": "a reason in CamelCase, such as NotFound",
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$": "a model directory's name: letters, digits, '.', '_' and '-', "
    "starting with a letter or digit (e.g. whisper-large-v3)",
}


def said(pattern: str, words: str) -> str:
    """`pattern`, its meaning in `words` kept for the refusals of values that do not match it."""
    known = PATTERN_HINTS.setdefault(pattern, words)
    if known != words:
        raise ValueError(f"the pattern {pattern!r} is said in two ways: {known!r} and {words!r}")
    return pattern


# Field names of the predecessor service's HTTP API, which users bring along.
PREDECESSOR_FIELDS = {
    "videoUrl": "source.url",
    "audioUrl": "source.url",
    "url": "source.url",
    "userId": "owner",
    "loraName": "metadata.name",
    "trigger": "triggerWord",
    "steps": "training.steps",
    "learning_rate": "training.learningRate",
    "inputs": "prompt",
    "language_code": "languageCode",
    "speaker_labels": "speakerLabels",
    "num_images": "numImages",
    "image_size": "imageSize",
    "path": "url",
}


@dataclass(frozen=True)
class Problem:
    source: str
    document: str
    path: str
    reason: str

    def line(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.source}: {self.document}: {where}{self.reason}"

    def as_dict(self) -> dict[str, str]:
        return {"file": self.source, "document": self.document, "field": self.path, "reason": self.reason}


@dataclass
class Outcome:
    """What validating one document found."""

    document: Document
    kind: Kind | None = None  # None: not a contentgen resource (skipped) or unreadable
    resource: Resource[Any] | None = None
    problems: tuple[Problem, ...] = ()
    note: str = ""  # why it was skipped
    notification: bool = False  # a Notification checked (a contentgen resource, not a kind of work)

    @property
    def skipped(self) -> bool:
        return self.kind is None and not self.problems and not self.notification


def validate_document(doc: Document, *, local: bool = False) -> Outcome:
    """Validate one document. `local` accepts what only local runs allow (local source paths)."""
    stop = _not_a_contentgen_resource(doc)
    if stop is not None:
        return stop
    content: dict[str, Any] = doc.content
    if content["kind"] == NOTIFICATION:
        return _notification(doc, content)
    kind = KINDS.get(content["kind"])
    if kind is None:
        return _unknown_kind(doc, content["kind"])
    return _resource(doc, kind, content, local)


def _problem(doc: Document, path: str, reason: str) -> Outcome:
    return Outcome(doc, problems=(Problem(doc.source, doc.label, path, reason),))


def _not_a_contentgen_resource(doc: Document) -> Outcome | None:
    """The outcome of a document that is not a contentgen resource of this API version (skipped,
    or a problem: unreadable, not an object, no apiVersion or kind, another version); None for one
    that is (a mapping with this apiVersion and a kind)."""
    if doc.error:
        return _problem(doc, "", doc.error)
    if doc.walked and not _may_be_a_resource(doc.content):
        # Found in a repository: values files, Chart.yaml, configs are not resources.
        return Outcome(doc, note="not a Kubernetes object (it has no apiVersion and kind)")
    if not isinstance(doc.content, dict):
        return _problem(doc, "", "not a Kubernetes object (expected a mapping with apiVersion and kind)")
    return _not_this_api(doc, doc.content.get("apiVersion"), doc.content.get("kind"))


def _may_be_a_resource(content: Any) -> bool:
    """Whether a document found in a repository is meant as a Kubernetes object: one of ours by
    its kind or its group, or anything with an apiVersion and a kind."""
    fields = content if isinstance(content, dict) else {}
    ours = fields.get("kind") in KINDS or str(fields.get("apiVersion", "")).startswith("contentgen")
    return ours or bool(fields.get("apiVersion") and fields.get("kind"))


def _not_this_api(doc: Document, api_version: Any, kind_name: Any) -> Outcome | None:
    """The outcome of an object whose apiVersion and kind are not a resource of this API version
    (missing: a problem; another group: skipped; another version of ours: a problem)."""
    if not isinstance(api_version, str) or not api_version:
        return _problem(doc, "apiVersion", f"missing; a contentgen resource has apiVersion: {API_VERSION}")
    if not isinstance(kind_name, str) or not kind_name:
        return _problem(doc, "kind", f"missing; one of {', '.join(KINDS)}")
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    if not group.startswith("contentgen"):
        return Outcome(doc, note=f"{api_version} {kind_name}, not {GROUP}")  # not ours to judge
    if api_version != API_VERSION:
        return _problem(doc, "apiVersion", f'unknown apiVersion "{api_version}"; use {API_VERSION}')
    return None


def _unknown_kind(doc: Document, kind_name: str) -> Outcome:
    guess = difflib.get_close_matches(kind_name, list(KINDS), n=1, cutoff=0.5) or [
        k for k in KINDS if k.lower() == kind_name.lower()
    ]
    hint = f'; did you mean "{guess[0]}"?' if guess else ""
    return _problem(
        doc, "kind", f'unknown kind "{kind_name}" in {GROUP}: expected one of {", ".join(KINDS)}{hint}'
    )


def _resource(doc: Document, kind: Kind, content: dict[str, Any], local: bool) -> Outcome:
    """The document validated as a resource of `kind`, as the API server's schema and rules would."""
    model = Resource[kind.spec]  # type: ignore[name-defined]
    try:
        resource = model.model_validate_json(json.dumps(content), context={"local": local})
    except ValidationError as exc:
        found = _explain(exc, Resource[kind.spec])  # type: ignore[name-defined]
        found += rules_beside(exc, kind.spec, content.get("spec"))
        problems = tuple(Problem(doc.source, doc.label, path, reason) for path, reason in found)
        return Outcome(doc, kind, problems=problems)
    return Outcome(doc, kind, resource)


def rules_beside(exc: ValidationError, model: type[ApiModel], spec: Any) -> list[tuple[str, str]]:
    """The spec's own rules (its model's CEL rules) that a field's error kept pydantic from
    checking, checked on the values as given: the API server reports its schema's errors and every
    CEL rule together. A rule that cannot be checked on such values is left out."""
    checked = any(e["type"] == CEL_ERROR and tuple(e["loc"]) == ("spec",) for e in exc.errors())
    if checked or not isinstance(spec, dict) or not model.cel_rules:
        return []
    names = {(info.alias or name): name for name, info in model.model_fields.items()}
    lenient = model.model_construct(**{names[k]: v for k, v in spec.items() if k in names})
    found = []
    for rule in model.cel_rules:
        try:
            broken = rule.check is not None and not rule.check(lenient)
        except Exception:  # a rule on values that are themselves wrong: the field's error stands
            broken = False
        if broken:
            path = ".".join(["spec", *[p for p in (rule.field_path or "").split(".") if p]])
            found.append((path, rule.message))
    return found


def _notification(doc: Document, content: dict[str, Any]) -> Outcome:
    """A Notification (a webhook subscription, not a kind of work): its spec as admission checks it."""
    try:
        NotificationSpec.model_validate_json(json.dumps(content.get("spec")))
    except ValidationError as exc:
        problems = tuple(
            Problem(doc.source, doc.label, path, reason)
            for path, reason in _explain(exc, NotificationSpec, within=["spec"])
        )
        return Outcome(doc, problems=problems)
    return Outcome(doc, note="a Notification: valid", notification=True)


def validate_documents(docs: list[Document], *, local: bool = False) -> list[Outcome]:
    return [validate_document(doc, local=local) for doc in docs]


def _explain(
    exc: ValidationError, root: type[BaseModel], within: list[Any] | None = None
) -> list[tuple[str, str]]:
    """Each error of validating `root` (found at `within` in the manifest: ["spec"] for a spec
    validated alone) as (field path, reason)."""
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        ctx = err.get("ctx") or {}
        if err["type"] == CEL_ERROR and ctx.get("field_path"):
            loc += [p for p in str(ctx["field_path"]).split(".") if p]
        out.append((_path([*(within or []), *loc]), _reason(err, loc, root, within or [])))
    # Stable, de-duplicated (a union can report the same thing twice).
    return list(dict.fromkeys(out))


def _path(loc: list[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _reason(err: Any, loc: list[Any], root: type[BaseModel], within: list[Any]) -> str:
    if err["type"] == "extra_forbidden":
        return _unknown_field(loc, root, within)
    return in_words(err)


def in_words(err: Any) -> str:
    """One of pydantic's errors (an item of `ValidationError.errors()`) in plain words: what the
    value must be, never a regular expression or pydantic's own phrase."""
    kind_of_error: str = err["type"]
    if kind_of_error == "extra_forbidden":
        return "not a field here: remove it"
    wording = _WORDINGS.get(kind_of_error)
    if wording is not None:
        return wording(err.get("input"), err.get("ctx") or {}, err)
    # a kind not worded yet: pydantic's sentence, its own turns of phrase said as this module says them
    text = str(err.get("msg") or "is not valid")
    for phrase, ours in _PHRASES:
        text = text.replace(phrase, ours)
    return text


def problems_in_words(
    exc: ValidationError, name: Callable[[tuple[Any, ...]], str] | None = None
) -> list[str]:
    """Each error of `exc` as one line, `FIELD: what it must be`; `name` says a location (default:
    its parts joined by dots, list positions in brackets)."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        where = name(loc) if name is not None else _path(list(loc))
        lines.append(f"{where}: {in_words(err)}" if where else in_words(err))
    return list(dict.fromkeys(lines))


# A kind of pydantic error in words: (the input, the error's ctx, the error) -> the reason.
Wording = Callable[[Any, dict[str, Any], Any], str]


def _typed(expected: str, *, shown: bool = True) -> Wording:
    """`must be {expected}, got {its JSON type}` (and the value, where `shown`)."""
    return lambda value, ctx, err: (
        f"must be {expected}, got {_json_type(value)}" + (f" {_show(value)}" if shown else "")
    )


def _bound(words: str, key: str) -> Wording:
    return lambda value, ctx, err: f"must be {words} {ctx[key]}, got {_show(value)}"


def _too_short(value: Any, ctx: dict[str, Any], err: Any) -> str:
    return (
        "must not be empty"
        if ctx.get("min_length") == 1
        else f"must be at least {ctx['min_length']} characters"
    )


def _pattern(value: Any, ctx: dict[str, Any], err: Any) -> str:
    words = PATTERN_HINTS.get(str(ctx.get("pattern", "")), "")  # tests/api/test_words.py: every one has some
    return f"{_show(value)} is not valid" + (f": use {words}" if words else " here")


def _one_of(value: Any, ctx: dict[str, Any], err: Any) -> str:
    expected = str(ctx.get("expected", "")).replace("'", "")
    return f"must be one of {expected}, got {_show(value)}"


def _parsed(expected: str) -> Wording:
    """A value given as text (a query parameter, an environment variable) that does not read as one."""
    return lambda value, ctx, err: f"must be {expected}, got {_show(value)}"


def _union_tag(value: Any, ctx: dict[str, Any], err: Any) -> str:
    expected = str(ctx.get("expected_tags", "")).replace("'", "")
    return f"{ctx.get('discriminator', 'its kind')} must be one of {expected}, got {_show(ctx.get('tag'))}"


# How each kind of pydantic error is said, by its type.
_WORDINGS: dict[str, Wording] = {
    "missing": lambda value, ctx, err: "required; add it",
    "int_type": _typed("an integer"),
    "int_from_float": _typed("an integer"),
    "float_type": _typed("a number"),
    "bool_type": _typed("true or false"),
    "string_type": _typed("a string", shown=False),
    "model_type": _typed("an object", shown=False),
    "dict_type": _typed("an object", shown=False),
    "model_attributes_type": _typed("an object", shown=False),
    "list_type": _typed("a list", shown=False),
    "int_parsing": _parsed("an integer"),
    "int_parsing_size": _parsed("an integer of a usual size"),
    "float_parsing": _parsed("a number"),
    "bool_parsing": _parsed("true or false"),
    "finite_number": lambda value, ctx, err: "must be a finite number",
    "greater_than_equal": _bound("at least", "ge"),
    "greater_than": _bound("greater than", "gt"),
    "less_than_equal": _bound("at most", "le"),
    "less_than": _bound("less than", "lt"),
    "multiple_of": _bound("a multiple of", "multiple_of"),
    "string_too_short": _too_short,
    "string_too_long": lambda value, ctx, err: (
        f"must be at most {ctx['max_length']} characters (it has {len(value)})"
    ),
    "too_short": lambda value, ctx, err: f"must have at least {ctx['min_length']} items",
    "too_long": lambda value, ctx, err: (
        f"must have at most {ctx['max_length']} items (it has {ctx.get('actual_length', len(value))})"
    ),
    "string_pattern_mismatch": _pattern,
    "literal_error": _one_of,
    "enum": _one_of,
    "union_tag_invalid": _union_tag,
    "union_tag_not_found": lambda value, ctx, err: f"{ctx.get('discriminator', 'its kind')} is required",
    "json_invalid": lambda value, ctx, err: f"is not valid JSON ({ctx.get('error', 'unreadable')})",
    "json_type": lambda value, ctx, err: "must be JSON text",
    "datetime_parsing": _parsed("a date and time such as 2026-11-24T15:02:11Z"),
    "datetime_from_date_parsing": _parsed("a date and time such as 2026-11-24T15:02:11Z"),
    "date_parsing": _parsed("a date such as 2026-11-24"),
    "url_parsing": _parsed("a URL"),
    "url_scheme": lambda value, ctx, err: f"must be a URL of scheme {ctx.get('expected_schemes', '')}",
    CEL_ERROR: lambda value, ctx, err: str(ctx.get("message", err["msg"])),
    "value_error": lambda value, ctx, err: str(err["msg"]).removeprefix("Value error, "),
    "assertion_error": lambda value, ctx, err: str(err["msg"]).removeprefix("Assertion failed, "),
}

# pydantic's turns of phrase, for the kinds of error no wording above covers
_PHRASES = (
    ("Input should be", "must be"),
    ("Input should have", "must have"),
    ("Field required", "required; add it"),
    ("Value error, ", ""),
    ("Extra inputs are not permitted", "not a field here: remove it"),
)


def _unknown_field(loc: list[Any], root: type[BaseModel], within: list[Any]) -> str:
    name = str(loc[-1])
    known = _known_fields(loc[:-1], root)
    base = f'unknown field "{name}"; the API server would silently drop it'
    if name in PREDECESSOR_FIELDS and [*within, *loc][0] == "spec":
        return f"{base}: use {PREDECESSOR_FIELDS[name]} (the predecessor's name for it)"
    guess = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if guess:
        return f'{base}: did you mean "{guess[0]}"?'
    return f"{base}; known fields here: {', '.join(known)}" if known else base


def _known_fields(parent: list[Any], root: type[BaseModel]) -> list[str]:
    """The wire names of the fields allowed at `parent` (a loc in `root` without the unknown field)."""
    model: type[BaseModel] | None = root
    for part in parent:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part or n == part), None)
        model = _model_of(field.annotation) if field is not None else None
    return [f.alias or n for n, f in model.model_fields.items()] if model else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


__all__ = [
    "CommonSpec",
    "Outcome",
    "Problem",
    "in_words",
    "problems_in_words",
    "said",
    "validate_document",
    "validate_documents",
]
