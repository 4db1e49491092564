"""Evaluating a stored LoRA version again, as `contentgen assets evaluate` and the HTTP API do it:
one at a time per version on this machine (a lock in the work folder), the earlier attempts'
unrecorded evaluations recorded first, the budget checked against the estimate before anything
is paid, then the evaluation (reevaluate.py) and its record in the catalog (catalog/evaluations.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from contentgen.api import UsageLine
from contentgen.catalog import Catalog
from contentgen.catalog.evaluations import record_evaluation
from contentgen.pricing import Budgets, PriceTable, Spender, exceeded, limits, month_of
from contentgen.providers import image_generator
from contentgen.store import ObjectStore

from ..local_run import RunLock
from .reevaluate import Estimate, Target, claim, estimate, run, unrecorded

BUDGET_SOURCE = "CONTENTGEN_BUDGETS"
# Who claims a number on a laptop: any attempt here resumes one stopped here (the RunLock keeps
# two from going on at once).
LOCAL_CLAIMANT = "local"


class Busy(Exception):
    """Another evaluation of the version goes on on this machine."""


class OverBudget(Exception):
    """The budget cannot cover the estimate; nothing was paid. The message has the numbers."""


@dataclass
class Outcome:
    entry: dict[str, Any]  # the evaluation (evaluation.json), recorded
    number: int
    ran: bool  # False: an earlier attempt had finished it, it was only recorded now
    recorded: bool  # False: the record did not take it (the version was deleted meanwhile)
    adopted: list[int] = field(default_factory=list)  # earlier attempts' evaluations recorded now
    billed: list[UsageLine] = field(default_factory=list)


def spenders(catalog: Catalog) -> list[Spender]:
    """Every record's spend by month (its runs' and its re-evaluations'), deleted ones included:
    the money was spent."""
    rows = catalog.find_raw({}, {"namespace": 1, "owner": 1, "cost": 1, "evaluationCost": 1})
    found = []
    for row in rows:
        months = dict((row.get("cost") or {}).get("byMonth") or {})
        for month, usd in ((row.get("evaluationCost") or {}).get("byMonth") or {}).items():
            months[month] = months.get(month, 0.0) + float(usd)
        found.append(
            Spender(str(row["_id"]), str(row.get("namespace", "")), str(row.get("owner", "")), months, 0.0)
        )
    return found


def over_budget(catalog: Catalog, goal: Target, usd: float, budgets: Budgets, now: datetime) -> str:
    """Why the budgets (CONTENTGEN_BUDGETS) do not cover an evaluation of `usd` this month ("" when
    they do), with the numbers."""
    if usd <= 0 or budgets == Budgets():
        return ""
    month = month_of(now)
    found = exceeded(
        goal.uid,
        goal.namespace,
        goal.owner,
        usd,
        month,
        spenders(catalog),
        limits(budgets, goal.namespace, goal.owner, BUDGET_SOURCE),
    )
    if found is None:
        return ""
    limit, who, used, source = found
    return (
        f"budget: the monthly budget of {who} is ${limit:.2f} ({source}); {month} has spent ${used:.2f} and "
        f"this evaluation is estimated at ${usd:.2f} (${used + usd:.2f} in all); nothing was paid. Raise "
        "the budget, wait for next month, or evaluate with the offline provider"
    )


def priced_lines(provider: str, lines: list[UsageLine], prices: PriceTable) -> list[UsageLine]:
    """`lines`, each with its unit price, source and date, as a run's usage is priced: the
    provider's pricing API where it has one, else the price table (`prices`)."""
    from contentgen.pricing import stamped
    from contentgen.providers import price_quotes

    wanted = {(line.item, line.unit) for line in lines if line.provider == provider}
    return stamped(lines, price_quotes(provider, wanted) if wanted else {}, prices)


def evaluate_again(
    catalog: Catalog,
    store: ObjectStore,
    goal: Target,
    *,
    prices: PriceTable,
    budgets: Budgets,
    work_dir: Path,
    presign_seconds: int,
    by: str,
    now: Callable[[], datetime],
    progress: Callable[[float], None] = lambda _: None,
    planned: Estimate | None = None,
) -> Outcome:
    """Evaluate `goal` (see the module). Busy when another evaluation of the version goes on here,
    OverBudget when the budget cannot cover it; provider and store errors as the pipeline raises
    them (what was paid stays in the checkpoints, for the next attempt)."""
    lock = RunLock(work_dir, f"{goal.uid}-likeness-v{goal.version}")
    if not lock.acquire():
        raise Busy(f"v{goal.version} of {goal.uid} is being evaluated on this machine already: wait for it")
    try:
        earlier = unrecorded(store, goal)  # finished before, not recorded: record, never redo
        for entry in earlier:
            record_evaluation(catalog, goal.uid, entry, now=now())
        adopted = [int(e["evaluation"]) for e in earlier]
        same = [e for e in earlier if goal.same_request(e)]
        if same:
            return Outcome(same[-1], int(same[-1]["evaluation"]), ran=False, recorded=True, adopted=adopted)
        cost = planned or estimate(store, goal, prices)
        refusal = over_budget(catalog, goal, cost.usd, budgets, now())
        if refusal:
            raise OverBudget(refusal)
        number = claim(store, goal, LOCAL_CLAIMANT)
        billed: list[UsageLine] = []
        work = work_dir / f"{goal.uid}-likeness-v{goal.version}-e{number}"
        try:
            entry = run(
                image_generator(goal.provider),
                store,
                goal,
                number,
                work,
                progress,
                billed,
                presign_seconds=presign_seconds,
                prices=prices,
                by=by,
                at=now(),
                stamp=lambda lines: priced_lines(goal.provider, lines, prices),
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        recorded = record_evaluation(catalog, goal.uid, entry, now=now())
        return Outcome(entry, number, ran=True, recorded=recorded, adopted=adopted, billed=billed)
    finally:
        lock.release()
