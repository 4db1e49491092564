"""README sections generated from the code (`make generate`; tests/test_docs.py checks them):
the API reference and the settings tables. Each lives between an HTML comment pair
`<!-- NAME:start ... -->` and `<!-- NAME:end -->`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_settings import BaseSettings


def _default(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    if value in ("", [], {}, None):
        return ""
    text = value if isinstance(value, str | Path) else json.dumps(value)
    return f"`{text}`"


def settings_table(cls: type[BaseSettings], prefix: str = "CONTENTGEN_", skip: tuple[str, ...] = ()) -> str:
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for name, field in cls.model_fields.items():
        if name in skip:
            continue
        variable = f"{prefix}{name.upper()}"
        description = (field.description or "").removeprefix(f"{variable}: ").replace("|", "\\|")
        value = field.get_default(call_default_factory=True)
        if isinstance(value, BaseModel):  # nested: one variable per part, joined with "__"
            for part, part_value in value.model_dump().items():
                rows.append(f"| `{variable}__{part.upper()}` | {_default(part_value)} | {description} |")
            continue
        rows.append(f"| `{variable}` | {_default(value)} | {description} |")
    return "\n".join(rows)


def kind_defaults_table() -> str:
    from contentgen.controller.settings import OperatorSettings

    rows = [
        "| kind | requests | limits | activeDeadlineSeconds | backoffLimit | ttlSecondsAfterFinished "
        "| work volume |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, d in OperatorSettings().kinds.items():
        requests = ", ".join(f"{k} {v}" for k, v in d.resources.requests.items())
        limits = ", ".join(f"{k} {v}" for k, v in d.resources.limits.items())
        rows.append(
            f"| {kind} | {requests} | {limits} | {d.active_deadline_seconds} | {d.backoff_limit} | "
            f"{d.ttl_seconds_after_finished} | {d.work_volume_size} |"
        )
    return "\n".join(rows)


def _pipeline() -> str:
    from contentgen.pipeline.settings import PipelineSettings

    return (
        settings_table(PipelineSettings, skip=("prices",))
        + "\n| `CONTENTGEN_PRICES` | see below | "
        + str(PipelineSettings.model_fields["prices"].description)
        + " |"
    )


def _operator() -> str:
    from contentgen.controller.settings import OperatorSettings

    return (
        settings_table(OperatorSettings, skip=("kinds", "prices"))
        + "\n| `CONTENTGEN_PRICES` | see Spend and budgets | "
        + str(OperatorSettings.model_fields["prices"].description)
        + " |"
        + "\n\nJob defaults per kind (`CONTENTGEN_KINDS`):\n\n"
        + kind_defaults_table()
    )


def _api() -> str:
    from contentgen.httpapi.settings import ApiSettings

    return (
        settings_table(ApiSettings, skip=("budgets",))
        + "\n| `CONTENTGEN_BUDGETS` |  | "
        + str(ApiSettings.model_fields["budgets"].description).removeprefix("CONTENTGEN_BUDGETS: ")
        + " |"
    )


def _prices() -> str:
    from contentgen.pricing import PriceTable

    table = PriceTable()
    rows = ["| provider | item | USD per |", "|---|---|---|"]
    for provider, items in table.items.items():
        for item, units in items.items():
            for unit, usd in units.items():
                rows.append(f"| {provider} | `{item}` | ${usd:g} per {unit} |")
    return (
        "\n".join(rows)
        + f"\n\nTaken {table.as_of} (`asOf`); a Transcription is estimated at {table.assumed_audio_hours:g} "
        "hour of audio (`assumedAudioHours`) until its length is measured."
    )


def _reference() -> str:
    from contentgen.api.docs import reference

    return reference()


SECTIONS: dict[str, Callable[[], str]] = {
    "api-reference": _reference,
    "settings-pipeline": _pipeline,
    "settings-operator": _operator,
    "settings-api": _api,
    "prices": _prices,
}


def splice(readme: str) -> str:
    """README text with every generated section replaced."""
    for name, render in SECTIONS.items():
        pattern = re.compile(rf"(<!-- {name}:start[^>]*-->\n)(?:.*?\n)?(<!-- {name}:end -->)", re.DOTALL)
        if not pattern.search(readme):
            raise ValueError(f"README has no <!-- {name}:start --> ... <!-- {name}:end --> section")
        match = pattern.search(readme)
        assert match is not None
        readme = (
            readme[: match.start()]
            + match.group(1)
            + render()
            + "\n"
            + match.group(2)
            + readme[match.end() :]
        )
    return readme
