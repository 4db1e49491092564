"""A LoRA version's likeness history: its re-evaluations (`contentgen assets evaluate`,
pipeline/likeness/reevaluate.py), kept in the record beside what its run reported.

In the document each version keeps `evaluations`, oldest first: {evaluation (its number), at, by,
provider, promptSet, seeds, costUsd, costDetail, usage, likeness, artifacts}; what the run
reported stays the version's `likeness` (a status write never changes the history). The record a
reader gets shows the version's verdict as its `likeness` (`verdict_of`: its run's own, unless a
person chose another) and lists every other evaluation, the run's first, in `likenessHistory`
(records.py, `presented`). What the re-evaluations cost is the record's
`evaluationCost.byMonth`, apart from `cost` (the resource's status.cost, which the operator
writes): it stays when versions are deleted, as spent money does. An evaluation a LoraEvaluation
made names it (`resource`): its cost is that resource's, counted in its own record, not again here.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from contentgen.api import parse_timestamp
from contentgen.api.versions import version_entry

from .base import Catalog
from .document import summarize
from .migrate import SCHEMA, upgrade

# Re-evaluations a version keeps in full in the record; older ones stay in the store
# (likeness/e{k}/evaluation.json) and are counted in `olderEvaluations`.
MAX_EVALUATIONS = 20
# Verdict choices a version keeps in the record (each is stored too: likeness/choices/c{k}.json).
MAX_CHOICES = 20


def with_verdict_choice(
    doc: dict[str, Any], entry: dict[str, Any], *, now: datetime
) -> dict[str, Any] | None:
    """`doc` with `entry` ({choice, version, evaluation, by, at, note}) added to its version's
    verdict choices (None: the version is gone, or the choice is recorded already)."""
    new = copy.deepcopy(upgrade(doc))
    version = version_entry(new, entry["version"])
    if version is None:
        return None
    choices = list(version.get("verdictChoices") or [])
    if any(c.get("choice") == entry["choice"] for c in choices):
        return None
    stored = entry.get("object")
    version["verdictChoices"] = [*choices, {k: v for k, v in entry.items() if k != "object"}][-MAX_CHOICES:]
    if stored and stored["uri"] not in {a.get("uri") for a in version.get("artifacts") or []}:
        version["artifacts"] = [*(version.get("artifacts") or []), stored]
    new.update(schema=SCHEMA, rev=int(doc.get("rev") or 0) + 1, updatedAt=now)
    return summarize(new)


def record_verdict_choice(catalog: Catalog, uid: str, entry: dict[str, Any], *, now: datetime) -> bool:
    """Write `entry` into the record `uid` (a conditional write, retried on a race); whether it was."""
    written = [False]

    def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current is None:
            return None
        new = with_verdict_choice(current, entry, now=now)
        written[0] = new is not None
        return new

    catalog.modify(uid, change)
    return written[0]


def with_evaluation(doc: dict[str, Any], entry: dict[str, Any], *, now: datetime) -> dict[str, Any] | None:
    """`doc` (as stored) with re-evaluation `entry` (evaluation.json's content) of its version;
    None when the record holds it already (recorded once, whoever records it) or no longer has
    that version (deleted since: its evaluation went with it, its cost stays counted)."""
    new = copy.deepcopy(upgrade(doc))
    number, wanted = int(entry["evaluation"]), int(entry["version"])
    version = version_entry(new, wanted)
    cost, key = dict(new.get("evaluationCost") or {}), f"v{wanted}/e{number}"
    owned = bool(entry.get("resource"))  # a LoraEvaluation's: its own record counts what it cost
    if version is not None and _recorded(version, number):
        return None
    if version is None and (key in (cost.get("counted") or []) or owned):
        return None
    at = parse_timestamp(entry.get("at")) or now
    new["evaluationCost"] = cost if owned else _counted(cost, key, entry, at)
    if version is not None:
        _kept(version, {**entry, "at": at})
    new.update(schema=SCHEMA, rev=int(doc.get("rev") or 0) + 1, updatedAt=now)
    return summarize(new)


def _recorded(version: dict[str, Any], number: int) -> bool:
    """Whether the version's evaluations hold evaluation `number` already."""
    return any(int(e.get("evaluation") or 0) == number for e in version.get("evaluations") or [])


def _counted(cost: dict[str, Any], key: str, entry: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The record's evaluation cost with `entry`'s counted in its month, once (by `key`)."""
    counted = list(cost.get("counted") or [])
    if key in counted:
        return cost
    month = at.strftime("%Y-%m")
    by_month = dict(cost.get("byMonth") or {})
    by_month[month] = round(by_month.get(month, 0.0) + round(float(entry.get("costUsd") or 0.0), 6), 6)
    return {"byMonth": by_month, "counted": [*counted, key][-200:]}


def _kept(version: dict[str, Any], kept: dict[str, Any]) -> None:
    """`kept` appended to the version's evaluations (the oldest beyond MAX_EVALUATIONS counted,
    not kept) and its artifacts to the version's, each listed once."""
    history = [*(version.get("evaluations") or []), kept]
    extra = max(0, len(history) - MAX_EVALUATIONS)
    version["evaluations"] = history[extra:]
    version["olderEvaluations"] = int(version.get("olderEvaluations") or 0) + extra
    listed = {a["uri"] for a in version.get("artifacts") or []}
    version["artifacts"] = [
        *(version.get("artifacts") or []),
        *(a for a in kept.get("artifacts") or [] if a["uri"] not in listed),
    ]


def record_evaluation(catalog: Catalog, uid: str, entry: dict[str, Any], *, now: datetime) -> bool:
    """Write `entry` into the record `uid` (a conditional write, retried on a race); whether it
    was written (False: recorded already, or the record or version is gone)."""
    written = [False]

    def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current is None:
            return None
        new = with_evaluation(current, entry, now=now)
        written[0] = new is not None
        return new

    catalog.modify(uid, change)
    return written[0]
