"""Building blocks of the API models: the base model, timestamps and CEL rules.

A `CelRule` is declared once and used twice: it is written into the CRD as an
`x-kubernetes-validations` entry (so the API server enforces it at admission) and it
runs in Python as a pydantic validator (so `contentgen validate`, `contentgen run` and
the worker enforce the same thing without a cluster). tests/api checks that both
sides agree by evaluating the CEL with a CEL interpreter on the same examples.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

CEL_ERROR = "cel"
# Said of a local file where only a local run takes one (a CelRule's local_exception).
LOCAL_ONLY = " (a local file is taken by local runs only: contentgen run, contentgen api --local)"


def format_time(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: Any) -> datetime | None:
    """A metav1.Time (or a datetime) as an aware datetime; None for None or ""."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


# Kubernetes' metav1.Time: RFC 3339, UTC, whole seconds.
Timestamp = Annotated[datetime, PlainSerializer(format_time, return_type=str, when_used="json")]


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are errors.

    Validation is strict (no "40" for 40), as the API server is. Manifests are validated
    in JSON mode (`model_validate_json` or `validate_document`), where timestamps are strings.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        strict=True,
        validate_default=False,
    )

    # Model-level CEL rules; see CelRule.
    cel_rules: ClassVar[tuple[CelRule, ...]] = ()

    @model_validator(mode="after")
    def _check_cel_rules(self) -> ApiModel:
        # every rule broken, each its own error, as admission reports every CEL rule at once
        broken = [r for r in type(self).cel_rules if r.check is not None and not r.check(self)]
        if len(broken) == 1:
            raise broken[0].error()
        if broken:
            errors = [InitErrorDetails(type=r.error(), loc=(), input=self) for r in broken]
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        if cls.cel_rules:
            target = handler.resolve_ref_schema(json_schema)
            target["x-kubernetes-validations"] = [r.schema_entry() for r in cls.cel_rules]
        return json_schema

    def wire(self) -> dict[str, Any]:
        """The JSON-ready dict with wire names and without unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclass(frozen=True)
class CelRule:
    """One `x-kubernetes-validations` entry and its Python twin.

    `rule` is CEL as the API server evaluates it (`self` is the object or value the
    rule is attached to; `oldSelf` makes it a transition rule). `check` returns True when
    the value is valid; it is None for transition rules, which only admission can check.
    `field_path` (relative, e.g. ".loras") names the field the error points at.
    """

    rule: str
    message: str
    check: Callable[[Any], bool] | None = None
    field_path: str | None = None
    reason: str = "FieldValueInvalid"
    # Values a local run (`contentgen run`, validation context {"local": True}) also accepts,
    # e.g. a local file as `source.url`. Admission never does.
    local_exception: Callable[[Any], bool] | None = None

    def schema_entry(self) -> dict[str, str]:
        entry = {"rule": self.rule, "message": self.message}
        if self.field_path:
            entry["fieldPath"] = self.field_path
        if self.reason != "FieldValueInvalid":
            entry["reason"] = self.reason
        return entry

    def error(self, also: str = "") -> PydanticCustomError:
        message = self.message + also
        return PydanticCustomError(
            CEL_ERROR, "{message}", {"message": message, "field_path": self.field_path or ""}
        )

    # Used as `Annotated[str, CelRule(...)]` on a field: validates the value and adds the rule
    # to the field's schema.
    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        check, local_exception = self.check, self.local_exception

        def validate(value: Any, info: core_schema.ValidationInfo) -> Any:
            if check is None or check(value):
                return value
            if local_exception is not None and local_exception(value):
                if (info.context or {}).get("local"):
                    return value
                raise self.error(LOCAL_ONLY)
            raise self.error()

        return core_schema.with_info_after_validator_function(validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("x-kubernetes-validations", []).append(self.schema_entry())
        return json_schema


def regex_rule(pattern: str, message: str, local_exception: Callable[[Any], bool] | None = None) -> CelRule:
    """A rule that the whole string matches `pattern` (RE2 syntax, also valid in Python).

    CEL's `matches` searches, so the CEL side is anchored; Python uses fullmatch, which is
    the same thing (Python's `$` would also accept a trailing newline).
    """
    compiled = re.compile(pattern)
    return CelRule(
        rule=f"self.matches('^(?:{_cel_string(pattern)})$')",
        message=message,
        check=lambda value: compiled.fullmatch(value) is not None,
        local_exception=local_exception,
    )


def _cel_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
