"""A resource's conditions as the tests read them, one way for every suite: the status's condition
of a type, its reason, and its (status, reason) pair."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def condition(status: Mapping[str, Any] | None, type_: str = "Ready") -> dict[str, Any]:
    """The condition `type_` of a resource's `status`; {} where it has none (yet)."""
    found = ((status or {}).get("conditions")) or []
    return next((dict(c) for c in found if c["type"] == type_), {})


def reason(status: Mapping[str, Any] | None, type_: str = "Ready") -> str:
    """The reason of condition `type_` (KeyError where there is no such condition)."""
    return str(condition(status, type_)["reason"])


def state(status: Mapping[str, Any] | None, type_: str) -> tuple[str, str]:
    """Condition `type_`'s (status, reason)."""
    found = condition(status, type_)
    return found["status"], found["reason"]
