"""A resource's status as its kind's API model, read where it enters the controller (pure).

The status the API server returns is whatever an operator wrote: this version, an older one (a
field since renamed or added, a status from before versions: `adopt_legacy` first), a newer one
(a field this version does not know). Reading it never fails: what this version cannot read is
left at its model's default, as a missing key always read. The typed status is for reading only;
the status dict stays what is written back, so nothing in it is dropped on the way through.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import UnionType
from typing import Annotated, Any, Protocol, TypeVar, Union, get_args, get_origin, runtime_checkable

from pydantic import BaseModel, ValidationError

from contentgen.api import Kind
from contentgen.api.common import CommonStatus, VersionBase
from contentgen.api.lora import Likeness
from contentgen.api.versions import adopt_legacy

StatusT = TypeVar("StatusT", bound=BaseModel)
# Each repair fills or removes one value, so a status is read within a few rounds per value.
_MAX_REPAIRS = 10_000
# What a required field the status lacks reads as: its type's zero, as `.get(key) or 0` read it.
_ZEROS: dict[Any, Any] = {str: "", int: 0, float: 0.0, bool: False, datetime: datetime.fromtimestamp(0, UTC)}


def read_status(kind: Kind, raw: Mapping[str, Any]) -> CommonStatus:
    """`raw` (a status as the API server has it) as `kind`'s status model, leniently: strings for
    timestamps and numbers are read as the API server would, unknown fields are left out, a value
    that cannot be read is left unset (its default), a required one that is missing reads as its
    type's zero (a condition without lastTransitionTime keeps its reason), and a required one that
    cannot be read takes the object it belongs to with it (a version, a condition)."""
    return _read(kind.status, adopt_legacy(kind.kind, dict(raw)))


def read_part(kind: Kind, model: type[StatusT], raw: Mapping[str, Any]) -> StatusT:
    """What `model` (a part of `kind`'s status: fields of the same names and types, other fields
    ignored) reads of `raw`, read_status's way: a reader that needs a few fields does not pay for
    the rest."""
    return _read(model, adopt_legacy(kind.kind, dict(raw)))


def read_common(raw: Mapping[str, Any]) -> CommonStatus:
    """What every kind's status has, of a status whose kind does not matter (read_status's way)."""
    return _read(CommonStatus, raw)


def read_model(model: type[StatusT], raw: Mapping[str, Any]) -> StatusT:
    """Another resource's status (a Notification's), read_status's way."""
    return _read(model, raw)


def _read(model: type[StatusT], raw: Mapping[str, Any]) -> StatusT:
    known = {field.alias or name for name, field in model.model_fields.items()}
    data = {key: value for key, value in raw.items() if key in known}
    copied, tried = False, set()  # where a zero was put, or a value that could not be read removed
    for _ in range(_MAX_REPAIRS):
        try:
            return model.model_validate(data, strict=False)
        except ValidationError as exc:
            if not copied:  # repairs never touch the caller's status
                data, copied = copy.deepcopy(data), True
            error = exc.errors()[0]
            loc, missing = tuple(error["loc"]), error["type"] == "missing"
            zero = _zero(_annotation_at(model, loc)) if missing and loc not in tried else None
            tried.add(loc)
            if zero is not None:
                _put(data, loc, zero)
            elif not _remove(data, loc[:-1] if missing else loc):  # unreadable and required: its object goes
                break
    return model()


def _strip(annotation: Any) -> Any:
    """X of Annotated[X, ...] and of X | None."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, UnionType) and type(None) in get_args(annotation):
            rest = [a for a in get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _annotation_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> Any:
    """The type of the value at `loc` in `model` (None where the path is not plain fields)."""
    annotation: Any = model
    for step in loc:
        annotation = _strip(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = annotation.model_fields
            found = next((f for name, f in fields.items() if (f.alias or name) == step), None)
            if found is None:
                return None
            annotation = found.annotation
        elif get_origin(annotation) in (list, dict) and get_args(annotation):
            annotation = get_args(annotation)[-1]
        else:
            return None
    return _strip(annotation)


def _zero(annotation: Any) -> Any:
    """A readable value of `annotation`'s type that says nothing, or None for a type without one
    (a Literal's or an Enum's value would say something)."""
    if annotation in _ZEROS:
        return _ZEROS[annotation]
    if get_origin(annotation) is list:
        return []
    if get_origin(annotation) is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return {}
    return None


def _put(data: dict[str, Any], loc: tuple[int | str, ...], value: Any) -> None:
    parent: Any = data
    for step in loc[:-1]:
        parent = parent[step]
    parent[loc[-1]] = value


def _remove(data: dict[str, Any], path: tuple[int | str, ...]) -> bool:
    """Remove the value at `path`; where the path is not plain data (a union's member), its
    top-level field. False when there is nothing left to remove."""
    try:
        parent: Any = data
        for step in path[:-1]:
            parent = parent[step]
        del parent[path[-1]]
    except (KeyError, IndexError, TypeError):
        return bool(path) and data.pop(str(path[0]), None) is not None
    return True


@runtime_checkable
class Versioned(Protocol):
    """A status that lists versions (every kind's does)."""

    @property
    def latest_version(self) -> int: ...

    @property
    def versions(self) -> Sequence[VersionBase]: ...


@runtime_checkable
class Measured(Protocol):
    """A status with a likeness report (LoraTraining, LoraEvaluation)."""

    @property
    def likeness(self) -> Likeness | None: ...


def latest_version(status: CommonStatus) -> int:
    return status.latest_version if isinstance(status, Versioned) else 0


def versions(status: CommonStatus) -> Sequence[VersionBase]:
    return status.versions if isinstance(status, Versioned) else ()


def likeness(status: CommonStatus) -> Likeness | None:
    return status.likeness if isinstance(status, Measured) else None


def ready_reason(status: CommonStatus) -> str:
    """The reason of the Ready condition ("" without one)."""
    return next((c.reason for c in status.conditions if c.type == "Ready"), "")
