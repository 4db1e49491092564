"""`contentgen assets share | unshare | shared | usage` (issue 38; docs/sharing.md).

The CLI reads the catalog directly, so it acts as whoever `--owner` names: with `--owner bob`, a
record of alice's is found only where alice shared it with bob (read or use; its files with read
only), and `--owner carol` finds nothing of it, as if it did not exist. Without `--owner` it is the
catalog's administrator and sees every record.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from contentgen.api import now
from contentgen.api.sharing import ACCESSES, BadGrant, grant, grantee
from contentgen.catalog import AmbiguousReference, Catalog, params, resolve, to_record
from contentgen.catalog.kinds import makes_loras
from contentgen.catalog.sharing import NotShareable, change_record_shares, readable, shared_with
from contentgen.catalog.usage import AssetUsage, Usage, usage_of
from contentgen.cli.main import CommandError
from contentgen.cli.output import print_json
from contentgen.tables import records_table

AddArgs = Callable[[argparse.ArgumentParser], None]
Action = Callable[[argparse.Namespace, Catalog, str], int]


def find(
    catalog: Catalog, args: argparse.Namespace, *, shared: bool = False, files: bool = False
) -> dict[str, Any]:
    """The record `args.id` names among `args.owner`'s (every owner's without it); `shared`: a
    record another owner shared with `args.owner` too (`files`: only where shared for read)."""
    try:
        doc = resolve(catalog, args.id, owner=args.owner, type=args.type)
    except AmbiguousReference as exc:
        raise CommandError(str(exc)) from None
    if doc is None and shared and args.owner:
        found = readable(catalog, args.id, [args.owner], type=args.type)
        if found is not None:
            doc, access = found
            if files and access == "use":
                where = f"{doc.get('namespace')}/{doc.get('name')}"
                raise CommandError(
                    f"{where} is shared with {args.owner} for use only (in a loraRef): its files are not "
                    f"downloaded; its owner {doc.get('owner')!r} may share it for read"
                )
    if doc is None:
        raise CommandError(
            f"no record {args.id!r} (an id, a unique prefix of one, namespace/name, or a name); "
            "`contentgen assets list` shows what there is"
        )
    return doc


def count_download(catalog: Catalog, doc: dict[str, Any], uri: str) -> None:
    """`contentgen assets url` counts as a download in the record's usage."""
    from contentgen.store.keys import version_of_uri

    try:
        Usage(catalog).downloaded(str(doc["_id"]), version_of_uri(uri) or 0, now())
    except Exception:  # a counter never fails the command
        print("contentgen assets: the download was not counted in the record's usage", file=sys.stderr)


def add_actions(sub: Any, add_ref: AddArgs, add_common: AddArgs) -> None:
    share = sub.add_parser(
        "share",
        help="share a record with an owner (read or use) or a group (read)",
        description="Give GRANTEE (owner:NAME, a bare NAME, or group:NAME) read (see it, download its files) "
        "or use (see it, use it in a loraRef; no files) of a record. A laptop's record keeps the grant in "
        "the catalog; a cluster resource's grants are its annotation contentgen.io/shared-with (the "
        "error says the kubectl command). docs/sharing.md",
    )
    add_ref(share)
    share.add_argument("--to", required=True, metavar="GRANTEE", help="owner:NAME, NAME or group:NAME")
    share.add_argument("--access", choices=ACCESSES, default="read", help="read (default) or use")
    share.add_argument("--by", default="", metavar="WHO", help="who shares it (kept with the grant)")
    add_common(share)

    unshare = sub.add_parser("unshare", help="take a grant back", description="Take GRANTEE's grant back.")
    add_ref(unshare)
    unshare.add_argument("--to", required=True, metavar="GRANTEE", help="owner:NAME, NAME or group:NAME")
    add_common(unshare)

    shared = sub.add_parser(
        "shared",
        help="records other owners shared with an owner",
        description="Every record of another owner shared with --owner (read or use), newest first.",
    )
    shared.add_argument("--owner", required=True, help="whose grants")
    shared.add_argument("--group", action="append", default=[], metavar="GROUP", help="and these groups'")
    add_common(shared)

    usage = sub.add_parser(
        "usage",
        help="a record's downloads, last access, storage and its monthly cost, and where it was used",
        description="Downloads (the API's download routes and `assets url`), last access, bytes per version "
        "and their monthly cost, and what was made with it (the image generations and evaluations of a "
        "LoRA's versions), with --owner: among that owner's records.",
    )
    add_ref(usage)
    usage.add_argument(
        "--price-per-gb",
        type=float,
        default=None,
        metavar="USD",
        help="storage price per GiB-month (default: $CONTENTGEN_PRICE_PER_GB_MONTH or 0.023)",
    )
    add_common(usage)


def _change(args: argparse.Namespace, catalog: Catalog, output: str, *, give: bool) -> int:
    doc = find(catalog, args)
    try:
        given = (
            grant(args.to, args.access, by=args.by or str(args.owner or ""), at=now().isoformat())
            if give
            else None
        )
        after, had = change_record_shares(catalog, doc, give=given, take=None if give else grantee(args.to))
    except (BadGrant, NotShareable) as exc:
        raise CommandError(str(exc)) from None
    if not give and not had:
        raise CommandError(f"{doc.get('namespace')}/{doc.get('name')} is not shared with {grantee(args.to)}")
    if output == "json":
        print_json({"id": doc["_id"], "owner": doc.get("owner"), "shares": [g.wire() for g in after]})
    else:
        shown = ", ".join(f"{g.to}={g.access}" for g in after) or "nobody"
        print(f"{doc.get('namespace')}/{doc.get('name')} ({doc['_id'][:8]}) is shared with: {shown}")
    return 0


def _share(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    return _change(args, catalog, output, give=True)


def _unshare(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    return _change(args, catalog, output, give=False)


def _shared(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    docs = shared_with(catalog, [args.owner], args.group)
    records = [to_record({**d, "shares": []}) for d in docs]
    if output == "json":
        print_json({"total": len(records), "items": [r.wire() for r in records]})
        return 0
    if records:
        print(records_table(records))
    print(f"({len(records)} shared with {args.owner})", file=sys.stderr)
    return 0


def usage_block(found: AssetUsage) -> str:
    lines = [
        f"{found.kind} {found.namespace}/{found.name} ({found.id}, owner {found.owner})",
        f"  downloads     {found.downloads} (last {found.last_downloaded_at or 'never'})",
        f"  last access   {found.last_accessed_at or 'never'}",
        f"  storage       {found.total_bytes} bytes, {found.monthly_storage_usd:.6f} USD a month "
        f"at {found.price_per_gb_month} USD per GiB-month",
    ]
    lines += [f"    v{v.version}: {v.bytes} bytes, {v.downloads} downloads" for v in found.versions]
    if found.used_in or makes_loras(found.kind):  # a LoRA says where it is used, or that it is not
        lines.append(f"  used in       {found.used_in_total} records")
        for used in found.used_in:
            which = ", ".join(f"v{n}" for n in used.versions)
            lines.append(
                f"    {used.kind} {used.namespace}/{used.name} ({used.id[:8]}, {used.owner}) with {which}"
            )
    if found.used_by_other_owners:
        lines.append(f"  used by other owners' records: {found.used_by_other_owners}")
    return "\n".join(lines)


def _usage(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    doc = find(catalog, args, shared=True)
    price = args.price_per_gb if args.price_per_gb is not None else params.price_from_env()
    if price < 0:
        raise CommandError(f"--price-per-gb: must be 0 or more, got {price}")
    mine = args.owner is None or args.owner == doc.get("owner")
    found = usage_of(
        catalog,
        doc,
        args.owner,
        price,
        owner_view=mine,
        owners=(args.owner,) if args.owner else (str(doc.get("owner")),),
    )
    if output == "json":
        print_json(found.wire())
    else:
        print(usage_block(found))
    return 0


ACTIONS: dict[str, Action] = {"share": _share, "unshare": _unshare, "shared": _shared, "usage": _usage}
