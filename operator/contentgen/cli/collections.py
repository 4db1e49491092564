"""Collections: assets of every kind gathered in one place, shared like an asset, searched within
and downloaded as one zip (docs/sharing.md).

`--owner` says whom the command acts as: it makes that owner's collections, and finds only the
collections it owns or that were shared with it (and, through them, only the members it may see);
without `--owner` the command is the catalog's administrator.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contentgen.api import now
from contentgen.api.sharing import ACCESSES, BadGrant, collection_name_problem, grant, grantee
from contentgen.api.words import counted
from contentgen.catalog import CatalogMissing, CatalogUnavailable, open_catalog, to_record
from contentgen.catalog.collections import (
    Collection,
    CollectionError,
    Collections,
    archive_plan,
    downloadable,
    matches_words,
    visible_members,
    zipped,
)
from contentgen.cli import sharing
from contentgen.cli.assets import _add_common, _store
from contentgen.cli.main import CommandError
from contentgen.cli.output import print_json
from contentgen.tables import records_table


def configure(parser: argparse.ArgumentParser) -> None:
    _add_common(parser, default=None)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def acting(p: argparse.ArgumentParser, required: bool = False) -> None:
        p.add_argument(
            "--owner",
            required=required,
            help="act as this owner (its own collections and those shared with it)",
        )
        _add_common(p)

    def named(p: argparse.ArgumentParser) -> None:
        p.add_argument("collection", metavar="COLLECTION", help="its id, or the name of one of --owner's")

    listing = sub.add_parser("list", help="the collections --owner may see", description="List collections.")
    acting(listing)
    create = sub.add_parser("create", help="make a collection", description="Make a collection of --owner's.")
    create.add_argument("name", metavar="NAME", help="letters, digits, '.', '_', '-'")
    create.add_argument("--description", default="", help="what it is for")
    acting(create, required=True)
    show = sub.add_parser("show", help="a collection and its members", description="Show a collection.")
    named(show)
    acting(show)
    for action, text in (("add", "add an asset of any kind"), ("remove", "take an asset out (it stays)")):
        p = sub.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        named(p)
        p.add_argument("record", metavar="REF", help="the record: id, id prefix, namespace/name")
        acting(p)
    delete = sub.add_parser("delete", help="delete a collection (its assets stay)", description="Delete it.")
    named(delete)
    acting(delete)
    share = sub.add_parser(
        "share",
        help="share a collection with an owner (read or use) or a group (read)",
        description="Its grantees see it and, through it, the members its owner owns (read: their files "
        "too, and the archive).",
    )
    named(share)
    share.add_argument("--to", required=True, metavar="GRANTEE", help="owner:NAME, NAME or group:NAME")
    share.add_argument("--access", choices=ACCESSES, default="read", help="read (default) or use")
    acting(share)
    unshare = sub.add_parser(
        "unshare", help="take a collection's grant back", description="Take a grant back."
    )
    named(unshare)
    unshare.add_argument("--to", required=True, metavar="GRANTEE", help="owner:NAME, NAME or group:NAME")
    acting(unshare)
    search = sub.add_parser(
        "search", help="search within a collection", description="Members in which every word occurs."
    )
    named(search)
    search.add_argument("words", nargs="+", metavar="WORD")
    acting(search)
    archive = sub.add_parser(
        "archive",
        help="every member's latest version as one zip",
        description="Write a zip of every member's latest version's files (a folder per member).",
    )
    named(archive)
    archive.add_argument("--out", required=True, metavar="FILE", help="where to write the zip ('-': stdout)")
    acting(archive)


def run(args: argparse.Namespace) -> int:
    output = getattr(args, "output", None) or ("table" if sys.stdout.isatty() else "json")
    if args.action == "create" and (problem := collection_name_problem(args.name)):
        raise CommandError(problem)  # as the HTTP API refuses it
    try:
        catalog = open_catalog(args.catalog)
    except CatalogMissing as exc:
        raise CommandError(str(exc)) from None
    except ValueError as exc:
        raise CommandError(f"{'--catalog' if args.catalog else 'CONTENTGEN_CATALOG'}: {exc}") from None
    try:
        return _act(args, Collections(catalog), output)
    except (ValueError, CatalogUnavailable) as exc:
        raise CommandError(str(exc)) from None
    finally:
        catalog.close()


def _owners(args: argparse.Namespace) -> list[str]:
    return [args.owner] if args.owner else []


def _find(
    args: argparse.Namespace, collections: Collections, *, owner: bool = False
) -> tuple[Collection, str]:
    found = collections.find(args.collection, _owners(args), admin=not args.owner)
    if found is None:
        raise CommandError(
            f"no collection {args.collection!r}; `contentgen collections list` shows what there is"
        )
    if owner and found[1] != "owner":
        raise CommandError(f"collection {found[0].name!r} is {found[0].owner}'s: only its owner changes it")
    return found


def _members(args: argparse.Namespace, collections: Collections, found: Collection) -> list[dict[str, Any]]:
    members = collections.members(found)
    return visible_members(found, members, _owners(args)) if args.owner else members


def _summary(found: Collection, access: str) -> dict[str, Any]:
    return {
        "id": found.id,
        "name": found.name,
        "owner": found.owner,
        "description": found.description,
        "access": access,
        "memberCount": len(found.members),
        "shares": found.shares_shown(access),
    }


def _show(summary: dict[str, Any], members: list[dict[str, Any]], output: str) -> int:
    records = [to_record({**m, "shares": []}) for m in members]
    if output == "json":
        print_json({**summary, "items": [r.wire() for r in records], "total": len(records)})
        return 0
    shares = ", ".join(f"{s['to']}={s['access']}" for s in summary["shares"]) or "nobody"
    print(f"collection {summary['name']} ({summary['id']}, owner {summary['owner']}, {summary['access']})")
    print(f"shared with: {shares}")
    if records:
        print(records_table(records))
    print(f"({counted(len(records), 'member')})", file=sys.stderr)
    return 0


def _act(args: argparse.Namespace, collections: Collections, output: str) -> int:
    if args.action == "list":
        return _list(args, collections, output)
    if args.action == "create":
        try:
            made = collections.create(args.owner, args.name, args.description, args.owner, now())
        except CollectionError as exc:
            raise CommandError(str(exc)) from None
        return _show(_summary(made, "owner"), [], output)
    owned = args.action in ("add", "remove", "delete", "share", "unshare")
    found, access = _find(args, collections, owner=owned)
    return ON_ONE[args.action](_One(args, collections, output, found, access))


def _list(args: argparse.Namespace, collections: Collections, output: str) -> int:
    found = collections.visible(_owners(args), admin=not args.owner)
    items = [_summary(c, "owner" if not args.owner or c.owner == args.owner else "read") for c in found]
    if output == "json":
        print_json({"items": items})
    else:
        for item in items:
            members = counted(item["memberCount"], "member")
            print(f"{item['id']}  {item['owner']:<16} {item['name']:<24} {members}")
    return 0


@dataclass
class _One:
    """An action on one collection: the command's arguments, the collection found and the
    caller's access to it."""

    args: argparse.Namespace
    collections: Collections
    output: str
    found: Collection
    access: str

    @property
    def cid(self) -> str:
        return self.found.id

    def shown(
        self, found: Collection, access: str = "owner", members: list[dict[str, Any]] | None = None
    ) -> int:
        listed = _members(self.args, self.collections, found) if members is None else members
        return _show(_summary(found, access), listed, self.output)


def _show_one(one: _One) -> int:
    return one.shown(one.found, one.access)


def _add(one: _One) -> int:
    args = one.args
    record = sharing.find(
        one.collections.catalog, argparse.Namespace(id=args.record, owner=args.owner, type=None), shared=True
    )
    try:
        after = one.collections.add(one.cid, str(record["_id"]), args.owner or "admin", now())
    except CollectionError as exc:
        raise CommandError(str(exc)) from None
    return one.shown(after)


def _remove(one: _One) -> int:
    record, found = one.args.record, one.found
    members = one.collections.members(found)
    ids = [str(m["_id"]) for m in members if m["_id"] == record or m["_id"].startswith(record)]
    ids += [str(m["_id"]) for m in members if f"{m.get('namespace')}/{m.get('name')}" == record]
    if len(set(ids)) != 1:
        raise CommandError(
            f"{record!r} names {'no' if not ids else 'more than one'} member of {found.name!r}"
        )
    removed, _ = one.collections.remove(one.cid, ids[0], now())
    return one.shown(removed)


def _delete(one: _One) -> int:
    one.collections.delete(one.cid)
    print(f"deleted collection {one.found.name} ({one.cid}); its assets stay", file=sys.stderr)
    return 0


def _share(one: _One) -> int:
    args = one.args
    try:
        given = grant(args.to, args.access, by=args.owner or "admin", at=now().isoformat())
        after, _ = one.collections.share(one.cid, now(), give=given)
    except BadGrant as exc:
        raise CommandError(str(exc)) from None
    return one.shown(after)


def _unshare(one: _One) -> int:
    try:
        who = grantee(one.args.to)
        after, had = one.collections.share(one.cid, now(), take=who)
    except BadGrant as exc:
        raise CommandError(str(exc)) from None
    if not had:
        raise CommandError(f"collection {after.name!r} is not shared with {who}")
    return one.shown(after)


def _search(one: _One) -> int:
    hits = [m for m in _members(one.args, one.collections, one.found) if matches_words(m, one.args.words)]
    return one.shown(one.found, one.access, hits)


def _archive(one: _One) -> int:
    args, found = one.args, one.found
    if one.access == "use":
        raise CommandError(f"collection {found.name!r} is shared with {args.owner} for use only: no files")
    members = [
        m
        for m in _members(args, one.collections, found)
        if not args.owner or downloadable(found, m, _owners(args))
    ]
    store = _store(args)
    files, manifest = archive_plan(store, found, members)
    if args.out == "-":
        for chunk in zipped(store, files, manifest):
            sys.stdout.buffer.write(chunk)
    else:
        with Path(args.out).open("wb") as target:
            for chunk in zipped(store, files, manifest):
                target.write(chunk)
    print(
        f"{counted(len(files), 'file')} of {counted(len(manifest['members']), 'member')}, listed in "
        f"manifest.json -> {args.out}",
        file=sys.stderr,
    )
    return 0


ON_ONE: dict[str, Callable[[_One], int]] = {
    "show": _show_one,
    "add": _add,
    "remove": _remove,
    "delete": _delete,
    "share": _share,
    "unshare": _unshare,
    "search": _search,
    "archive": _archive,
}
