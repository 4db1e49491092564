"""Which of a LoRA version's evaluations is its verdict (docs/likeness.md#one-verdict-per-version):
pure functions over a version entry as the catalog stores it (evaluations.py keeps the history)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contentgen.api.lora import VERDICTS_ANNOTATION

# What a verdict that measured something says; no-faces, unmeasured and skipped measured nothing.
MEASURED = ("good", "poor")
PICTURES = "pictures"


def evaluations_of(version: dict[str, Any]) -> list[dict[str, Any]]:
    """Every evaluation of a version, oldest first: its run's own (number 0, where it has a report)
    and its re-evaluations and scorings as recorded."""
    own = version.get("likeness")
    first = (
        [{"evaluation": 0, "at": version.get("createdAt"), "likeness": own}] if isinstance(own, dict) else []
    )
    return [*first, *(version.get("evaluations") or [])]


def measured(entry: dict[str, Any]) -> bool:
    return str((entry.get("likeness") or {}).get("verdict")) in MEASURED


Verdict = tuple[dict[str, Any], dict[str, Any]]  # the evaluation, and how it was chosen


def verdict_of(version: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Which evaluation is the version's verdict, and why (`choice`: {how, evaluation, and who
    chose it where a person did}). A verdict is about the LoRA's own pictures: a scoring of pictures
    made elsewhere never is one. In order: the evaluation a person chose (in a cluster the
    LoraTraining's annotation, `verdictChoice`; on a laptop the newest choice, `verdictChoices`);
    else the run's own where it measured something; else the first generated evaluation that did
    (a version whose run was not evaluated, skipped or saw no face); else the run's own report, or
    the first generated evaluation, though they measured nothing. Later evaluations never replace it
    silently: they are in the history for a person to choose."""
    entries = [e for e in evaluations_of(version) if e.get("source") != PICTURES]
    return (
        _chosen(version, entries)
        or _first(entries, "first-measured", measured)
        or _first(entries, "first")
        or (None, {})
    )


def _chosen(version: dict[str, Any], entries: list[dict[str, Any]]) -> Verdict | None:
    """The evaluation a person chose: in a cluster the LoraTraining's annotation's (the status's
    `verdictChoice`, which the operator follows where the evaluation can be a verdict; checked here
    again, for a choice it followed without the record at hand), else the newest choice of one that
    is there (a laptop's, `verdictChoices`)."""
    by_number = {_number(e): e for e in entries}
    asked = version.get("verdictChoice")
    if isinstance(asked, dict) and not choosable(version, int(asked.get("evaluation") or 0)):
        annotated = by_number[int(asked.get("evaluation") or 0)]
        said = {k: asked[k] for k in ("by", "at", "note") if asked.get(k)}
        how = {"how": "chosen", "evaluation": annotated["evaluation"], "annotation": VERDICTS_ANNOTATION}
        return annotated, {**how, **said}
    for choice in reversed(version.get("verdictChoices") or []):
        chosen = by_number.get(int(choice.get("evaluation") or 0))
        if chosen is not None:
            said = {k: choice[k] for k in ("choice", "by", "at", "note") if k in choice}
            return chosen, {"how": "chosen", "evaluation": chosen["evaluation"], **said}
    return None


def _first(
    entries: list[dict[str, Any]], how: str, which: Callable[[dict[str, Any]], bool] | None = None
) -> Verdict | None:
    """The first evaluation (of those `which` holds of): the run's own (number 0), else a
    generated one, chosen `how`."""
    found = next((e for e in entries if which is None or which(e)), None)
    if found is None:
        return None
    return found, {"how": "run" if _number(found) == 0 else how, "evaluation": _number(found)}


def _number(entry: dict[str, Any]) -> int:
    return int(entry.get("evaluation") or 0)


def choosable(version: dict[str, Any], number: int) -> str:
    """Why evaluation `number` cannot be chosen as the version's verdict ('' where it can)."""
    entries = {int(e.get("evaluation") or 0): e for e in evaluations_of(version)}
    entry = entries.get(number)
    if entry is None:
        have = ", ".join(f"e{n}" for n in sorted(entries)) or "none"
        return (
            f"evaluation: e{number} is not an evaluation of version {version.get('version')} (it has: {have})"
        )
    if entry.get("source") == PICTURES:
        return (
            f"evaluation: e{number} scored pictures made elsewhere: it says whether those pictures look like "
            "the subject, not what the LoRA draws; choose an evaluation of pictures the LoRA generated"
        )
    if not measured(entry):
        verdict = (entry.get("likeness") or {}).get("verdict")
        return f"evaluation: e{number} measured nothing ({verdict}): it cannot be a verdict"
    return ""
