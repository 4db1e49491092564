"""Sharing (issue 38): who may see and who may use an asset or a collection, as pure functions.

A grant names a grantee and an access:

    owner:bob=use        bob's resources may name it in a loraRef (a LoRA), and bob sees its record
    owner:bob=read       bob sees its record and downloads its files
    group:artists=read   every identity in the group artists sees it and downloads its files

`use` is use-only: its record is visible (to find it and its versions), its files are not
downloaded. Group grants are read-only: a loraRef is checked against the resource's `spec.owner`,
and a resource has an owner, not groups.

Where grants live (docs/sharing.md): in a cluster, on the shared resource itself, in its annotation
`contentgen.io/shared-with` (`owner:bob=use,group:artists=read`): the operator checks it before it
resolves a loraRef to another owner's LoRA, and mirrors it into the catalog record's `shares`, which
the HTTP API and the CLI read. On a laptop (records `contentgen run` wrote) and for collections
(which are catalog documents), the grants are the document's `shares`, written by `contentgen
assets share` and the HTTP API.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .regex import SPACES

ANNOTATION = "contentgen.io/shared-with"
ACCESSES = ("read", "use")
Access = Literal["read", "use"]
GRANTEE_KINDS = ("owner", "group")
MAX_GRANTS = 100
# An owner (api/common.OWNER_PATTERN) or an identity group (any printable name without , = or space:
# the spaces spelled out, as every engine reads them alike, regex.py).
_OWNER = r"[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?"
_GROUP = rf"[^{SPACES},=]{{1,200}}"
GRANTEE_PATTERN = rf"^(owner:{_OWNER}|group:{_GROUP})$"
# What each kind of grantee may be given, as the HTTP API's document states it (one shape each).
OWNER_GRANTEE_PATTERN = rf"^owner:{_OWNER}$"
GROUP_GRANTEE_PATTERN = rf"^group:{_GROUP}$"
# A collection's name: how it is found (GET /api/collections/NAME), so what a URL's path carries as is.
COLLECTION_NAME_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._-]*$"
COLLECTION_NAME_MAX = 100
COLLECTION_NAME_WORDS = "letters, digits, '.', '_' and '-', starting with a letter or digit"


class BadGrant(ValueError):
    """A grant that cannot be given, with why in one line."""


def collection_name_problem(name: str) -> str | None:
    """What is wrong with `name` as a collection's name, in words; None when nothing is."""
    if (
        not name
        or len(name) > COLLECTION_NAME_MAX
        or re.fullmatch(COLLECTION_NAME_PATTERN[1:-1], name) is None
    ):
        return (
            f"{name!r} cannot name a collection: use {COLLECTION_NAME_WORDS}, at most "
            f"{COLLECTION_NAME_MAX} characters (e.g. waves-and-lighthouses)"
        )
    return None


@dataclass(frozen=True)
class Grant:
    to: str  # owner:NAME or group:NAME
    access: Access
    by: str = ""  # who shared it (the API's caller, the CLI's user); "" from an annotation
    at: str = ""  # when (ISO), "" from an annotation

    @property
    def kind(self) -> str:
        return self.to.split(":", 1)[0]

    @property
    def name(self) -> str:
        return self.to.split(":", 1)[1]

    def wire(self) -> dict[str, Any]:
        return {"to": self.to, "access": self.access, "by": self.by, "at": self.at}


def grantee(text: str) -> str:
    """`bob` (an owner), `owner:bob` or `group:artists`, as a grantee; BadGrant otherwise."""
    value = text.strip()
    if ":" not in value:
        value = f"owner:{value}"
    if re.fullmatch(GRANTEE_PATTERN.strip("^$"), value) is None:
        raise BadGrant(
            f"{text!r} is not a grantee: give an owner (bob, owner:bob: lowercase letters, digits, '.', "
            "'_', '-') or an identity group (group:artists)"
        )
    return value


def grant(to: str, access: str, *, by: str = "", at: str = "") -> Grant:
    """A checked grant: BadGrant for an unknown access, or use given to a group."""
    who = grantee(to)
    if access not in ACCESSES:
        raise BadGrant(f"access {access!r}: give read (see and download) or use (use in a loraRef)")
    if who.startswith("group:") and access == "use":
        raise BadGrant(
            f"{who}: a group is given read only; use is checked against a resource's owner (spec.owner), "
            "so share use with an owner (owner:NAME)"
        )
    return Grant(who, "use" if access == "use" else "read", by=by, at=at)


def parse_annotation(value: str | None) -> tuple[tuple[Grant, ...], str]:
    """The grants of the annotation ANNOTATION (`owner:bob=use, group:artists=read`), and what is
    wrong with it in one line ("" when nothing is). A bad entry is left out; the others hold."""
    if not value or not value.strip():
        return (), ""
    found: dict[str, Grant] = {}
    problems: list[str] = []
    for part in value.split(","):
        entry = part.strip()
        if not entry:
            continue
        to, _, access = entry.partition("=")
        try:
            given = grant(to, access.strip() or "read")
        except BadGrant as exc:
            problems.append(str(exc))
            continue
        found[given.to] = given
    problem = f"annotation {ANNOTATION}: {'; '.join(problems)}" if problems else ""
    return tuple(found.values())[:MAX_GRANTS], problem


def annotation_of(grants: Iterable[Grant]) -> str:
    """The annotation's value for these grants (what `kubectl annotate` is given)."""
    return ",".join(f"{g.to}={g.access}" for g in grants)


def grants_of(doc: Mapping[str, Any] | None) -> tuple[Grant, ...]:
    """A catalog document's `shares` (a record or a collection), skipping what is not a grant."""
    found = []
    for entry in (doc or {}).get("shares") or []:
        try:
            given = grant(str(entry.get("to") or ""), str(entry.get("access") or ""))
        except (BadGrant, AttributeError):
            continue
        found.append(Grant(given.to, given.access, str(entry.get("by") or ""), str(entry.get("at") or "")))
    return tuple(found)


def with_grant(grants: Sequence[Grant], given: Grant) -> tuple[Grant, ...]:
    """`grants` with `given` in place of any earlier grant to the same grantee."""
    kept = [g for g in grants if g.to != given.to]
    if len(kept) >= MAX_GRANTS:
        raise BadGrant(f"at most {MAX_GRANTS} grants on one asset: take one back first")
    return (*kept, given)


def without_grant(grants: Sequence[Grant], to: str) -> tuple[tuple[Grant, ...], bool]:
    """`grants` without the grant to `to`, and whether there was one."""
    who = grantee(to)
    kept = tuple(g for g in grants if g.to != who)
    return kept, len(kept) != len(grants)


def grantee_keys(owners: Iterable[str], groups: Iterable[str] = ()) -> list[str]:
    """The grantees an identity answers to: each owner it acts for, each of its groups."""
    return [*(f"owner:{o}" for o in owners), *(f"group:{g}" for g in groups)]


def access_of(
    grants: Iterable[Grant], thing_owner: str, owners: Iterable[str], groups: Iterable[str] = ()
) -> Literal["owner", "read", "use", "none"]:
    """What an identity acting for `owners`, in `groups`, may do with a thing of `thing_owner`:
    owner (everything), read (see, download), use (see, use in a loraRef, no download), none."""
    mine = set(owners)
    if thing_owner in mine:
        return "owner"
    keys = set(grantee_keys(mine, groups))
    given = {g.access for g in grants if g.to in keys}
    if "read" in given:
        return "read"
    if "use" in given:
        return "use"
    return "none"


def may_see(
    grants: Iterable[Grant], thing_owner: str, owners: Iterable[str], groups: Iterable[str] = ()
) -> bool:
    return access_of(grants, thing_owner, owners, groups) != "none"


def may_download(
    grants: Iterable[Grant], thing_owner: str, owners: Iterable[str], groups: Iterable[str] = ()
) -> bool:
    return access_of(grants, thing_owner, owners, groups) in ("owner", "read")


def may_use(grants: Iterable[Grant], lora_owner: str, user_owner: str) -> bool:
    """Whether a resource of `user_owner` may name a LoRA of `lora_owner` in its loraRef: its own,
    or one shared with its owner for use."""
    if lora_owner == user_owner:
        return True
    return any(g.to == f"owner:{user_owner}" and g.access == "use" for g in grants)


def use_refusal(name: str, lora_owner: str, user_owner: str, where: str) -> str:
    """Why a loraRef to another owner's LoRA is refused (LoraNotShared), with how to share it."""
    return (
        f"loraRef {name!r} belongs to owner {lora_owner!r}, who has not shared it with owner {user_owner!r} "
        f"for use; {lora_owner} shares it with: {where}"
    )
