"""Docs sections generated from the code (`make generate`; tests/docs/test_generated.py checks
them): the API reference, the settings, the statuses and reasons, the commands and the prices.
Each lives in a page of docs/ between an HTML comment pair `<!-- NAME:start ... -->` and
`<!-- NAME:end -->` (PAGES says which page holds which)."""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic_settings import BaseSettings

if TYPE_CHECKING:
    from contentgen.api.base_models import BaseModelInfo


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


def gpu_jobs_table() -> str:
    from contentgen.controller.settings import OperatorSettings

    rows = ["| kind | GPUs | requests | limits |", "|---|---|---|---|"]
    for kind, d in OperatorSettings().gpu_jobs.items():
        requests = ", ".join(f"{k} {v}" for k, v in d.resources.requests.items())
        limits = ", ".join(f"{k} {v}" for k, v in d.resources.limits.items())
        rows.append(f"| {kind} | {d.count} {d.resource_name} | {requests} | {limits} |")
    return "\n".join(rows)


def _pipeline() -> str:
    from contentgen.pipeline.settings import PipelineSettings

    return (
        settings_table(PipelineSettings, skip=("prices",))
        + "\n| `CONTENTGEN_PRICES` | [the table](../spend.md#prices) | "
        + str(PipelineSettings.model_fields["prices"].description)
        + " |"
    )


def _operator() -> str:
    from contentgen.controller.settings import OperatorSettings

    return (
        settings_table(OperatorSettings, skip=("kinds", "prices", "gpu_jobs", "key_secrets"))
        + _key_secrets()
        + "\n| `CONTENTGEN_PRICES` | [the table](../spend.md#prices) | "
        + str(OperatorSettings.model_fields["prices"].description)
        + " |"
        + "\n\nJob defaults per kind (`CONTENTGEN_KINDS`):\n\n"
        + kind_defaults_table()
        + "\n\nThe Jobs of `provider: cluster` per kind (`CONTENTGEN_GPU_JOBS`; each also takes a "
        + "`nodeSelector`, see [Cluster GPUs](../cluster-gpus.md)); their GPUs are added to requests and "
        + "limits:\n\n"
        + gpu_jobs_table()
    )


def _key_secrets() -> str:
    """One row per part of each keyed provider's Secret (OperatorSettings.key_secrets)."""
    from contentgen.api.providers import PROVIDERS
    from contentgen.controller.settings import KEY_SECRET_PARTS

    return "".join(
        f"\n| `{p.key_secret_variable}__{part.upper()}` | {_default(p.key if part == 'key' else '')} | "
        f"The Secret (name, key) holding {p.key}, {p.name}'s API key, handed to workers by reference "
        f"(the chart's {p.chart_secret}). Unset: {p.name} resources wait as MissingCredentials. |"
        for p in PROVIDERS.values()
        if p.key
        for part in KEY_SECRET_PARTS
    )


def _cluster_worker() -> str:
    from contentgen.providers.settings import ClusterWorkerSettings

    return settings_table(ClusterWorkerSettings)


def _api() -> str:
    from contentgen.httpapi.settings import ApiSettings

    return (
        settings_table(ApiSettings, skip=("budgets", "prices"))
        + "\n| `CONTENTGEN_BUDGETS` |  | "
        + str(ApiSettings.model_fields["budgets"].description).removeprefix("CONTENTGEN_BUDGETS: ")
        + " |"
        + "\n| `CONTENTGEN_PRICES` | [the table](../spend.md#prices) | "
        + str(ApiSettings.model_fields["prices"].description).removeprefix("CONTENTGEN_PRICES: ")
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
    cluster = table.cluster
    rows.append(f"| cluster | every item (`cluster.gpuHourUsd`) | ${cluster.gpu_hour_usd:g} per gpu-hour |")
    return (
        "\n".join(rows)
        + f"\n\nTaken {table.as_of} (`asOf`); a Transcription is estimated at {table.assumed_audio_hours:g} "
        "hour of audio (`assumedAudioHours`) until its length is measured. A `provider: cluster` run is "
        f"estimated at {cluster.startup_seconds:g} s of loading, {cluster.training_step_seconds:g} s per "
        f"training step, {cluster.image_seconds:g} s per image, {cluster.video_frame_seconds:g} s per video "
        f"frame and {cluster.audio_hour_seconds:g} s per audio hour, times its GPUs "
        "(`cluster`: [Cluster GPUs](cluster-gpus.md#gpu-time-and-cost))."
    )


def _families() -> str:
    """The base-model table (api/base_models.py): each training.baseModel's licence, trainers, price
    and recommended settings, and what draws its LoRAs."""
    from contentgen.api.base_models import BASE_MODELS

    rows = [
        "| `training.baseModel` | family | licence: used commercially | fal trainer, USD per 1,000 steps "
        "| provider cluster | recommended steps, rank, learning rate | its LoRAs drawn by |",
        "|---|---|---|---|---|---|---|",
    ]
    return "\n".join([*rows, *(_family(m) for m in BASE_MODELS.values())])


def _family(m: BaseModelInfo) -> str:
    licence = (
        f"[{m.licence.name}]({m.licence.source}): {'yes' if m.commercial else 'no'}" if m.licence else ""
    )
    fal = "<br>".join(
        f"`{t.app}`, {f'{t.price_per_step * 1000:.2f}' if t.price_per_step else 'price table'}"
        + (f" (at least {t.billed_min_steps} steps billed)" if t.billed_min_steps else "")
        for t in m.fal_trainers
    )
    cluster = f"`{m.cluster_family}`, `{m.cluster_dir or 'gpu.fluxModel'}`" if m.offered_on_cluster else "no"
    said = m.recommended
    recommended = f"{said.steps}, {said.rank}, {said.learning_rate:g}" if said else ""
    cells = [f"`{m.name}`", m.family, licence, fal or "none", cluster, recommended, _drawn_by(m)]
    return f"| {' | '.join(cells)} |"


def _drawn_by(m: BaseModelInfo) -> str:
    """The models that draw a picture family's LoRAs, each with its providers (a video family's:
    the tools that load them)."""
    from contentgen.api.base_models import drawn_from
    from contentgen.api.image import FLUX_MODELS, MODEL_DEFAULTS, drawn_by
    from contentgen.api.providers import OWN_GPUS

    drawn = []
    for model in m.loads_on if not m.video else ():
        # provider cluster draws FLUX.1's open models and the newer families' from their bases' directories
        on_gpus = model in FLUX_MODELS or drawn_from(model) is not None
        where = ", ".join(p for p in drawn_by(model) if p != OWN_GPUS or on_gpus)
        found = MODEL_DEFAULTS.get(model)
        steps = f" ({found.steps} steps, guidance {found.guidance:g})" if found else ""
        drawn.append(f"`{model}`{steps}: {where}")
    return "<br>".join(drawn) if drawn else ", ".join(f"`{v}`" for v in m.loads_on) or "ComfyUI"


def _video_models() -> str:
    from contentgen.api.video import MODELS

    def frames(m: object) -> str:
        from contentgen.api.video import VideoModelInfo

        assert isinstance(m, VideoModelInfo)
        if m.frames is None:
            return f"durationSeconds {' or '.join(map(str, m.durations))}"
        low, high = m.frames
        grid = f", {m.frame_step}k+1" if m.frame_step > 1 else ""
        return f"{low}–{high}{grid} (default {m.default_frames})"

    rows = [
        "| model | provider | makes from | app or pipeline | numFrames | fps | resolution | aspectRatio "
        "| LoRAs | price |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in MODELS.values():
        modes = " and ".join("a prompt" if mode == "text" else "a picture" for mode in m.modes)
        apps = "<br>".join(f"`{app}`" for app in m.apps.values())
        if m.fps is None:
            fps = "the model's own"
        elif m.fps_range:
            fps = f"{m.fps[0]}–{m.fps[-1]} (default {m.default_fps})"
        else:
            fps = " or ".join(map(str, m.fps))
        resolution = (
            ", ".join(f"**{r}**" if r == m.default_resolution else r for r in m.resolutions)
            or "the model's own"
        )
        aspect = ", ".join(f"**{a}**" if a == m.default_aspect_ratio else a for a in m.aspect_ratios)
        rows.append(
            f"| `{m.name}` | {m.provider} | {modes} | {apps} | {frames(m)} | {fps} | {resolution} | {aspect} "
            f"| {'yes' if m.loras else 'no'} | {m.price} |"
        )
    notes = [f"- `{m.name}`: {m.notes} ([source]({m.source}))." for m in MODELS.values() if m.notes]
    return "\n".join(rows) + "\n\nDefaults in **bold**. Notes:\n\n" + "\n".join(notes)


def _reference() -> str:
    from contentgen.api.docs import reference

    return reference()


def _statuses() -> str:
    from contentgen.api.reasons import CONDITION, EVENT, REASONS

    phases = ("Pending", "Running", "Succeeded", "Failed")
    out = ["| phase | reason | Stalled | meaning |", "|---|---|---|---|"]
    for phase in phases:
        for name, reason in REASONS.items():
            if reason.phase == phase:
                stalled = "yes" if reason.stalled else ""
                out.append(f"| `{phase}` | `{name}` | {stalled} | {reason.meaning} |")
    out += [
        "",
        "The likeness conditions, a LoraTraining's `LikenessPoor` and `LikenessEvaluated` (a LoraEvaluation "
        "has the latter too; their reasons `LikenessPoor` and `LikenessSkipped` are below):",
        "",
    ]
    out += ["| condition reason | meaning |", "|---|---|"]
    out += [f"| `{name}` | {r.meaning} |" for name, r in REASONS.items() if r.phase == CONDITION]
    out += ["", "Events only (besides one Event per phase change, with the reason above):", ""]
    out += ["| Event reason | meaning |", "|---|---|"]
    out += [f"| `{name}` | {r.meaning} |" for name, r in REASONS.items() if r.phase == EVENT]
    return "\n".join(out)


def _record_statuses() -> str:
    from contentgen.catalog import RUN_PHASES, STATUSES

    return (
        "Record statuses (`--status`, `?status=`): "
        + ", ".join(f"`{s}`" for s in STATUSES)
        + ". Latest-run phases (`--run`, `?run=`): "
        + ", ".join(f"`{p}`" for p in RUN_PHASES)
        + "."
    )


def _help(parser: argparse.ArgumentParser) -> str:
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: the same text everywhere
    try:
        return parser.format_help().rstrip()
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _commands() -> str:
    from contentgen.cli.main import COMMANDS, build_parser

    parser = build_parser()
    out = ["| command | what it does |", "|---|---|"]
    out += [f"| [`contentgen {name}`](#contentgen-{name}) | {text} |" for name, (_, text) in COMMANDS.items()]
    for name, command in _subcommands(parser).items():
        out += ["", f"### contentgen {name}", "", "```text", _help(command), "```"]
        for action, nested in _subcommands(command).items():
            out += ["", f"#### contentgen {name} {action}", "", "```text", _help(nested), "```"]
    return "\n".join(out)


# page (relative to the repository) -> its generated sections
PAGES: dict[str, dict[str, Callable[[], str]]] = {
    "docs/reference/api.md": {"api-reference": _reference},
    "docs/reference/settings.md": {
        "settings-pipeline": _pipeline,
        "settings-operator": _operator,
        "settings-cluster-worker": _cluster_worker,
        "settings-api": _api,
    },
    "docs/reference/statuses.md": {"statuses": _statuses, "record-statuses": _record_statuses},
    "docs/reference/commands.md": {"commands": _commands},
    "docs/spend.md": {"prices": _prices},
    "docs/videos.md": {"video-models": _video_models},
    "docs/cluster-training.md": {"families": _families},
}
SECTIONS: dict[str, Callable[[], str]] = {
    name: render for sections in PAGES.values() for name, render in sections.items()
}


def splice(text: str, sections: dict[str, Callable[[], str]], where: str = "README") -> str:
    """The text with each of these generated sections replaced."""
    for name, render in sections.items():
        pattern = re.compile(rf"(<!-- {name}:start[^>]*-->\n)(?:.*?\n)?(<!-- {name}:end -->)", re.DOTALL)
        match = pattern.search(text)
        if match is None:
            raise ValueError(f"{where} has no <!-- {name}:start --> ... <!-- {name}:end --> section")
        text = text[: match.start()] + match.group(1) + render() + "\n" + match.group(2) + text[match.end() :]
    return text
