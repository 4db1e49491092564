"""Models that read what another program wrote (the API server, the operator, an older
version), declared for reading only: each says which fields its reader uses, nothing more.

Reading is as lenient as the wire: a field left out or null reads as its zero, a word or a count
is read from whatever scalar carries it (as `str(x or "")`, `int(x or 0)` and `float(x or 0)`
read it), and
fields not declared are ignored. Timestamps stay the RFC 3339 strings that were written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator
from pydantic.alias_generators import to_camel


def _text(value: Any) -> str:
    return str(value) if value else ""


def _count(value: Any) -> int:
    return int(value or 0)


def _number(value: Any) -> float:
    return float(value or 0)


Text = Annotated[str, BeforeValidator(_text)]
Count = Annotated[int, BeforeValidator(_count)]
Number = Annotated[float, BeforeValidator(_number)]
Flag = Annotated[bool, BeforeValidator(bool)]


class Reading(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_absent(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value is not None}
        return data

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Self:
        return cls.model_validate(raw)


class Condition(Reading):
    """A condition of any object's status, as written: `status` is "True", "False" or "Unknown"."""

    type: Text = ""
    status: Text = ""
    reason: Text = ""
    message: Text = ""
    last_transition_time: str | None = None

    @property
    def true(self) -> bool:
        return self.status == "True"


def condition(conditions: tuple[Condition, ...], kind: str) -> Condition:
    """The first condition of type `kind`; an empty one where there is none."""
    return next((c for c in conditions if c.type == kind), Condition())
