"""Find and reuse stored assets: list, show, search and count what the catalog records, follow
lineage, get a time-limited link to an output, and remove versions or a record's stored objects
(dry runs unless --yes). Reads the catalog named by --catalog or $CONTENTGEN_CATALOG (default
file://./contentgen-data/catalog; a local catalog that does not exist is an error) and, for links
and removals, the store named by --store or $CONTENTGEN_STORE (default ./contentgen-data/store).
A record is named by its id, a unique prefix of it, namespace/name, namespace/name@id-prefix, or a
bare name (catalog/names.py). Prints tables on a terminal and JSON otherwise (-o).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from contentgen import store as stores
from contentgen.api import CATALOG_TYPES
from contentgen.api.lora import LIKENESS_PROMPT_SETS, EvaluationSpec
from contentgen.api.words import counted
from contentgen.catalog import (
    DELETED,
    FILTER_HELP,
    RUN_PHASES,
    SORT_HELP,
    AmbiguousReference,
    Catalog,
    CatalogMissing,
    CatalogUnavailable,
    ResultPage,
    open_catalog,
    params,
    pruning,
    resolve,
    to_record,
)
from contentgen.catalog.downloads import DownloadError, choose_artifact, download_name, output_uris, sign
from contentgen.catalog.lineage import Lineage, lineage
from contentgen.catalog.queries import DEFAULT_LIMIT, SORT_FIELDS, STATUSES, Filters, Page, Sort, type_help
from contentgen.catalog.search import RELEVANCE, search_page
from contentgen.cli import sharing, training
from contentgen.cli.flags import flag_type as _flag_type
from contentgen.cli.flags import int_at_least as _int_at_least
from contentgen.cli.main import CommandError
from contentgen.cli.output import print_json
from contentgen.errors import ContentgenError, InvalidInput, MissingCredentials
from contentgen.pipeline.likeness.pictures import MAX_PICTURE_BYTES, MAX_PICTURES
from contentgen.providers import IMAGE_GENERATORS
from contentgen.store import DEFAULT_LOCAL_STORE, ObjectStore
from contentgen.tables import DETAIL_FLAG, lineage_block, record_block, records_table, stats_block

if TYPE_CHECKING:
    from contentgen.pipeline.likeness.pictures import Picture, Scored
    from contentgen.pipeline.likeness.plan import Plan
    from contentgen.pipeline.likeness.reevaluate import Estimate, Target
    from contentgen.pipeline.likeness.rescore import Outcome
    from contentgen.pipeline.settings import PipelineSettings
    from contentgen.pricing import Budgets
    from contentgen.providers.erase import Erasure

OUTPUTS = ("table", "json")
DEFAULT_PROMPT_SET = EvaluationSpec().prompt_set
# How reevaluate's messages name what was asked, and the flags that ask it.
_EVALUATE_FLAGS = (("version:", "--version:"), ("seeds:", "--seed:"), ("prompt set:", "--prompt-set:"))
REF_HELP = (
    "the record: its id, a unique prefix of it (4+ characters), namespace/name (the resource that "
    "exists now), namespace/name@id-prefix (one of several of that name), or a bare name"
)


Actions: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # makes the actions' parsers


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


def _add_common(parser: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
    """-o, --catalog and --store, taken before the action (`assets --catalog DIR list`) and after it
    (`assets list --catalog DIR`): an action's own are SUPPRESSed unless given, so they never
    overwrite the ones given before it."""
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUTS,
        default=default,
        help="table (the default on a terminal) or json (otherwise)",
    )
    parser.add_argument(
        "--catalog",
        metavar="URL",
        default=default,
        help="the catalog (default: $CONTENTGEN_CATALOG or ./contentgen-data/catalog)",
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        default=default,
        help="the store (default: $CONTENTGEN_STORE or ./contentgen-data/store)",
    )


def _add_owner(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--owner", help=FILTER_HELP["owner"] + " (others' are reported as not found)")


def _add_type(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", choices=CATALOG_TYPES, help=type_help())


def _add_filters(parser: argparse.ArgumentParser) -> None:
    """The filter vocabulary of the HTTP API's list routes, as flags (the same names)."""
    _add_type(parser)
    _add_owner(parser)
    parser.add_argument("--status", choices=STATUSES, help=FILTER_HELP["status"])
    parser.add_argument("--run", choices=RUN_PHASES, help=FILTER_HELP["run"])
    parser.add_argument("--since", type=_flag_type(params.parse_time), help=FILTER_HELP["since"])
    parser.add_argument(
        "--until", type=_flag_type(lambda text: params.parse_time(text, end=True)), help=FILTER_HELP["until"]
    )
    parser.add_argument("--model", help=FILTER_HELP["model"])
    parser.add_argument("--lora", metavar="ID[/vN]", help=FILTER_HELP["lora"])
    parser.add_argument("--tag", help=FILTER_HELP["tag"])
    parser.add_argument("--sort", choices=SORT_FIELDS, default="createdAt", help=SORT_HELP["sort"])
    parser.add_argument("--order", choices=("asc", "desc"), default="desc", help=SORT_HELP["order"])
    parser.add_argument("--limit", type=_int_at_least(1), default=DEFAULT_LIMIT, help=SORT_HELP["limit"])
    parser.add_argument("--offset", type=_int_at_least(0), default=0, help=SORT_HELP["offset"])


def _add_ref(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", metavar="ID", help=REF_HELP)
    _add_owner(parser)
    _add_type(parser)


def configure(parser: argparse.ArgumentParser) -> None:
    """The actions, one parser each (the `_add_*_action` below), and sharing's (cli/sharing.py)."""
    _add_common(parser, default=None)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for add in (
        _add_list_action,
        _add_get_action,
        _add_search_action,
        _add_stats_action,
        _add_lineage_action,
        _add_url_action,
        _add_transcript_action,
        _add_delete_action,
        _add_evaluate_action,
        _add_promote_action,
        _add_prune_action,
    ):
        add(sub)
    sharing.add_actions(sub, _add_ref, _add_common)  # share, unshare, shared, usage (cli/sharing.py)
    training.add_actions(sub, _add_ref, _add_common)  # stop, continue (cli/training.py)
    training.add_watch(sub.choices["get"])  # get -w


def _add_list_action(sub: Actions) -> None:
    listing = sub.add_parser("list", help="list records, newest first", description="List catalog records.")
    _add_filters(listing)
    _add_common(listing)


def _add_get_action(sub: Actions) -> None:
    get = sub.add_parser(
        "get",
        help="show one record",
        description="Show one record: as a table, its essentials (what it is, its latest run, its "
        "versions and what each made, a LoRA version's likeness and checkpoints, what it stored and "
        f"cost); {DETAIL_FLAG} adds every field (each stored object, every run, the cost's detail). "
        "JSON (-o json) has every field.",
    )
    _add_ref(get)
    get.add_argument(
        DETAIL_FLAG,
        action="store_true",
        help="a table of every field: each stored object, every run, the cost's and the dataset's detail",
    )
    _add_common(get)


def _add_search_action(sub: Actions) -> None:
    search = sub.add_parser(
        "search",
        help="find records by words",
        description="Find records whose name, tags, description, prompt, trigger word or transcript "
        'has every word and "quoted phrase" of QUERY (whole words, any case), best first; with each, '
        "where in its transcripts the words are said.",
    )
    search.add_argument("query", nargs="+", metavar="QUERY")
    _add_filters(search)
    _add_common(search)
    for action in search._actions:  # search also sorts by relevance, and does unless told
        if action.dest == "sort":
            action.choices, action.default = (RELEVANCE, *SORT_FIELDS), RELEVANCE
            action.help = "relevance (best first: the default), or a field: " + SORT_HELP["sort"][9:]


def _add_stats_action(sub: Actions) -> None:
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
    _add_common(stats)


def _add_lineage_action(sub: Actions) -> None:
    lineage_cmd = sub.add_parser(
        "lineage",
        help="where a record's outputs came from, and what was made from them",
        description="An image generation: the LoRAs used (name, id, version), each version's dataset "
        "and source video. A LoRA: every version with its dataset and source video, and every image "
        "generation made with it. A VideoGeneration: the picture it animates (an image generation's "
        "version and image) followed back to the LoRAs that made it, their datasets and source "
        "videos, and the video's own LoRAs. A LoRA evaluation: the LoRA versions it evaluated, "
        "followed back the same way. A transcription: its source.",
    )
    _add_ref(lineage_cmd)
    _add_common(lineage_cmd)


def _add_url_action(sub: Actions) -> None:
    url = sub.add_parser(
        "url",
        help="a time-limited link to an output",
        description="A presigned URL (S3) or file:// path (local store) for the record's primary output "
        "(latest LoRA model, first image, transcript.txt), or for --file.",
    )
    _add_ref(url)
    url.add_argument(
        "--file",
        metavar="NAME",
        help="an output's file name (config.json) or path end (v1/model.safetensors)",
    )
    url.add_argument("--version", type=_int_at_least(1), metavar="N", help="a version (default: the latest)")
    url.add_argument(
        "--expires",
        type=_flag_type(_expires),
        default=params.DEFAULT_EXPIRES,
        metavar="SECONDS",
        help=f"link lifetime, 1 s to 7 days (default {params.DEFAULT_EXPIRES})",
    )
    _add_common(url)


def _add_transcript_action(sub: Actions) -> None:
    transcript = sub.add_parser(
        "transcript",
        help="a transcript as subtitles (SRT, WebVTT) or timed text",
        description="Write a transcription's transcript to stdout (or --out FILE): srt and vtt are "
        "subtitle files (cues of at most two 42-character lines and 7 seconds, a new cue at each "
        "speaker), txt is the text with each segment's start time and speaker, json the segments "
        "({start, end, speaker, text}, seconds). Made from the provider's response (transcript.json) "
        "in the store: no request is sent anywhere.",
    )
    _add_ref(transcript)
    transcript.add_argument(
        "--format", choices=("srt", "vtt", "txt", "json"), default="srt", help="the format (default srt)"
    )
    transcript.add_argument(
        "--version", type=_int_at_least(1), metavar="N", help="a version (default: the latest)"
    )
    transcript.add_argument("--out", metavar="FILE", help="write here instead of stdout")
    transcript.add_argument(
        "--catalog",
        metavar="URL",
        help="the catalog (default: $CONTENTGEN_CATALOG or ./contentgen-data/catalog)",
    )
    transcript.add_argument(
        "--store", metavar="URL", help="the store (default: $CONTENTGEN_STORE or ./contentgen-data/store)"
    )


def _add_delete_action(sub: Actions) -> None:
    delete = sub.add_parser(
        "delete",
        help="delete one version, or every stored object of a record",
        description="With --version N: remove that version's stored outputs; the record keeps its "
        "other versions and lists N under deletedVersions. Without: what deletionPolicy: Delete does "
        "when a resource is deleted: remove every stored object of the record (outputs, datasets, "
        "thumbnails, checkpoints) and mark it Deleted (it stays, for history). Either way, then erase "
        "the provider's copies of the requests that made what goes, where the provider offers a way "
        "(fal's payloads and output files, with an ADMIN FAL_KEY; AssemblyAI's transcripts and their "
        "audio, with ASSEMBLYAI_API_KEY) and say what stays. Without --yes, only says what would go. "
        "In a cluster, delete the resource itself (kubectl delete) to delete it all.",
    )
    _add_ref(delete)
    delete.add_argument("--version", type=_int_at_least(1), metavar="N", help="only this version")
    delete.add_argument("--yes", action="store_true", help="delete (without it: only show what would go)")
    _add_common(delete)


def _add_evaluate_action(sub: Actions) -> None:
    evaluate = sub.add_parser(
        "evaluate",
        help="evaluate a LoRA version's likeness again, without training it again",
        description="Generate the likeness prompt set × seeds with the version's LoRA and without it "
        "(the baseline, reused when stored), score the faces against the dataset's, and record it in "
        "the version's likeness history; earlier evaluations stay (docs/likeness.md). Paid like any "
        "generation, checkpointed: an interrupted evaluation resumes without paying twice. Shows the "
        "estimated price first and pays only with --yes or when you confirm at the prompt; "
        "CONTENTGEN_BUDGETS is respected. With --pictures DIR nothing is generated or paid: the "
        "pictures in DIR, made elsewhere, are scored against the version's dataset faces instead "
        "(docs/likeness.md#scoring-your-own-pictures).",
    )
    _add_ref(evaluate)
    evaluate.add_argument(
        "--version", type=_int_at_least(1), metavar="N", help="the version (default: the latest)"
    )
    evaluate.add_argument(
        "--prompt-set",
        choices=sorted(LIKENESS_PROMPT_SETS),
        help=f"the prompt set (default {DEFAULT_PROMPT_SET})",
    )
    evaluate.add_argument(
        "--seed",
        type=_int_at_least(0),
        action="append",
        metavar="N",
        help="a seed; repeat for up to 4 (default: 1 and 2)",
    )
    evaluate.add_argument(
        "--provider",
        choices=IMAGE_GENERATORS,
        help="who generates the pictures (default: the provider that trained the version)",
    )
    evaluate.add_argument("--yes", action="store_true", help="pay the estimate without asking")
    evaluate.add_argument(
        "--pictures",
        metavar="DIR",
        help="score the pictures in DIR instead of generating any (PNG, JPEG or WebP made elsewhere; "
        f"at most {MAX_PICTURES}, {MAX_PICTURE_BYTES // 2**20} MiB each): nothing is paid",
    )
    evaluate.add_argument(
        "--baseline",
        metavar="DIR",
        help="with --pictures: pictures made the same way without the LoRA, to measure its gain",
    )
    _add_common(evaluate)


def _add_promote_action(sub: Actions) -> None:
    promote = sub.add_parser(
        "promote",
        help="make a scored checkpoint a LoRA version's model, or an evaluation its verdict",
        description="--step: make the LoRA of checkpoint STEP (one its likeness evaluation scored: "
        "`contentgen assets get` lists them) the version's model: a loraRef to the version uses it from "
        "then on. Recorded as a numbered promotion beside the version (who chose, when, and the automatic "
        "choice, which stays); nothing is written over. Promote the automatic step again to go back "
        "(docs/likeness.md#choosing-a-checkpoint-yourself). --evaluation: make re-evaluation K (one of "
        "pictures the LoRA generated that measured something) the version's verdict instead of its own "
        "evaluation's; --evaluation 0 goes back (docs/likeness.md#one-verdict-per-version).",
    )
    _add_ref(promote)
    promote.add_argument(
        "--version", type=_int_at_least(1), metavar="N", help="the version (default: the latest)"
    )
    which = promote.add_mutually_exclusive_group(required=True)
    which.add_argument("--step", type=_int_at_least(1), metavar="STEP", help="the checkpoint")
    which.add_argument(
        "--evaluation", type=_int_at_least(0), metavar="K", help="the evaluation (e{K}) to be the verdict"
    )
    promote.add_argument("--note", default="", metavar="TEXT", help="why (kept with the promotion)")
    _add_common(promote)


def _add_prune_action(sub: Actions) -> None:
    prune = sub.add_parser(
        "prune",
        help="keep the newest N versions of a record, remove the older ones",
        description="Remove the stored outputs of every usable version but the newest N; the record "
        "lists them under deletedVersions. Nothing is removed without --yes (a dry run says what "
        "would go, and for a LoRA how many image generations were made with each version).",
    )
    _add_ref(prune)
    prune.add_argument("--keep", type=_int_at_least(1), required=True, metavar="N", help="versions to keep")
    prune.add_argument("--yes", action="store_true", help="remove (without it: only show what would go)")
    _add_common(prune)


def run(args: argparse.Namespace) -> int:
    output = getattr(args, "output", None) or ("table" if sys.stdout.isatty() else "json")
    try:
        catalog = open_catalog(args.catalog)
    except CatalogMissing as exc:  # says where it looked and how to fix it
        raise CommandError(str(exc)) from None
    except ValueError as exc:
        raise CommandError(f"{'--catalog' if args.catalog else 'CONTENTGEN_CATALOG'}: {exc}") from None
    try:
        return ACTIONS[args.action](args, catalog, output)
    except (ValueError, CatalogUnavailable) as exc:
        raise CommandError(str(exc)) from None
    finally:
        catalog.close()


def _store(args: argparse.Namespace) -> ObjectStore:
    try:
        # looked up when called (stores.open_store), not bound at import: a caller that replaces it
        # (a test's store) replaces it for this command too, and only while it does
        return stores.open_store(args.store or os.environ.get("CONTENTGEN_STORE") or DEFAULT_LOCAL_STORE)
    except ValueError as exc:
        raise CommandError(f"--store: {exc}") from None


def _print_page(page: ResultPage, output: str) -> int:
    records = [to_record(doc) for doc in page.docs]
    if output == "json":
        print_json(
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


def _filters(args: argparse.Namespace) -> Filters:
    try:
        params.check_range(args.since, args.until)
    except ValueError as exc:
        raise CommandError(f"--since/--until: {exc}") from None
    return Filters(
        owner=args.owner,
        type=args.type,
        status=args.status,
        since=args.since,
        until=args.until,
        model=args.model,
        lora=args.lora,
        tag=args.tag,
        run=args.run,
    )


def _sort_page(args: argparse.Namespace) -> tuple[Sort, Page]:
    return Sort(args.sort, descending=args.order == "desc"), Page(args.limit, args.offset)


def _list(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    return _print_page(catalog.find(_filters(args), *_sort_page(args)), output)


def _get_doc(catalog: Catalog, args: argparse.Namespace) -> dict[str, Any]:
    try:
        doc = resolve(catalog, args.id, owner=args.owner, type=args.type)
    except AmbiguousReference as exc:
        raise CommandError(str(exc)) from None
    if doc is None:
        raise CommandError(
            f"no record {args.id!r} (an id, a unique prefix of one, namespace/name, or a name); "
            "`contentgen assets list` shows what there is"
        )
    return doc


def _get(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    doc = sharing.find(catalog, args, shared=True)  # with --owner: one shared with that owner too
    if args.watch:
        return training.watch(catalog, doc, output, args.every)
    record = to_record(doc if args.owner in (None, doc.get("owner")) else {**doc, "shares": []})
    if output == "json":
        print_json(record.wire())
    else:
        print(record_block(record, detail=args.detail))
    return 0


def _search(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    sort, page = _sort_page(args)
    result = catalog.search(
        " ".join(args.query), _filters(args), None if args.sort == RELEVANCE else sort, page
    )
    if output == "json":
        print_json(search_page(result))
        return 0
    _print_page(result, output)
    said = [(h.id, t) for h in result.hits for t in h.transcript]
    for uid, hit in said:  # where in the recordings
        at = (
            "--:--"
            if hit.at_seconds is None
            else f"{int(hit.at_seconds) // 60:02d}:{int(hit.at_seconds) % 60:02d}"
        )
        print(f"{uid[:8]} v{hit.version} {at}  {hit.snippet}")
    return 0


def _stats(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    price = args.price_per_gb if args.price_per_gb is not None else params.price_from_env()
    stats = catalog.stats(args.owner, price)
    if output == "json":
        print_json(stats.wire())
    else:
        print(stats_block(stats))
    return 0


def _lineage(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    found: Lineage = lineage(catalog, sharing.find(catalog, args, shared=True), args.owner)
    if output == "json":
        print_json(found.wire())
    else:
        print(lineage_block(found))
    return 0


def _url(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    doc = sharing.find(catalog, args, shared=True, files=True)
    try:
        uri = choose_artifact(doc, args.file, args.version)
        signed = sign(_store(args), uri, args.expires, download_name=download_name(doc, uri))
    except (DownloadError, ContentgenError) as exc:
        raise CommandError(str(exc)) from None
    sharing.count_download(catalog, doc, uri)
    if output == "json":
        print_json(signed.wire())
    else:
        # The link alone on stdout, so `curl "$(contentgen assets url ID -o table)"` works.
        print(signed.url)
        print(f"expires {signed.wire()['expiresAt']}", file=sys.stderr)
    return 0


def _transcript(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    from pathlib import Path

    from contentgen.catalog.downloads import transcript_of
    from contentgen.transcripts import export

    doc = _get_doc(catalog, args)
    try:
        response, duration, _ = transcript_of(doc, _store(args), args.version)
    except (DownloadError, ContentgenError) as exc:
        raise CommandError(str(exc)) from None
    text = export(response, args.format, duration)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"--out {args.out}: {exc.strerror}") from None
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _own_store(args: argparse.Namespace, doc: dict[str, Any]) -> ObjectStore:
    """The store that holds the record's outputs (removing from another would remove nothing)."""
    store = _store(args)
    foreign = [u for u in output_uris(doc) if not store.owns(u)]
    if foreign:
        raise CommandError(
            f"{doc['_id']}'s outputs are in another store ({foreign[0]}): pass that store with --store"
        )
    return store


def _delete(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    """Plan what goes, say it (a dry run), or erase the stored objects and then record it."""
    doc = _get_doc(catalog, args)
    store = _own_store(args, doc)
    if args.version is not None:
        return _remove(
            args, catalog, store, output, lambda: pruning.plan_versions(catalog, store, doc, [args.version])
        )
    return _remove(args, catalog, store, output, lambda: pruning.plan_record(catalog, store, doc))


def _prune(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    doc = _get_doc(catalog, args)
    store = _own_store(args, doc)
    return _remove(args, catalog, store, output, lambda: pruning.plan_prune(catalog, store, doc, args.keep))


def _remove(
    args: argparse.Namespace,
    catalog: Catalog,
    store: ObjectStore,
    output: str,
    plan_of: Callable[[], pruning.Removal],
) -> int:
    from contentgen.providers.erase import Erasure

    plan = _removal_plan(plan_of)
    doc = plan.doc
    what = f"{doc.get('type')} {doc.get('namespace')}/{doc.get('name')} ({doc['_id']})"
    removed, at_provider = 0, Erasure()
    if args.yes and (plan.versions or plan.whole):
        removed, at_provider = _erase(catalog, store, plan, what)
    summary = plan.summary()
    if output == "json":
        print_json(
            {
                **summary,
                "deleted": args.yes,
                "dryRun": not args.yes,
                "removed": removed,
                "providerErased": at_provider.erased,
                "providerKept": at_provider.kept,
            }
        )
    elif args.yes:
        _say_removed(plan, summary, what, removed, at_provider)
    else:
        _say_what_would_go(plan, summary, what)
    return 0


def _removal_plan(plan_of: Callable[[], pruning.Removal]) -> pruning.Removal:
    try:
        return plan_of()
    except DownloadError as exc:
        raise CommandError(str(exc)) from None
    except ContentgenError as exc:
        raise CommandError(f"{exc}; nothing was removed") from None


def _erase(catalog: Catalog, store: ObjectStore, plan: pruning.Removal, what: str) -> tuple[int, Erasure]:
    """The plan's stored objects removed and recorded, then the provider's copies erased: of every
    request of the record, or of the versions' own; (objects removed, what the provider erased)."""
    from contentgen.api import now
    from contentgen.providers.erase import erase_provider_copies

    doc = plan.doc
    runs = _run_documents(store, plan.objects)  # what names the provider requests, read first
    try:
        removed = pruning.erase(store, plan)
    except ContentgenError as exc:
        raise CommandError(f"{doc['_id']}: {exc}; the record is unchanged") from None
    try:
        pruning.record(catalog, plan, when=now(), by="cli")
    except Exception as exc:
        raise CommandError(
            f"removed {counted(removed, 'stored object')} of {what} but could not record it ({exc}); "
            "run the same command again to record it"
        ) from None
    return removed, erase_provider_copies(doc if plan.whole else {}, documents=runs)


def _say_removed(
    plan: pruning.Removal, summary: dict[str, Any], what: str, removed: int, at_provider: Erasure
) -> None:
    if plan.whole:
        print(f"deleted {counted(removed, 'stored object')} of {what}; the record is now {DELETED}")
    elif plan.versions:
        versions = ", ".join(f"v{n}" for n in plan.versions)
        kept = ", ".join(f"v{n}" for n in summary["kept"]) or "none"
        print(f"deleted {versions} of {what} ({counted(removed, 'stored object')}); usable versions: {kept}")
    else:
        print(f"nothing to remove: {what} has {counted(len(summary['kept']), 'usable version')}")
    for line in at_provider.erased:
        print(f"erased at the provider: {line}")
    for line in at_provider.kept:
        print(f"not erased at the provider: {line}", file=sys.stderr)


def _say_what_would_go(plan: pruning.Removal, summary: dict[str, Any], what: str) -> None:
    for key in plan.objects:
        print(key)
    versions = ", ".join(f"v{n}" for n in plan.versions) or "no version"
    used = "; ".join(
        f"{v} was used by {counted(n, 'image generation')}" for v, n in summary["usedBy"].items()
    )
    scope = "every stored object" if plan.whole else versions
    note = f" ({used})" if used else ""
    print(
        f"would delete {scope} of {what}: {counted(len(plan.objects), 'stored object')}{note}; "
        "add --yes to delete",
        file=sys.stderr,
    )


def _run_documents(store: Any, keys_: list[str]) -> list[Any]:
    """The stored results (every version's) and provider checkpoints among `keys_`, parsed; the
    unreadable ones left out (they name no request we could act on)."""
    documents = []
    for key in keys_:
        if key.endswith("/result.json") or "/checkpoints/" in key:
            try:
                documents.append(json.loads(store.get_bytes(key)))
            except ValueError:
                continue
    return documents


def _promote(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    """Make a scored checkpoint the version's model (pipeline/likeness/promote.py)."""
    from contentgen.pipeline.likeness import promote

    doc = _get_doc(catalog, args)
    number = args.version or int(doc.get("latestVersion") or 0)
    if args.evaluation is not None:
        return _choose_verdict(args, catalog, doc, number, output)
    entry = _chosen(args, catalog, doc, number, promote.promote, args.step, "step")
    if output == "json":
        print_json({"id": doc["_id"], **entry})
        return 0
    automatic = entry["automaticStep"]
    print(
        f"v{number} of {doc['namespace']}/{doc['name']}: its model is now step {entry['step']}'s LoRA "
        f"{entry['modelUri']} (promotion p{entry['promotion']}; the automatic choice, "
        f"{'step ' + str(automatic) if automatic is not None else 'its own model'}, is kept: promote it "
        "again to go back)"
    )
    return 0


def _choose_verdict(
    args: argparse.Namespace, catalog: Catalog, doc: dict[str, Any], number: int, output: str
) -> int:
    """Make an evaluation the version's verdict (pipeline/likeness/promote.choose_verdict)."""
    from contentgen.pipeline.likeness import promote

    entry = _chosen(args, catalog, doc, number, promote.choose_verdict, args.evaluation, "evaluation")
    if output == "json":
        print_json({"id": doc["_id"], **entry})
        return 0
    back = "" if args.evaluation == 0 else "; --evaluation 0 goes back to its own evaluation's"
    print(
        f"v{number} of {doc['namespace']}/{doc['name']}: its verdict is now evaluation e{args.evaluation}'s "
        f"(choice c{entry['choice']}; every evaluation stays in its history{back})"
    )
    return 0


def _chosen(
    args: argparse.Namespace,
    catalog: Catalog,
    doc: Mapping[str, Any],
    number: int,
    choose: Callable[..., Mapping[str, Any]],
    value: int,
    flag: str,
) -> Mapping[str, Any]:
    """A person's choice for version `number` (`choose`: pipeline/likeness/promote's promote or
    choose_verdict, of `value`), by this user, now; a refusal naming `--flag` or `--version` is a
    usage error naming that flag."""
    import getpass

    from contentgen.api import now
    from contentgen.pipeline.likeness import promote

    try:
        return choose(
            catalog, _store(args), doc, number, value, by=f"cli:{getpass.getuser()}", at=now(), note=args.note
        )
    except promote.NotPromotable as exc:
        text = str(exc)
        raise CommandError(f"--{text}" if text.startswith((f"{flag}:", "version:")) else text) from None


def _evaluate(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    """Estimate, confirm, evaluate and record (pipeline/likeness/rescore.py)."""
    from contentgen.pipeline.likeness import reevaluate
    from contentgen.pipeline.settings import PipelineSettings

    if getattr(args, "pictures", None) is not None or getattr(args, "baseline", None) is not None:
        return _score_pictures(args, catalog, output)
    plan, goal = _evaluation_goal(args, _get_doc(catalog, args))
    budgets = _budgets()
    settings, store = PipelineSettings(), _store(args)
    planned = reevaluate.estimate(store, goal, settings.prices)
    what = f"v{goal.version} of {goal.namespace}/{goal.name} ({goal.uid})"
    _say_estimate(what, goal.provider, plan, planned, settings.prices.as_of)
    if planned.usd > 0 and not args.yes and not _confirmed(f"pay up to ${planned.usd:.4f}?"):
        if output == "json":
            print_json({"id": goal.uid, "version": goal.version, "dryRun": True, **_estimate(planned)})
        print("nothing was paid; add --yes to evaluate", file=sys.stderr)
        return 0
    outcome = _evaluated_again(catalog, store, goal, settings, budgets, planned)
    if output == "json":
        print_json(
            {
                "id": goal.uid,
                "version": goal.version,
                "dryRun": False,
                "evaluation": outcome.number,
                "ran": outcome.ran,
                "recorded": outcome.recorded,
                "adopted": outcome.adopted,
                **_estimate(planned),
                **{
                    k: outcome.entry[k]
                    for k in ("provider", "promptSet", "seeds", "costUsd", "likeness", "artifacts")
                },
            }
        )
        return 0
    _say_evaluated(args, what, goal.version, outcome)
    return 0


def _evaluation_goal(args: argparse.Namespace, doc: dict[str, Any]) -> tuple[Plan, Target]:
    """The prompt set and seeds, and the version to evaluate; a refusal in the command's flags."""
    from contentgen.pipeline.likeness import reevaluate

    try:
        plan = reevaluate.check_plan(args.prompt_set, args.seed)
        return plan, reevaluate.target(doc, args.version, args.provider, plan)
    except ValueError as exc:
        text = str(exc)
        for said, flag in _EVALUATE_FLAGS:
            text = text.replace(said, flag, 1) if text.startswith(said) else text
        raise CommandError(text) from None


def _budgets() -> Budgets:
    """The budgets the operator would hold this run to (CONTENTGEN_BUDGETS, as its settings)."""
    from contentgen.pricing import Budgets

    try:
        return Budgets.model_validate_json(os.environ.get("CONTENTGEN_BUDGETS") or "{}")
    except ValueError as exc:
        raise CommandError(f"CONTENTGEN_BUDGETS: {str(exc).splitlines()[0]}") from None


def _say_estimate(what: str, provider: str, plan: Plan, planned: Estimate, prices_of: str) -> None:
    pictures = len(plan.items()) * (1 if planned.baseline_cached else 2)
    print(
        f"evaluating {what} with {provider}: {pictures} pictures ({plan.prompt_set}, seeds "
        f"{', '.join(map(str, plan.seeds))}{'; the baseline is stored' if planned.baseline_cached else ''}), "
        f"estimated ${planned.usd:.4f} ({planned.detail}; prices of {prices_of})",
        file=sys.stderr,
    )


def _evaluated_again(
    catalog: Catalog,
    store: ObjectStore,
    goal: Target,
    settings: PipelineSettings,
    budgets: Budgets,
    planned: Estimate,
) -> Outcome:
    """rescore.evaluate_again, each refusal or failure in one line saying what was paid."""
    from contentgen.api import now
    from contentgen.pipeline.likeness import rescore

    try:
        return rescore.evaluate_again(
            catalog,
            store,
            goal,
            prices=settings.prices,
            budgets=budgets,
            work_dir=settings.work_dir,
            presign_seconds=settings.presign_seconds,
            by="cli",
            now=now,
            planned=planned,
        )
    except (rescore.Busy, rescore.OverBudget) as exc:
        raise CommandError(str(exc)) from None
    except InvalidInput as exc:  # refused before anything was asked of the provider
        raise CommandError(f"{exc.reason}: {exc}; nothing was paid") from None
    except MissingCredentials as exc:  # no key, or a refused one: that picture was not paid for
        hint = "evaluate with --provider offline (labelled placeholders, nothing paid)"
        raise CommandError(
            f"{exc.reason}: {exc.instead(hint)}; the same command again, with the key, pays only "
            "for what is not made yet"
        ) from None
    except ContentgenError as exc:
        raise CommandError(
            f"{exc.reason}: {exc}; what was paid is kept in its checkpoints: the same command again "
            "resumes it without paying twice"
        ) from None


def _say_evaluated(args: argparse.Namespace, what: str, version: int, outcome: Outcome) -> None:
    from contentgen.tables import likeness_summary

    entry = outcome.entry
    for number in outcome.adopted:
        print(f"recorded evaluation e{number}, which an earlier attempt finished", file=sys.stderr)
    verb = "evaluated" if outcome.ran else "already evaluated"
    print(f"{verb} {what} as evaluation e{outcome.number}: {likeness_summary(entry['likeness'])}")
    choose = (
        f" unless you choose this one (contentgen assets promote {args.id} --version {version} "
        f"--evaluation {outcome.number})"
        if entry["likeness"].get("verdict") in ("good", "poor")
        else ", and this one measured nothing"
    )
    print(
        f"cost ${float(entry.get('costUsd') or 0):.4f}; kept in the version's history: the version's verdict "
        f"stays its own evaluation's{choose}"
    )
    if not outcome.recorded:
        print(f"not recorded: {what} is no longer in the record (deleted meanwhile)", file=sys.stderr)


def _score_pictures(args: argparse.Namespace, catalog: Catalog, output: str) -> int:
    """Score pictures made elsewhere against the version's subject (pipeline/likeness/pictures.py):
    nothing is generated or paid; the report is a new numbered evaluation in the version's history."""
    _refuse_generation_options(args)
    goal = _scoring_target(catalog, args)
    given, baseline = _pictures_given(args)
    what = f"v{goal.version} of {goal.namespace}/{goal.name} ({goal.uid})"
    extra = f" and {len(baseline)} without the LoRA from {args.baseline}" if baseline else ""
    print(
        f"scoring {len(given)} pictures from {args.pictures}{extra} against {what}: "
        "nothing is generated or paid",
        file=sys.stderr,
    )
    done = _scored(args, catalog, goal, given, baseline)
    if output == "json":
        print_json(_scored_json(goal, done))
    else:
        _say_scored(what, done)
    return 0


def _refuse_generation_options(args: argparse.Namespace) -> None:
    """--pictures generates nothing: the options of a generating evaluation are refused with it."""
    if args.pictures is None:
        raise CommandError("--baseline: only with --pictures (the pictures made with the LoRA)")
    asked = [
        f
        for f, v in (("--prompt-set", args.prompt_set), ("--seed", args.seed), ("--provider", args.provider))
        if v
    ]
    if asked or args.yes:
        raise CommandError(f"{(asked or ['--yes'])[0]}: not with --pictures (nothing is generated or paid)")


def _scoring_target(catalog: Catalog, args: argparse.Namespace) -> Target:
    """The version the pictures are scored against (reevaluate.Target), its refusal in the
    command's words."""
    from contentgen.pipeline.likeness import reevaluate

    doc = _get_doc(catalog, args)
    try:
        return reevaluate.target(doc, args.version, None, reevaluate.check_plan(None, None), draws=False)
    except ValueError as exc:
        text = str(exc)
        raise CommandError(
            text.replace("version:", "--version:", 1) if text.startswith("version:") else text
        ) from None


def _pictures_given(args: argparse.Namespace) -> tuple[list[Picture], list[Picture]]:
    """The pictures of --pictures and --baseline, checked (formats, sizes, counts)."""
    from pathlib import Path

    from contentgen.pipeline.likeness import pictures

    try:
        given = pictures.from_folder(Path(args.pictures))
        baseline = pictures.from_folder(Path(args.baseline)) if args.baseline is not None else []
        pictures.check_all(given, baseline, where=args.pictures)
    except pictures.PictureError as exc:
        raise CommandError(str(exc)) from None
    return given, baseline


def _scored(
    args: argparse.Namespace, catalog: Catalog, goal: Target, given: list[Picture], baseline: list[Picture]
) -> Scored:
    """The pictures scored, stored and recorded (pictures.Scored); a picture that cannot be read,
    or a dataset whose faces cannot be, in one line."""
    from contentgen.api import now
    from contentgen.pipeline.likeness import pictures
    from contentgen.pipeline.settings import PipelineSettings

    try:
        return pictures.score_pictures(
            catalog,
            _store(args),
            goal,
            given,
            baseline,
            work_dir=PipelineSettings().work_dir,
            by="cli",
            now=now,
        )
    except pictures.PictureError as exc:
        raise CommandError(str(exc)) from None
    except InvalidInput as exc:  # the dataset's faces cannot be read
        raise CommandError(f"{exc.reason}: {exc}") from None


def _scored_json(goal: Target, done: Scored) -> dict[str, Any]:
    """The HTTP API's answer, with `baseline` only where some were given, and the artifacts."""
    answer = done.answer(goal)
    if "baseline" not in done.entry:
        del answer["baseline"]
    return {**answer, "artifacts": done.entry["artifacts"]}


def _say_scored(what: str, done: Scored) -> None:
    """The scoring as a table for people: the summary, its reasons, each picture's score."""
    from contentgen.tables import likeness_summary

    likeness = done.entry["likeness"]
    summary = likeness_summary(likeness)
    print(f"scored {what} as evaluation e{done.number}: {summary}")
    for reason in likeness.get("reasons") or []:
        if reason not in summary:
            print(f"  {reason}")
    width = max(len(s["name"]) for s in done.scores)
    for scored in done.scores:
        if scored["similarity"] is None:
            shown = "no face" if not scored["faces"] else f"{scored['faces']} faces, unscored"
        else:
            shown = f"{scored['similarity']:.2f}"
            shown += (
                f" (closest training image {scored['nearestTraining']}, {scored['nearestSimilarity']:.2f})"
            )
        print(f"  {scored['name']:<{width}}  {shown}")
    print(
        "nothing was paid; kept in the version's history: these pictures were made elsewhere, so this is "
        "not a verdict on the LoRA"
    )
    if not done.recorded:
        print(f"not recorded: {what} is no longer in the record (deleted meanwhile)", file=sys.stderr)


def _estimate(planned: Any) -> dict[str, Any]:
    return {"estimateUsd": planned.usd, "estimate": planned.detail, "baselineCached": planned.baseline_cached}


def _confirmed(question: str) -> bool:
    """A yes at the terminal; never without one (a script passes --yes)."""
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


ACTIONS: dict[str, Callable[[argparse.Namespace, Catalog, str], int]] = {
    "list": _list,
    "get": _get,
    "search": _search,
    "stats": _stats,
    "lineage": _lineage,
    "url": _url,
    "transcript": _transcript,
    "delete": _delete,
    "prune": _prune,
    "evaluate": _evaluate,
    "promote": _promote,
    **sharing.ACTIONS,
    **training.actions(_get_doc, _confirmed),
}
