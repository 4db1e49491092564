"""Owners bound to namespaces: whether a resource's `spec.owner` may be used in its namespace.

Pure, and the same rule as the chart's ValidatingAdmissionPolicy (templates/owner-policy.yaml),
which refuses such a resource at admission; the operator applies it for clusters without the
policy, before a run starts (Pending, Stalled, reason OwnerNotAllowed). The allowed owners of a
namespace are, in order of precedence:

1. its `contentgen.io/owners` annotation: owners separated by commas (spaces around them are
   ignored); `*` allows every owner; an empty annotation allows none;
2. else the chart's `ownerPolicy.namespaces` entry for it (CONTENTGEN_OWNER_POLICY);
3. else the chart's `ownerPolicy.default` (default `["*"]`: any owner where nothing else is said).

A `watchNamespaces` install cannot read Namespace objects: its operator applies 2 and 3 (the
policy, which the API server evaluates, applies 1 too).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

ANNOTATION = "contentgen.io/owners"
ANY = "*"


class OwnerPolicy(BaseModel):
    """CONTENTGEN_OWNER_POLICY: the chart's `ownerPolicy` mapping and default."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    namespaces: dict[str, list[str]] = Field(
        default={}, description="Namespace -> the owners allowed there (where it has no annotation)."
    )
    default: list[str] = Field(
        default=[ANY], description='The owners allowed in other namespaces (["*"]: any; []: none).'
    )


def parse_annotation(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def allowed(namespace: str, annotation: str | None, policy: OwnerPolicy) -> tuple[list[str], str]:
    """The owners allowed in `namespace` and where that comes from, for messages."""
    if annotation is not None:
        return parse_annotation(annotation), f"its annotation {ANNOTATION}"
    if namespace in policy.namespaces:
        return list(
            policy.namespaces[namespace]
        ), f"the chart's ownerPolicy.namespaces (no {ANNOTATION} annotation)"
    return list(policy.default), f"the chart's ownerPolicy.default (no {ANNOTATION} annotation)"


def owner_problem(namespace: str, owner: str, annotation: str | None, policy: OwnerPolicy) -> str:
    """Why `owner` may not be used in `namespace` ("" when it may)."""
    owners, source = allowed(namespace, annotation, policy)
    if ANY in owners or owner in owners:
        return ""
    listed = ", ".join(owners) if owners else "no owner"
    return (
        f"owner {owner!r} is not allowed in namespace {namespace}: {source} allows {listed}. "
        f"An administrator allows it with `kubectl annotate namespace {namespace} "
        f"{ANNOTATION}={','.join([*owners, owner])} --overwrite`; or use an owner the namespace allows"
    )
