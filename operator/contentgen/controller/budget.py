"""Monthly budgets per namespace and per owner: whether a resource may start its Job now.

Pure: the limits come from the operator settings (`CONTENTGEN_BUDGETS`) or from the namespace's
`contentgen.io/budget` annotation, the spend from the resources' `status.cost`, and the answer is
a message (why it waits) or "" (it may start). A resource over budget stays Pending with
Stalled=True and reason BudgetExceeded; the operator looks again on its timer, so it starts by
itself when the month turns, the budget is raised or spend is released.

Spend in a month, for a namespace (or an owner, over all namespaces) is what the resources' runs
started that month cost (`status.cost.byMonth`: the actual cost, or the estimate when unknown),
plus the estimate of every run under way (its Job exists and has not been recorded), plus the
estimate of the run that asks to start. Resources deleted from the cluster no longer count here
(the catalog's stats still show what they spent).

A LoraTraining's estimate includes its likeness evaluation (docs/likeness.md). When the training
alone fits but not with its evaluation, the run starts without the evaluation and says why
(`admit` → `Admission.skip_evaluation`) instead of waiting: an unmeasured version is still a
usable one, a version not trained is lost time.

The annotation: a number is the namespace's monthly budget in USD ("250"); or comma-separated
`namespace=USD` and `owner=USD` ("namespace=250,owner=40"). It overrides the settings for that
namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass
from typing import Any

from contentgen.api import Cost
from contentgen.pricing import Budgets, Limits, Spender, exceeded, headroom, limits

from .objects import CustomResource
from .status import read_common, ready_reason

__all__ = ["ANNOTATION", "Admission", "Budgets", "Limits", "Spender"]

ANNOTATION = "contentgen.io/budget"
# Ready reasons of a resource whose Job exists but whose run is not recorded yet.
_UNDER_WAY = frozenset({"JobCreated", "Running", "PodNotStarting", "NodeLost", "SpecChanged"})


def parse_annotation(value: str) -> tuple[float | None, float | None]:
    """(namespace USD, owner USD) of a `contentgen.io/budget` value; ValueError when unreadable."""
    text = value.strip()
    try:
        return _amount(text), None
    except ValueError:
        pass
    namespace: float | None = None
    owner: float | None = None
    for part in text.split(","):
        key, sep, amount = part.partition("=")
        key = key.strip()
        if not sep or key not in ("namespace", "owner"):
            raise ValueError(
                f"{ANNOTATION}={value!r}: write a monthly USD amount (250) or namespace=USD,owner=USD"
            )
        if key == "namespace":
            namespace = _amount(amount)
        else:
            owner = _amount(amount)
    return namespace, owner


def _amount(text: str) -> float:
    amount = float(text.strip().removeprefix("$"))
    if not amount >= 0 or amount == float("inf"):
        raise ValueError(f"not a budget: {text!r}")
    return amount


def limits_for(namespace: str, owner: str, budgets: Budgets, annotation: str | None = None) -> Limits:
    """The limits for a resource of `owner` in `namespace`. A malformed annotation is ignored and
    the settings apply (the operator logs it; see `annotation_problem`)."""
    ns_limit, owner_limit, ns_from, owner_from = astuple(
        limits(budgets, namespace, owner, "operator settings")
    )
    if annotation:
        try:
            ns_note, owner_note = parse_annotation(annotation)
        except ValueError:
            ns_note = owner_note = None
        if ns_note is not None:
            ns_limit, ns_from = ns_note, f"annotation {ANNOTATION} on namespace {namespace}"
        if owner_note is not None:
            owner_limit, owner_from = owner_note, f"annotation {ANNOTATION} on namespace {namespace}"
    return Limits(ns_limit, owner_limit, ns_from, owner_from)


def annotation_problem(annotation: str | None) -> str:
    """What is wrong with a namespace's budget annotation ("" when nothing is)."""
    if not annotation:
        return ""
    try:
        parse_annotation(annotation)
    except ValueError as exc:
        return str(exc)
    return ""


def spender(body: Mapping[str, Any]) -> Spender:
    """A resource's share, from its body as the API server has it."""
    return share(CustomResource.of(body))


def share(resource: CustomResource) -> Spender:
    """A resource's share, from its body as read (`CustomResource.of`)."""
    status = read_common(resource.status)
    cost = status.cost or Cost()
    under_way = cost.estimated_usd if ready_reason(status) in _UNDER_WAY else 0.0
    return Spender(
        uid=resource.metadata.uid,
        namespace=resource.metadata.namespace,
        owner=str(resource.spec.get("owner", "")),
        by_month=dict(cost.by_month),
        under_way=under_way,
    )


@dataclass(frozen=True)
class Admission:
    """Whether a run may start within its budgets."""

    over: str = ""  # why it may not start ("" when it may)
    skip_evaluation: str = ""  # why it starts without its likeness evaluation ("" when with it)
    # what the monthly budgets leave the run at most, and whose budget that is (a training that
    # trains live stops within it, keeping what it has: SpecSnapshot.budget); None: no limits
    left: tuple[float, str] | None = None


def admit(
    uid: str,
    namespace: str,
    owner: str,
    estimate: float,
    month: str,
    spenders: Iterable[Spender],
    limits: Limits,
    *,
    without_evaluation: float | None = None,
) -> Admission:
    """May a run of `estimate` USD start this month? `without_evaluation`: its estimate without
    the likeness evaluation (None when it has none); when only that fits, it starts without it."""
    spenders = list(spenders)
    left = headroom(uid, namespace, owner, month, spenders, limits)
    full = exceeded(uid, namespace, owner, estimate, month, spenders, limits)
    if full is None:
        return Admission(left=left)
    if without_evaluation is None or without_evaluation >= estimate:
        return Admission(over=_waits(full, month, estimate))
    if (training := exceeded(uid, namespace, owner, without_evaluation, month, spenders, limits)) is not None:
        return Admission(over=_waits(training, month, without_evaluation))
    limit, who, used, source = full
    return Admission(
        left=left,
        skip_evaluation=(
            f"budget: the monthly budget of {who} is ${limit:.2f} ({source}); {month} has spent "
            f"${used:.2f}, the training (${without_evaluation:.2f}) fits but not its likeness "
            f"evaluation (${estimate - without_evaluation:.2f} more), so this version was trained "
            "without it (kept and usable; its likeness is not measured)"
        ),
    )


def _waits(found: tuple[float, str, float, str], month: str, estimate: float) -> str:
    limit, who, used, source = found
    return (
        f"the monthly budget of {who} is ${limit:.2f} ({source}); {month} has spent ${used:.2f} "
        f"and this run is estimated at ${estimate:.2f} (${used + estimate:.2f} in all). It starts by "
        "itself when the budget allows: next month, a higher budget, or less spend under way"
    )
