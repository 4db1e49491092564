"""Records as text for people: aligned tables for lists, key/value blocks for one record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from contentgen.api.lora import ONE_PERSON_SIMILARITY as SAME
from contentgen.api.lora import STRANGERS_SIMILARITY as DIFFERENT
from contentgen.api.words import counted
from contentgen.catalog.common_record import JobRecord
from contentgen.catalog.document import INTERRUPTED
from contentgen.catalog.kinds import CATALOG_KINDS
from contentgen.catalog.kinds.lora_training import promoted
from contentgen.catalog.records import Stats

if TYPE_CHECKING:
    from contentgen.catalog.lineage import Lineage, LoraUse, PictureUse, VersionLineage


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _time(record: JobRecord) -> str:
    return record.created_at.strftime("%Y-%m-%d %H:%M") if record.created_at else "-"


def detail(record: JobRecord) -> str:
    """One line of what the record holds, for the DETAIL column."""
    text = ""
    if record.deleted is not None:
        text = "resource deleted, outputs kept; " if record.deleted.outputs_kept else "resource deleted; "
    declared = CATALOG_KINDS.get(record.kind)
    if declared is not None and isinstance(record, declared.record):  # its own (kinds/: detail)
        text += declared.detail(record)
    return text if len(text) <= 60 else text[:59] + "…"


def version_list(numbers: Sequence[int]) -> str:
    """v1, v2, v5 (the first and last few when there are many)."""
    if not numbers:
        return "-"
    named = [f"v{n}" for n in numbers]
    return ", ".join(named) if len(named) <= 4 else f"{named[0]}, {named[1]} … {named[-1]} ({len(named)})"


def run_state(record: JobRecord) -> str:
    """The latest run in a few words: Running 42% dataset, Failed (InvalidInput), Succeeded."""
    run = record.latest_run
    if run.phase in ("Pending", "Running"):
        stage = f" {run.stage}" if run.stage else ""
        return f"{run.phase} {run.progress}%{stage}"
    if run.phase == "Failed" and run.error is not None:
        return f"Failed ({run.error.reason})"
    if run.phase == INTERRUPTED:  # where it was: the next `contentgen run` resumes it from there
        return f"{run.phase} at {run.progress}%{f' {run.stage}' if run.stage else ''}"
    return run.phase


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def records_table(records: Sequence[JobRecord]) -> str:
    """STATUS is the record's status (what --status matches), LATEST RUN the latest run (--run)."""
    header = ("ID", "TYPE", "NAME", "OWNER", "STATUS", "VERSIONS", "LATEST RUN", "CREATED", "SIZE", "DETAIL")
    rows = [
        (
            r.id,
            r.type,
            f"{r.namespace}/{r.name}",
            r.owner,
            r.status,
            version_list([v.version for v in getattr(r, "versions", [])]),
            run_state(r),
            _time(r),
            human_bytes(r.total_bytes),
            detail(r),
        )
        for r in records
    ]
    return table(rows, header)


def _scalar(value: Any) -> str:
    """A value for people, never Python's notation: nothing as "-", yes/no, a mapping as
    key=value pairs (nested ones in parentheses), a list comma-separated."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_nested(v)}" for k, v in value.items()) if value else "-"
    if isinstance(value, list):
        return ", ".join(_nested(v) for v in value) if value else "-"
    return str(value)


def _nested(value: Any) -> str:
    shown = _scalar(value)
    return f"({shown})" if isinstance(value, dict | list) and value else shown


# What `assets get -o table` leaves to --detail (DETAIL_FLAG): the record's bookkeeping and every
# stored object, which JSON (-o json) always has. Fields in SHOWN_WHEN_SET show when they hold
# something (a deletion, shares).
DETAIL_FLAG = "--detail"
DETAIL_ONLY = frozenset(
    {"type", "updatedAt", "completedAt", "runs", "olderRuns", "olderDeletedVersions", "artifacts", "cost"}
    | {"totalBytes", "dataset"}
    | {"video", "image"}  # the latest version's clip and picture, which its line in `versions` says
)
SHOWN_WHEN_SET = frozenset({"deleted", "deletedAt", "deletedVersions", "shares"})


def record_block(record: JobRecord, *, detail: bool = False) -> str:
    """One record for people. The essentials (what it is, its latest run, its versions with what
    each made, a LoRA version's likeness and checkpoints, what it stored and cost, in a line each),
    or with `detail` every field, nested lists (artifacts, versions, images) indented."""
    data = record.wire()
    shown = {
        key: value
        for key, value in data.items()
        if detail
        or (key not in DETAIL_ONLY and (key not in SHOWN_WHEN_SET or value not in (None, "", [], {})))
    }
    lines = []
    width = max(len(k) for k in data)
    for key, value in shown.items():
        if key == "latestRun" and isinstance(value, dict):
            lines.append(f"{key.ljust(width)}  {run_summary(value, data)}")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f"{key}:")
            lines += [f"  - {_describe(item, detail=detail)}" for item in value]
        else:
            lines.append(f"{key.ljust(width)}  {_scalar(value)}")
    if not detail:
        lines += [f"{key.ljust(width)}  {said}" for key, said in _in_brief(data)]
    return "\n".join(lines)


def _in_brief(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The lines that stand for the fields DETAIL_ONLY leaves out: what it stored, its cost."""
    objects = data.get("artifacts") or []
    stored = (
        f"{len(objects)} objects, {human_bytes(int(data.get('totalBytes') or 0))} ({DETAIL_FLAG} lists them)"
    )
    cost = data.get("cost") or {}
    spent = f"${float(cost.get('actualUsd') or 0):.2f} spent"
    if cost.get("estimatedUsd") is not None:
        spent += f" (estimated ${float(cost['estimatedUsd']):.2f})"
    return [("stored", stored), ("cost", spent)]


def run_summary(run: dict[str, Any], record: dict[str, Any]) -> str:
    """The latest run in one line, as a run beside the versions that stand: "v2 Failed
    (InvalidInput): source file ... does not exist; v1 stands (the record's versions are usable)".
    The error's message is the run's, said once, without the reason repeated before it."""
    phase = str(run.get("phase") or "-")
    text = f"v{run.get('version', 0)} {phase}{_how_it_went(run, phase)}"
    if run.get("startedAt"):
        text += f", started {run['startedAt']}"
    usable = [f"v{v.get('version')}" for v in record.get("versions") or []]
    if phase != "Succeeded" and usable:
        text += f"; {', '.join(usable)} {'stands' if len(usable) == 1 else 'stand'}, usable"
    return text


def _how_it_went(run: dict[str, Any], phase: str) -> str:
    """Why a failed run failed; where a run under way is; where an interrupted one stopped and what
    it keeps; nothing for the others."""
    if phase in ("Pending", "Running"):
        said = training_words(run.get("training") or {})
        return f" ({run.get('stage') or '-'}, {run.get('progress') or 0} %{': ' + said if said else ''})"
    if phase == INTERRUPTED:  # "v1 Interrupted by Ctrl-C at step 372 of 1000 (train): ..."
        said = str(run.get("message") or (run.get("error") or {}).get("message") or "")
        return (
            f" {said.removeprefix('interrupted ')}" if said.startswith("interrupted ") else f": {said or '-'}"
        )
    if phase != "Failed":
        return ""
    reason = str(run.get("reason") or "")
    message = str(run.get("message") or (run.get("error") or {}).get("message") or "")
    message = message.removeprefix(f"{reason}: ") if reason else message
    return (f" ({reason})" if reason else "") + (f": {message}" if message else "")


def _describe(item: dict[str, Any], *, detail: bool = True) -> str:
    """One line for an item of a record's history, versions or outputs (and its checkpoints')."""
    if "version" in item and "phase" in item:  # a run of the history
        error = item.get("error") or {}
        why = f" ({error.get('reason')})" if error else ""
        return f"v{item['version']} {item['phase']}{why}, started {item.get('startedAt') or '-'}"
    if "version" in item and "deletedAt" in item:  # a version whose outputs were removed
        return f"v{item['version']} deleted {item.get('deletedAt')} by {item.get('by') or '-'}"
    head = item.get("uri") or item.get("modelUri") or ""
    if "scale" in item and "version" in item:  # a LoRA a run was made with
        name = item.get("name") or "(by URL)"
        return f"LoRA {name} v{item['version']} {head} (scale {item['scale']})"
    if "version" in item:
        head = f"v{item['version']} ({item.get('createdAt') or '-'}) {_made(item) or head}"
    lines = [*training_lines(item), *checkpoint_lines(item, detail=detail)]
    return _with_details(item, head) + "".join(f"\n    {line}" for line in lines)


def training_lines(version: dict[str, Any]) -> list[str]:
    """What a LoRA version's training went on from and where it stopped early, a line each."""
    lines = []
    going_on = version.get("continuedFrom") or {}
    if going_on:
        lines.append(f"continued from v{going_on.get('version')}, after its step {going_on.get('step')}")
    if version.get("stopped"):
        lines.append(stop_words(version["stopped"]))
    return lines


def _made(version: dict[str, Any]) -> str:
    """What a version made, where it made pictures, a clip or a transcript ("" otherwise)."""
    images = version.get("images") or []
    video = version.get("video") or {}
    transcript = version.get("transcript") or {}
    if images:
        return f"{counted(len(images), 'image')} {images[0].get('uri', '')}"
    if video:
        return _clip(version, video)
    if transcript:
        return f"{transcript.get('wordCount', 0)} words {transcript.get('textUri', '')}"
    return ""


def _clip(version: dict[str, Any], video: dict[str, Any]) -> str:
    shape = f"{video.get('width', 0)}x{video.get('height', 0)} {video.get('codec', '')}"
    text = (
        f"{float(video.get('durationSeconds') or 0):.1f} s video ({video.get('frames', 0)} frames at "
        f"{video.get('fps', 0):g} fps, {shape}) {video.get('uri', '')}"
    )
    picture = version.get("image") or {}
    if picture.get("name"):
        which = f"v{picture.get('version', 0)} image {picture.get('image', 0)}"
        text += f"; animates {picture['name']} {which}"
    if isinstance(video.get("likeness"), dict):
        text += f"; likeness over time {_video_likeness(video['likeness'])}"
    return text


def _with_details(item: dict[str, Any], head: str) -> str:
    """`head` with the item's size, contact sheet, memory plan and likeness, where it has them."""
    size = item.get("sizeBytes")
    text = f"{head} ({human_bytes(int(size))})" if size is not None else str(head)
    if item.get("contactSheetUri"):
        text += f"; contact sheet {item['contactSheetUri']}"
    if item.get("memoryPlan"):
        text += f"; memory plan {item['memoryPlan']}"
    if isinstance(item.get("likeness"), dict):
        automatic = item["likeness"].get("chosenStep")
        of = f" of step {automatic}, the run's choice," if item.get("promotion") and automatic else ""
        text += f"; likeness{of} {likeness_summary(item['likeness'])}"
    if item.get("likenessHistory"):
        text += f" ({verdict_origin(item)})"
    return text


def verdict_origin(version: dict[str, Any]) -> str:
    """Which evaluation a LoRA version's verdict is and what else evaluated it, in words:
    "the verdict of its run's evaluation e0; also e1 good (LoraEvaluation), e2 pictures: alike"."""
    choice = version.get("likenessChoice") or {}
    number = int(version.get("likenessEvaluation") or 0)
    how = {
        "chosen": f"evaluation e{number}, chosen by {choice.get('by') or '-'}",
        "first-measured": f"evaluation e{number}, the first that measured it (its run's measured nothing)",
        "first": f"evaluation e{number}",
    }.get(str(choice.get("how")), f"its run's evaluation e{number}")
    others = [_other_evaluation(entry) for entry in version.get("likenessHistory") or []]
    head = f"the verdict of {how}" if version.get("likeness") else "no verdict on the LoRA"
    return head + (f"; also {', '.join(others)}" if others else "")


def _other_evaluation(entry: dict[str, Any]) -> str:
    """One evaluation of a version's history in words: "e1 good (LoraEvaluation alice-check)"."""
    said = str((entry.get("likeness") or {}).get("verdict") or "-")
    return f"e{entry.get('evaluation', 0)} {said} ({_evaluated_by(entry)})"


def _evaluated_by(entry: dict[str, Any]) -> str:
    if entry.get("source") == "pictures":
        return "outside pictures"
    if (entry.get("resource") or {}).get("name"):
        return f"LoraEvaluation {entry['resource']['name']}"
    return str(entry.get("by") or "run") if entry.get("evaluation") else "run"


def _video_likeness(likeness: dict[str, Any]) -> str:
    """verdict, median, lowest (at when), drift, then the reasons: "good, median 0.65, lowest 0.59
    at 1.8 s, drift 0.06 (the face is the person ...)"."""
    parts = [str(likeness.get("verdict") or "-")]
    for label, key in (("median", "median"), ("lowest", "lowest"), ("drift", "drift")):
        if likeness.get(key) is not None:
            parts.append(f"{label} {float(likeness[key]):.2f}")
            if key == "lowest" and likeness.get("lowestAtSeconds") is not None:
                parts[-1] += f" at {float(likeness['lowestAtSeconds']):.1f} s"
    reasons = "; ".join(str(r) for r in likeness.get("reasons") or [])
    return ", ".join(parts) + (f" ({reasons})" if reasons else "")


def curve_of(version: dict[str, Any]) -> dict[str, Any]:
    """The likeness report of a LoRA version that has its checkpoints' curve: the newest
    evaluation's, or its run's own where a re-evaluation (of the model alone) came after it."""
    reports = [version.get("likeness")] + [h.get("likeness") for h in version.get("likenessHistory") or []]
    return next((r for r in reports if isinstance(r, dict) and r.get("checkpoints")), {})


def checkpoint_lines(version: dict[str, Any], *, detail: bool = True) -> list[str]:
    """A version's likeness per checkpoint, one line each: the run's automatic choice marked *, a
    step a person promoted since (the version's model then) marked >. Nothing measured is said
    so, never drawn as a number."""
    curve = curve_of(version)
    if not curve:
        return []
    chosen = version.get("promotion") or {}
    lines = [_curve_head(version, curve, promoted=bool(chosen), detail=detail)]
    if chosen:
        lines.append(_promoted(chosen))
    for point in curve["checkpoints"]:
        median = point.get("median")
        shown = f", median {median:.2f}" if median is not None else ", no median"
        mark = ">" if chosen and point["step"] == chosen["step"] else "*" if point.get("chosen") else " "
        lines.append(f"{mark} step {point['step']}: {point['verdict']}{shown}")
    if chosen and detail:
        lines.append(f"  the run's automatic choice, *, as the run said it: {curve.get('choice') or '-'}")
    return lines


def _curve_head(version: dict[str, Any], curve: dict[str, Any], *, promoted: bool, detail: bool) -> str:
    """Which checkpoint is the model and why, where the run's choice stands; once a person promoted
    another step, only how many were scored (the next line says which is the model)."""
    count = len(curve.get("checkpoints") or [])
    head = f"checkpoints scored: {count}" if promoted else f"checkpoints scored: {curve.get('choice') or '-'}"
    final = version.get("finalModelUri")
    if (
        detail
        and final
        and final not in (version.get("modelUri"), (version.get("promotion") or {}).get("modelUri"))
    ):
        head += f"; the last step's LoRA {final}"
    if curve.get("clipFrames"):  # a video LoRA's checkpoints: clips, each scored on frames across it
        head += f"; each scored on its clips, {curve['clipFrames']} frames across each"
    if curve.get("checkpointsGridUri"):
        head += f"; side by side {curve['checkpointsGridUri']}"
    return head


def _promoted(chosen: dict[str, Any]) -> str:
    """The line of a checkpoint people promoted to be the version's model."""
    how = (
        f"chosen by {chosen.get('by') or '-'} (promotion p{chosen['promotion']}"
        if chosen.get("promotion")
        else "chosen by the annotation contentgen.io/promoted-checkpoints ("
    )
    note = f': "{chosen["note"]}"' if chosen.get("note") else ""
    return f"> the model is step {chosen['step']}'s, {how}{note}; the automatic choice, *, is kept)"


# --- a training as it goes, and where it stopped: `contentgen run`, `assets get` (-w, table) --------

STOPPED_BY = {"plateau": "its likeness stopped rising", "budget": "its budget", "asked": "asked to stop"}


def duration(seconds: float) -> str:
    """A time left in words: 40 s, 12 min, 1.5 h."""
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def training_words(training: dict[str, Any]) -> str:
    """A training under way as its worker last reported it (status.training, wire form): "step 430
    of 1000, loss 0.1234, about 2 min left" ("" before it reported a step)."""
    if not training.get("steps"):
        return ""
    said = [f"step {training.get('step', 0)} of {training['steps']}"]
    loss = training.get("loss") or []
    if loss:
        said.append(f"loss {float(loss[-1]['loss']):.4f}")
    if training.get("etaSeconds") is not None:
        said.append(f"about {duration(float(training['etaSeconds']))} left")
    return ", ".join(said)


def checkpoint_words(point: dict[str, Any]) -> str:
    """A checkpoint as it is scored: "checkpoint 250: good, median 0.56 (the best so far)"."""
    measured = point.get("median") is not None
    median = f", median {float(point['median']):.2f}" if measured else ""
    best = " (the best so far)" if point.get("chosen") and measured else ""
    return f"checkpoint {point['step']}: {point.get('verdict')}{median}{best}"


def stop_words(stopped: dict[str, Any]) -> str:
    """Where and why a training stopped before its last step and what that saved (a version's
    `stopped`, wire form): "stopped at step 800 of 1000 (its likeness stopped rising): ...; 200
    steps not run"."""
    how = STOPPED_BY.get(str(stopped.get("how")), str(stopped.get("how") or "-"))
    head = f"stopped at step {stopped.get('step')} of {stopped.get('plannedSteps')} ({how})"
    why = f": {stopped['why']}" if stopped.get("why") else ""
    saved = f"saved {counted(int(stopped.get('stepsSaved') or 0), 'step')}"
    if stopped.get("gpuSecondsSaved") is not None:
        saved += f", {float(stopped['gpuSecondsSaved']):.0f} GPU-seconds"
        if stopped.get("savedUsd") is not None:
            saved += f" (${float(stopped['savedUsd']):.2f})"
    return f"{head}{why}; {saved}"


# --- which version a loraRef without `version` uses -------------------------------------------------


def _likeness_key(version: dict[str, Any]) -> tuple[bool, float] | None:
    """How a version's likeness ranks (a good verdict first, then the median); None unmeasured."""
    likeness = version.get("likeness") or {}
    if likeness.get("median") is None:
        return None
    return likeness.get("verdict") == "good", float(likeness["median"])


def _likeness_brief(version: dict[str, Any]) -> str:
    likeness = version.get("likeness") or {}
    if not likeness.get("verdict"):
        return "not evaluated"
    median = f", median {float(likeness['median']):.2f}" if likeness.get("median") is not None else ""
    return f"likeness {likeness['verdict']}{median}"


def latest_lora_words(name: str, used: int, versions: list[dict[str, Any]]) -> str:
    """Which version a loraRef without `version` resolved to and why (its LoraTraining's latest
    usable version, the documented rule), and, where an earlier version scored better, which one and
    how to use it instead: said where a picture or clip is made with it."""
    entry = next((v for v in versions if int(v.get("version") or 0) == used), {})
    about = _likeness_brief(entry)
    chosen = promoted(entry) or {}
    if chosen.get("step"):  # a person made a checkpoint its model: the likeness is the run's choice's
        scored = (entry.get("likeness") or {}).get("chosenStep")
        of = f" of step {scored}" if scored else ""
        about = f"its model step {chosen['step']}'s LoRA, promoted; {about}{of}"
    said = f"loraRef {name!r} (no version) uses v{used}, its latest version ({about})"
    mine = _likeness_key(entry)
    ranked = [(k, v) for v in versions if (k := _likeness_key(v)) is not None and v is not entry]
    better = max(ranked, key=lambda kv: (kv[0], int(kv[1].get("version") or 0)), default=None)
    if better is not None and (mine is None or better[0] > mine):
        number = int(better[1].get("version") or 0)
        said += (
            f"; v{number} scored better ({_likeness_brief(better[1])}): pin loraRef.version: {number} "
            "to use it"
        )
    return said


# A scoring of outside pictures says whether those pictures look like the subject, not a verdict.
PICTURES_SAY = {
    "alike": "these pictures look like the subject",
    "unlike": "these pictures do not look like the subject",
}


def likeness_summary(likeness: dict[str, Any]) -> str:
    """A version's likeness report in one line (docs/likeness.md): the verdict, the median on the
    version's own scale with both its ends named, and every reason the verdict has."""
    verdict = PICTURES_SAY.get(str(likeness.get("verdict", "-")), str(likeness.get("verdict", "-")))
    reasons = "; ".join(str(r) for r in likeness.get("reasons") or [])
    if likeness.get("median") is None:
        return verdict + (f" ({reasons})" if reasons else "")
    text = f"{verdict}, median {likeness['median']:.2f}"
    if likeness.get("percent") is not None:
        text += f" ({likeness['percent']:.0f} % {scale_words(likeness)})"
    text += f"; {reasons}" if reasons else ""
    if likeness.get("gridUri"):
        text += f"; grid {likeness['gridUri']}"
    return text


def scale_words(likeness: dict[str, Any]) -> str:
    """The ends of a report's `percent` scale in words (pipeline/likeness/score.scale_of)."""
    base, bound = likeness.get("baselineMedian"), likeness.get("upperBound")
    low = f"{base:.2f} without the LoRA" if base is not None else f"{DIFFERENT:.2f} two strangers"
    low_value = DIFFERENT if base is None else base
    if bound is not None and bound > low_value:
        high = f"{bound:.2f} the subject's own photographs"
    else:
        high = f"{max(SAME, low_value):.2f} two pictures of one person"
    return f"of the way from {low} to {high}"


def _amounts(values: dict[str, float]) -> str:
    return ", ".join(f"{key} ${usd:.2f}" for key, usd in values.items()) or "-"


def stats_block(stats: Stats) -> str:
    rows = [
        ("owner", stats.owner or "(all)"),
        ("total jobs", str(stats.total_jobs)),
        ("by type", ", ".join(f"{t} {n}" for t, n in stats.by_type.items())),
        ("by status", ", ".join(f"{s} {n}" for s, n in stats.by_status.items())),
        ("versions", f"{stats.total_versions} usable"),
        ("  by type", ", ".join(f"{t} {n}" for t, n in stats.versions_by_type.items())),
        ("total size", f"{human_bytes(stats.total_bytes)} ({stats.total_bytes} bytes)"),
        ("monthly cost", f"${stats.estimated_monthly_cost:.6f} at ${stats.price_per_gb_month} per GB-month"),
        ("spend", f"${stats.spend.total_usd:.2f} at the providers"),
        ("  by owner", _amounts(stats.spend.by_owner)),
        ("  by type", _amounts(stats.spend.by_type)),
        ("  by month", _amounts(stats.spend.by_month)),
    ]
    return "\n".join(f"{key:<14}{value}" for key, value in rows)


def lineage_block(found: Lineage) -> str:
    """Lineage as an indented tree: a record, what it came from, what was made from it."""
    lines = [f"{found.kind} {found.namespace}/{found.name} ({found.id}, {found.status})"]
    if found.source_url:
        lines.append(f"  source {found.source_url}")
    for use in found.loras:
        lines += _lora_lines(use, "  ", unseen=not use.found)
    declared = CATALOG_KINDS.get(found.kind)
    if not found.loras and declared is not None and declared.without_loras:
        lines.append(f"  {declared.without_loras}")
    for picture in found.pictures:
        lines += _picture_lines(picture)
    for version in found.versions:
        lines += _version_lines(version)
    return "\n".join(lines)


def _lora_lines(use: LoraUse, indent: str, *, unseen: bool = False) -> list[str]:
    """A LoRA a run used (the checkpoint, who had chosen it, and which of the run's versions),
    back to its dataset and source video; `unseen`: its record is not visible."""
    name = use.name or (use.lora.name if use.lora else "") or "(by URL)"
    step = ""
    if use.step is not None:
        chosen = use.promotion
        how = "the automatic choice"
        if chosen is not None:
            how = f"promoted by {chosen.by or '-'}" + (f", p{chosen.promotion}" if chosen.promotion else "")
        step = f" step {use.step} ({how})"
    made = f", by its v{', v'.join(str(n) for n in use.used_by)}" if use.used_by else ""
    lines = [f"{indent}made with LoRA {name} {use.uid or '-'} v{use.version}{step} (scale {use.scale}){made}"]
    if unseen:
        lines.append(f"{indent}  weights {use.uri} (no record of it visible here)")
    if use.trained is not None:
        lines.append(f"{indent}  dataset {use.trained.dataset_uri or '-'} ({use.trained.frames} images)")
        lines.append(f"{indent}  source  {use.trained.source_url or '-'}")
    return lines


def _picture_lines(picture: PictureUse) -> list[str]:
    """The picture a video animates, back to the run that made it and its LoRAs."""
    made = (
        f"{picture.name} {picture.uid} v{picture.version} image {picture.image}"
        if picture.uid
        else "(by URL)"
    )
    unseen = "" if picture.found or not picture.uid else " (no record of it visible here)"
    lines = [f"  animates picture {made}", f"    picture {picture.uri}{unseen}"]
    for use in picture.loras:
        lines += _lora_lines(use, "    ")
    return lines


def _version_lines(version: VersionLineage) -> list[str]:
    """A LoRA's version, what it was trained from, and the image and video generations made with it
    (a clip with its likeness over time)."""
    lines = [
        f"  v{version.version} {version.model_uri}",
        f"    dataset {version.dataset_uri or '-'} ({version.frames} images)",
        f"    source  {version.source_url or '-'}",
    ]
    if version.contact_sheet_uri:
        lines.append(f"    contact sheet {version.contact_sheet_uri}")
    lines += [
        f"    image generation {run.namespace}/{run.name} ({run.id}, {run.status}): {run.prompt}"
        for run in version.images
    ]
    for video in version.clips:
        made = f"{video.namespace}/{video.name} ({video.id}, {video.status})"
        lines.append(f"    video generation {made}: {video.prompt}")
        lines += [
            f"      v{clip.version} {clip.uri}; likeness over time {_video_likeness(clip.likeness)}"
            for clip in video.clips
            if clip.likeness
        ]
    if not version.images and not version.clips:
        lines.append("    nothing made with it yet")
    return lines
