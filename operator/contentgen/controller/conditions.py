"""kstatus-compatible conditions (Ready, Reconciling, Stalled) for each phase (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contentgen.api import format_time
from contentgen.api.reading import Condition


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """The list with `type_` set; lastTransitionTime only moves when `status` changes."""
    previous = next((Condition.of(c) for c in conditions if c.get("type") == type_), None)
    # one written without a time (by hand) is given one: the CRD wants a date-time there
    kept = previous.last_transition_time if previous is not None and previous.status == status else ""
    updated = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": kept or format_time(now),
        "observedGeneration": generation,
    }
    rest = [c for c in conditions if c.get("type") != type_]
    return sorted(
        [*rest, updated],
        key=lambda c: (
            ("Ready", "Reconciling", "Stalled").index(c["type"])
            if c["type"] in ("Ready", "Reconciling", "Stalled")
            else 9
        ),
    )


def conditions_for(
    conditions: list[dict[str, Any]],
    *,
    ready: bool,
    reconciling: bool,
    stalled: bool,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """All three conditions at once. Ready carries the reason either way; the other two carry
    it when they are True."""
    out = set_condition(conditions, "Ready", str(ready), reason, message, generation, now)
    out = set_condition(
        out,
        "Reconciling",
        str(reconciling),
        reason if reconciling else "Idle",
        message if reconciling else "",
        generation,
        now,
    )
    return set_condition(
        out,
        "Stalled",
        str(stalled),
        reason if stalled else "Progressing" if reconciling else "Idle",
        message if stalled else "",
        generation,
        now,
    )
