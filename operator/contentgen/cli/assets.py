"""Find and reuse stored assets: list, show, search and count what the catalog records, and get
a time-limited link to an output. Reads the catalog named by $CONTENTGEN_CATALOG (default
file://./contentgen-data/catalog) and, for links, the store named by $CONTENTGEN_STORE (default
./contentgen-data/store). Prints tables on a terminal and JSON otherwise (-o to choose).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from contentgen.api import CATALOG_TYPES
from contentgen.catalog import Catalog, ResultPage, open_catalog, params, to_record
from contentgen.catalog.downloads import DownloadError, choose_artifact, sign
from contentgen.catalog.queries import DEFAULT_LIMIT, SORT_FIELDS, STATUSES, Filters, Page, Sort
from contentgen.catalog.tables import record_block, records_table, stats_block
from contentgen.cli.main import CommandError
from contentgen.errors import ContentgenError
from contentgen.store import DEFAULT_LOCAL_STORE, open_store

OUTPUTS = ("table", "json")


def _flag_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser raising ValueError (argparse then names the flag)."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"not a whole number: {text!r}") from None
        if value < low:
            raise ValueError(f"must be at least {low}, got {value}")
        return value

    return _flag_type(parse)


def _expires(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        raise ValueError(f"not a whole number of seconds: {text!r}") from None
    return params.check_expires(seconds)


def _price(text: str) -> float:
    try:
        price = float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None
    return params.check_price(price)


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", choices=OUTPUTS, help="table (the default on a terminal) or json (otherwise)"
    )


def _add_owner(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--owner", help="only this owner's records (others' are reported as not found)")


def _add_paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit",
        type=_int_at_least(1),
        default=DEFAULT_LIMIT,
        help=f"at most this many (default {DEFAULT_LIMIT})",
    )
    parser.add_argument("--offset", type=_int_at_least(0), default=0, help="skip this many first")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    types = list(CATALOG_TYPES)

    listing = sub.add_parser("list", help="list records, newest first", description="List catalog records.")
    listing.add_argument("--type", choices=types, help="only this kind of asset")
    _add_owner(listing)
    listing.add_argument("--status", choices=STATUSES, help="only this status (default: all but Deleted)")
    listing.add_argument(
        "--since", type=_flag_type(params.parse_time), help="created at or after (ISO date or datetime; UTC)"
    )
    listing.add_argument(
        "--until",
        type=_flag_type(lambda text: params.parse_time(text, end=True)),
        help="created before (a date includes that whole day)",
    )
    listing.add_argument(
        "--sort", choices=SORT_FIELDS, default="createdAt", help="sort by (default createdAt)"
    )
    listing.add_argument("--order", choices=("asc", "desc"), default="desc", help="default desc")
    _add_paging(listing)
    _add_output(listing)

    get = sub.add_parser(
        "get", help="show one record", description="Show one record by id (the resource's uid)."
    )
    get.add_argument("id", metavar="ID")
    _add_owner(get)
    _add_output(get)

    search = sub.add_parser(
        "search",
        help="find records by words",
        description="Find records whose name, tags, description, prompt, trigger word or transcript "
        "contains every word of QUERY (case-insensitive).",
    )
    search.add_argument("query", nargs="+", metavar="QUERY")
    _add_owner(search)
    search.add_argument("--type", choices=types, help="only this kind of asset")
    _add_paging(search)
    _add_output(search)

    stats = sub.add_parser(
        "stats",
        help="counts, storage and its monthly cost",
        description="Usage; deleted records are left out.",
    )
    _add_owner(stats)
    stats.add_argument(
        "--price-per-gb",
        type=_flag_type(_price),
        help="USD per GB-month (default $CONTENTGEN_PRICE_PER_GB_MONTH, else 0.023)",
    )
    _add_output(stats)

    url = sub.add_parser(
        "url",
        help="a time-limited link to an output",
        description="A presigned URL (S3) or file:// path (local store) for the record's primary output "
        "(latest LoRA model, first image, transcript.txt), or for --file.",
    )
    url.add_argument("id", metavar="ID")
    _add_owner(url)
    url.add_argument(
        "--file",
        metavar="NAME",
        help="an output's file name (config.json) or path end (v1/model.safetensors)",
    )
    url.add_argument(
        "--expires",
        type=_flag_type(_expires),
        default=params.DEFAULT_EXPIRES,
        metavar="SECONDS",
        help=f"link lifetime, 1 s to 7 days (default {params.DEFAULT_EXPIRES})",
    )
    _add_output(url)


def run(args: argparse.Namespace) -> int:
    output = args.output or ("table" if sys.stdout.isatty() else "json")
    try:
        catalog = open_catalog()
    except ValueError as exc:
        raise CommandError(f"CONTENTGEN_CATALOG: {exc}") from None
    try:
        return ACTIONS[args.action](args, catalog, output)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    finally:
        catalog.close()


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _print_page(page: ResultPage, output: str) -> int:
    records = [to_record(doc) for doc in page.docs]
    if output == "json":
        _print_json(
            {
                "total": page.total,
                "limit": page.limit,
                "offset": page.offset,
                "items": [r.wire() for r in records],
            }
        )
        return 0
    if records:
        print(records_table(records))
    shown = f"{page.offset + 1}-{page.offset + len(records)}" if records else "none"
    print(f"({shown} of {page.total})", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    try:
        params.check_range(args.since, args.until)
    except ValueError as exc:
        raise CommandError(f"--since/--until: {exc}") from None
    filters = Filters(
        owner=args.owner, type=args.type, status=args.status, since=args.since, until=args.until
    )
    page = catalog.find(
        filters, Sort(args.sort, descending=args.order == "desc"), Page(args.limit, args.offset)
    )
    return _print_page(page, output)


def _get_doc(catalog: Catalog, args: argparse.Namespace) -> dict[str, Any]:
    doc = catalog.get(args.id, owner=args.owner)
    if doc is None:
        raise CommandError(f"no record with id {args.id!r}")
    return doc


def _get(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    record = to_record(_get_doc(catalog, args))
    if output == "json":
        _print_json(record.wire())
    else:
        print(record_block(record))
    return 0


def _search(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    filters = Filters(owner=args.owner, type=args.type)
    page = catalog.search(" ".join(args.query), filters, page=Page(args.limit, args.offset))
    return _print_page(page, output)


def _stats(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    price = args.price_per_gb if args.price_per_gb is not None else params.price_from_env()
    stats = catalog.stats(args.owner, price)
    if output == "json":
        _print_json(stats.wire())
    else:
        print(stats_block(stats))
    return 0


def _url(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    doc = _get_doc(catalog, args)
    try:
        uri = choose_artifact(doc, args.file)
        store = open_store(os.environ.get("CONTENTGEN_STORE") or DEFAULT_LOCAL_STORE)
        signed = sign(store, uri, args.expires)
    except (DownloadError, ContentgenError) as exc:
        raise CommandError(str(exc)) from None
    if output == "json":
        _print_json(signed.wire())
    else:
        # The link alone on stdout, so `curl "$(contentgen assets url ID -o table)"` works.
        print(signed.url)
        print(f"expires {signed.wire()['expiresAt']}", file=sys.stderr)
    return 0


ACTIONS: dict[str, Callable[[argparse.Namespace, Catalog, str], int]] = {
    "list": _list,
    "get": _get,
    "search": _search,
    "stats": _stats,
    "url": _url,
}
