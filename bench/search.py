"""Search at 10,000 and 100,000 records: the index against today's scan (`make bench-search`).

Generates a catalog of N records with a fixed seed (20 owners; 20 % transcriptions of 10-60 minutes
of speech at ~150 words a minute, 60 % image generations, 20 % LoRAs, with names, tags,
descriptions and prompts), words drawn from a Zipf distribution (s = 1.1) over a vocabulary of
common English words followed by 30,000 made-up words, so a few words are everywhere and most are
rare, as in speech. A transcription keeps what the catalog keeps of it: the first 20,000
characters (SEARCH_TEXT_CHARS, about 22 minutes), with the time of every fifth word.

Then, for one owner (as the API asks: every query names its owner), five query shapes: a common
word, a rare word, a phrase, two words, and a word nothing has. The owner searched is owner-00,
whose records are all transcriptions (record i is owner i % 20's, and of kind i % 10): a twentieth
of the catalog, every one of them long, the worst case for ranking and snippets. Each is timed:

- scan: what search did before the index (queries.build_search: a case-insensitive regular
  expression per word over every record's searchText), one page of 50;
- index: catalog.search (the embedded catalog's FTS5 index; on FerretDB, which has no text index,
  the scan it falls back to), one page of 50 with hits and snippets;

p50 and p95 over --repeat runs (the scan's at 100,000 over fewer: it takes seconds). Precision and
recall of the index's matches against whole-word matching over the generated text (the truth, in
Python) and against the scan's (which also matches inside words: "art" in "party") are reported;
the benchmark fails when the index misses or adds a record against the truth, or when its p95 at
the largest size is over --budget-ms. Writes bench/out/search-results.json and prints a markdown
table; --docs puts it into docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from contentgen.catalog import Catalog, Filters, Page
from contentgen.catalog.document import _search_text
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.catalog.queries import DEFAULT_SORT, build_search, find_page
from contentgen.catalog.search import parse

OUT = Path(__file__).resolve().parent / "out"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
SEED = 38
OWNERS = 20
SEARCH_TEXT_CHARS = 20_000
WORDS_PER_MINUTE = 150
MARK_WORDS = 5
T0 = datetime(2026, 1, 1, tzinfo=UTC)
COMMON = [
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "that",
    "is",
    "it",
    "you",
    "he",
    "was",
    "for",
    "on",
    "are",
    "as",
    "with",
    "his",
    "they",
    "i",
    "at",
    "be",
    "this",
    "have",
    "from",
    "or",
    "one",
    "had",
    "by",
    "word",
    "but",
    "not",
    "what",
    "all",
    "were",
    "we",
    "when",
    "your",
    "can",
    "said",
    "there",
    "use",
    "an",
    "each",
    "which",
    "she",
    "do",
    "how",
    "their",
    "if",
    "will",
    "up",
    "other",
    "about",
    "out",
    "many",
    "then",
    "them",
    "these",
    "so",
    "some",
    "her",
    "would",
    "make",
    "like",
    "him",
    "into",
    "time",
    "has",
    "look",
    "two",
    "more",
    "write",
    "go",
    "see",
    "number",
    "no",
    "way",
    "could",
    "people",
    "my",
    "than",
    "first",
    "water",
    "been",
    "call",
    "who",
    "oil",
    "its",
    "now",
    "find",
    "long",
    "down",
    "day",
    "did",
    "get",
    "come",
    "made",
    "may",
    "part",
]
BUDGET_MS = 250.0


def vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    """COMMON, then made-up words of 2-4 syllables, all distinct."""
    onsets = [
        "b",
        "c",
        "d",
        "f",
        "g",
        "h",
        "j",
        "k",
        "l",
        "m",
        "n",
        "p",
        "r",
        "s",
        "t",
        "v",
        "w",
        "z",
        "br",
        "cr",
        "dr",
        "fl",
        "gr",
        "pl",
        "st",
        "tr",
        "ch",
        "sh",
        "th",
    ]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "io"]
    codas = ["", "", "n", "r", "s", "l", "m", "nd", "st", "rk"]
    words, seen = list(COMMON), set(COMMON)
    while len(words) < size:
        n = int(rng.integers(2, 5))
        word = "".join(
            str(rng.choice(onsets)) + str(rng.choice(vowels)) + str(rng.choice(codas)) for _ in range(n)
        )
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


@dataclass
class Corpus:
    words: list[str]
    rng: np.random.Generator
    cdf: np.ndarray

    @classmethod
    def make(cls, seed: int = SEED) -> Corpus:
        rng = np.random.default_rng(seed)
        words = vocabulary(len(COMMON) + 30_000, rng)
        ranks = np.arange(1, len(words) + 1, dtype=float)
        weights = 1.0 / ranks**1.1
        return cls(words, rng, np.cumsum(weights / weights.sum()))

    def text(self, n: int) -> list[str]:
        picks = np.searchsorted(self.cdf, self.rng.random(n), side="right")
        return [self.words[min(int(i), len(self.words) - 1)] for i in picks]


def transcript(corpus: Corpus) -> tuple[str, dict[str, list[float]], float]:
    """What the catalog keeps of 10-60 minutes of speech: its first SEARCH_TEXT_CHARS characters and
    the time of every fifth word."""
    minutes = float(corpus.rng.uniform(10, 60))
    said = int(minutes * WORDS_PER_MINUTE)
    words = corpus.text(min(said, SEARCH_TEXT_CHARS // 4))
    chars: list[int] = []
    seconds: list[float] = []
    at, parts = 0, []
    gap = 60.0 / WORDS_PER_MINUTE
    for n, word in enumerate(words):
        if at >= SEARCH_TEXT_CHARS:
            break
        if n % MARK_WORDS == 0:
            chars.append(at)
            seconds.append(round(n * gap, 2))
        parts.append(word)
        at += len(word) + 1
    return " ".join(parts)[:SEARCH_TEXT_CHARS], {"chars": chars, "seconds": seconds}, minutes * 60


def records(n: int, corpus: Corpus) -> Iterator[dict[str, Any]]:
    """N catalog documents of the current shape (the fields search and lists read)."""
    for i in range(n):
        owner = f"owner-{i % OWNERS:02d}"
        roll = i % 10
        kind = "Transcription" if roll < 2 else "ImageGeneration" if roll < 8 else "LoraTraining"
        created = T0 + timedelta(minutes=i)
        name = "-".join(corpus.text(2)) + f"-{i}"
        version: dict[str, Any] = {"version": 1, "generation": 1, "createdAt": created, "artifacts": []}
        doc: dict[str, Any] = {
            "_id": f"rec-{i:07d}",
            "jobId": f"rec-{i:07d}",
            "schema": 2,
            "rev": 1,
            "origin": "operator",
            "kind": kind,
            "type": {"Transcription": "transcription", "ImageGeneration": "image-generation"}.get(
                kind, "lora-training"
            ),
            "name": name,
            "namespace": "default",
            "owner": owner,
            "provider": "offline",
            "tags": corpus.text(2),
            "description": " ".join(corpus.text(int(corpus.rng.integers(0, 12)))),
            "status": "Succeeded",
            "latestRun": {"version": 1, "generation": 1, "phase": "Succeeded", "progress": 100},
            "latestVersion": 1,
            "deleted": None,
            "createdAt": created,
            "updatedAt": created,
            "totalBytes": 1000,
        }
        if kind == "Transcription":
            text, times, duration = transcript(corpus)
            version.update(transcriptText=text, transcriptTimes=times)
            doc.update(transcriptText=text, durationSeconds=duration, wordCount=len(text.split()))
        elif kind == "ImageGeneration":
            version["prompt"] = " ".join(corpus.text(int(corpus.rng.integers(8, 30))))
            doc["prompt"] = version["prompt"]
        else:
            doc["triggerWord"] = version["triggerWord"] = corpus.words[int(corpus.rng.integers(200, 30_000))]
        doc["versions"] = [version]
        doc["searchText"] = _search_text(doc)
        yield doc


def queries_for(corpus: Corpus, sample: dict[str, Any]) -> dict[str, str]:
    """The five shapes; the phrase is two words said one after the other in a sample transcript."""
    said = sample["versions"][0]["transcriptText"].split()
    rare = next(w for w in corpus.words[20_000:] if len(w) >= 7)
    return {
        "common word": corpus.words[20],
        "rare word": rare,
        "phrase": f'"{said[200]} {said[201]}"',
        "two words": f"{corpus.words[300]} {corpus.words[2000]}",
        "no hit": "zzqxjv",
    }


def truth(docs: list[dict[str, Any]], text: str, owner: str) -> set[str]:
    """The records of `owner` where every term occurs as whole words (the index's meaning)."""
    patterns = [t.pattern for t in parse(text).terms]
    found = set()
    for doc in docs:
        if doc["owner"] == owner and all(p.search(doc["searchText"]) for p in patterns):
            found.add(doc["_id"])
    return found


def timed(call: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def all_ids_scan(catalog: Catalog, text: str, owner: str) -> set[str]:
    return {d["_id"] for d in catalog._collection.find(build_search(text, Filters(owner=owner)), {"_id": 1})}


def all_ids_index(catalog: Catalog, text: str, owner: str) -> set[str]:
    found: set[str] = set()
    offset = 0
    while True:
        page = catalog.search(text, Filters(owner=owner), None, Page(500, offset))
        found |= {d["_id"] for d in page.docs}
        offset += 500
        if offset >= page.total:
            return found


def pr(found: set[str], expected: set[str]) -> tuple[float, float]:
    precision = len(found & expected) / len(found) if found else 1.0
    recall = len(found & expected) / len(expected) if expected else 1.0
    return round(precision, 4), round(recall, 4)


def open_backend(backend: str, folder: Path) -> tuple[Catalog, Callable[[], None]]:
    if backend == "embedded":
        catalog = EmbeddedCatalog(folder / "catalog")
        return catalog, catalog.close
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "local-cluster"))
    from contentgen.catalog.mongo import MongoCatalog
    from localcluster import mongowire

    server = mongowire.start(folder / "ferretdb")
    opened = MongoCatalog.connect(f"{server.url}bench")

    def close() -> None:
        opened.close()
        server.stop()

    return opened, close


def load(catalog: Catalog, docs: list[dict[str, Any]], backend: str) -> float:
    """Writes the documents in bulk; the embedded index is built from the store, as at the first
    open of a catalog from before it. Returns seconds."""
    started = time.perf_counter()
    for at in range(0, len(docs), 1000):
        catalog._collection.insert_many([dict(d) for d in docs[at : at + 1000]])
    if backend == "embedded":
        assert isinstance(catalog, EmbeddedCatalog)
        catalog.search_index.rebuild(catalog._collection.find({}))
    else:
        catalog.ensure_indexes()
    return time.perf_counter() - started


def measure(backend: str, n: int, repeat: int, scan_repeat: int, corpus_seed: int = SEED) -> dict[str, Any]:
    corpus = Corpus.make(corpus_seed)
    generated = time.perf_counter()
    docs = list(records(n, corpus))
    print(f"[{backend} {n}] generated in {time.perf_counter() - generated:.0f} s", flush=True)
    owner = "owner-00"
    sample = next(d for d in docs if d["kind"] == "Transcription" and d["owner"] == owner)
    shapes = queries_for(corpus, sample)
    folder = Path(tempfile.mkdtemp(prefix="bench-search-"))
    catalog, close = open_backend(backend, folder)
    try:
        seconds = load(catalog, docs, backend)
        print(f"[{backend} {n}] loaded and indexed in {seconds:.0f} s", flush=True)
        rows = []
        for shape, text in shapes.items():
            expected = truth(docs, text, owner)
            filters = Filters(owner=owner)
            index_ms, result = timed(lambda t=text, f=filters: catalog.search(t, f), repeat)
            scan_ms, _ = timed(
                lambda t=text, f=filters: find_page(
                    catalog._collection, build_search(t, f), DEFAULT_SORT, Page()
                ),
                scan_repeat,
            )
            found = all_ids_index(catalog, text, owner)
            scanned = all_ids_scan(catalog, text, owner)
            timed_hits = sum(1 for h in result.hits for t in h.transcript if t.at_seconds is not None)
            row = {
                "shape": shape,
                "query": text,
                "matches": len(expected),
                "scan_matches": len(scanned),
                "engine": result.engine,
                "index_p50_ms": round(statistics.median(index_ms), 1),
                "index_p95_ms": round(percentile(index_ms, 0.95), 1),
                "scan_p50_ms": round(statistics.median(scan_ms), 1),
                "scan_p95_ms": round(percentile(scan_ms, 0.95), 1),
                "precision_recall_vs_truth": pr(found, expected),
                "precision_recall_vs_scan": pr(found, scanned),
                "transcript_hits_with_time": timed_hits,
            }
            rows.append(row)
            print(f"[{backend} {n}] {json.dumps(row)}", flush=True)
        return {"backend": backend, "records": n, "load_s": round(seconds, 1), "rows": rows}
    finally:
        close()
        shutil.rmtree(folder, ignore_errors=True)


def table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | records | query | matches (scan's) | engine | index p50 / p95 | scan p50 / p95 "
        "| scan ÷ index (p50) | precision, recall vs whole words (vs scan) | hits with a time |",
        "| --- | ---: | --- | ---: | --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for run in runs:
        for r in run["rows"]:
            ratio = r["scan_p50_ms"] / r["index_p50_ms"] if r["index_p50_ms"] else float("inf")
            p, rc = r["precision_recall_vs_truth"]
            sp, sr = r["precision_recall_vs_scan"]
            lines.append(
                f"| {run['backend']} | {run['records']:,} | {r['shape']}: `{r['query']}` | {r['matches']} "
                f"({r['scan_matches']}) | {r['engine']} | {r['index_p50_ms']} / {r['index_p95_ms']} ms "
                f"| {r['scan_p50_ms']} / {r['scan_p95_ms']} ms | {ratio:.0f}× | {p}, {rc} ({sp}, {sr}) "
                f"| {r['transcript_hits_with_time']} |"
            )
    return "\n".join(lines)


def check(runs: list[dict[str, Any]], budget_ms: float) -> list[str]:
    problems = []
    largest = max(run["records"] for run in runs)
    for run in runs:
        for r in run["rows"]:
            if tuple(r["precision_recall_vs_truth"]) != (1.0, 1.0):
                problems.append(
                    f"{run['backend']} {run['records']} {r['shape']}: {r['precision_recall_vs_truth']}"
                )
            indexed = r["engine"] != "scan"
            if indexed and run["records"] == largest and r["index_p95_ms"] > budget_ms:
                problems.append(f"{run['backend']} {run['records']} {r['shape']}: p95 {r['index_p95_ms']} ms")
    return problems


def write_docs(text: str) -> None:
    page = DOCS.read_text()
    start, end = "<!-- bench-search:start -->", "<!-- bench-search:end -->"
    if start not in page:
        raise SystemExit(f"{DOCS} has no {start} … {end} section")
    before, rest = page.split(start, 1)
    _, after = rest.split(end, 1)
    DOCS.write_text(f"{before}{start}\n{text}\n{end}{after}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", default="10000,100000", help="sizes, comma-separated")
    parser.add_argument("--backends", default="embedded,ferretdb", help="embedded and/or ferretdb")
    parser.add_argument(
        "--ferretdb-records", default="2000", help="sizes for FerretDB (it scans: seconds a query)"
    )
    parser.add_argument("--repeat", type=int, default=20, help="runs of each indexed query")
    parser.add_argument("--scan-repeat", type=int, default=5, help="runs of each scan")
    parser.add_argument(
        "--budget-ms", type=float, default=BUDGET_MS, help="the index's p95 at the largest size"
    )
    parser.add_argument("--docs", action="store_true", help="put the table into docs/performance.md")
    args = parser.parse_args(argv)
    runs = []
    load_before = os.getloadavg()
    for backend in args.backends.split(","):
        sizes = args.ferretdb_records if backend == "ferretdb" else args.records
        for n in (int(x) for x in sizes.split(",") if x):
            runs.append(measure(backend, n, args.repeat, args.scan_repeat))
    load_after = os.getloadavg()
    problems = check(runs, args.budget_ms)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    heading = (
        f"`python -m bench.search {' '.join(argv if argv is not None else sys.argv[1:])}`, {when} UTC, "
        f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} before and {load_after[0]:.2f} after; "
        f"p50/p95 over {args.repeat} runs (index) and {args.scan_repeat} (scan), one owner of {OWNERS}, "
        f"a page of 50. Budget: the index's p95 at the largest size ≤ {args.budget_ms:.0f} ms, and "
        "precision and recall 1.0 against whole-word matching: "
        + ("met." if not problems else "NOT met: " + "; ".join(problems))
    )
    text = heading + "\n\n" + table(runs)
    print(text)
    OUT.mkdir(exist_ok=True)
    (OUT / "search-results.json").write_text(json.dumps({"runs": runs, "problems": problems}, indent=1))
    if args.docs:
        write_docs(text)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
