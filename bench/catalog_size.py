"""How large a long-lived resource's record grows (`python -m bench.catalog_size`).

One resource of each kind runs again and again (every 10th run failing), each run as large as the
API lets it be (tests/catalog/factory.py's `grown`: 4000-character prompts, 4 images and 5 LoRAs
an image run, 20,000 characters of transcript a transcription), and its record is rebuilt after
each run as the operator rebuilds it. Printed: the record's BSON size (what MongoDB's 16 MiB limit
is about) after 100, 300 and 1,000 runs, with the bounds of contentgen/catalog/bounds.py and
without them (every run, every version's spec snapshot and transcript kept: the record before the
bounds), and the bytes each further usable version adds. And what the bounds cost a write: the
CPU time of building the bounded record (every run's write over the record before it) a write on
average, and of one more summarize over the record after the last run (what each write pays for
the bounds and the record's summary, median of 5).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

RUNS = (100, 300, 1000)
KINDS = ("LoraTraining", "ImageGeneration", "Transcription")
MONGODB_LIMIT = 16 * 1024 * 1024


@contextmanager
def unbounded() -> Iterator[None]:
    from contentgen.catalog import bounds

    saved = (
        bounds.MAX_RUNS,
        bounds.MAX_DELETED_VERSIONS,
        bounds.DETAILED_VERSIONS,
        bounds.OLDER_PROMPT_CHARS,
    )
    bounds.MAX_RUNS = bounds.MAX_DELETED_VERSIONS = bounds.DETAILED_VERSIONS = bounds.OLDER_PROMPT_CHARS = (
        10**9
    )
    try:
        yield
    finally:
        (
            bounds.MAX_RUNS,
            bounds.MAX_DELETED_VERSIONS,
            bounds.DETAILED_VERSIONS,
            bounds.OLDER_PROMPT_CHARS,
        ) = saved


def size(kind: str, runs: int) -> tuple[int, int, float, float]:
    """(BSON bytes of the record after `runs` runs, its usable versions, CPU seconds a write while
    it grew, CPU seconds of one more summarize over it)."""
    import bson

    from contentgen.catalog.dates import to_storage
    from contentgen.catalog.document import summarize
    from tests.catalog.factory import grown

    began = time.process_time()
    doc = grown(kind, runs)
    building = (time.process_time() - began) / runs
    again = []
    for _ in range(5):
        copied = copy.deepcopy(doc)
        began = time.process_time()
        summarize(copied)
        again.append(time.process_time() - began)
    return len(bson.encode(to_storage(doc))), len(doc["versions"]), building, statistics.median(again)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, nargs="*", default=list(RUNS))
    args = parser.parse_args()
    print(
        "| kind | runs | usable versions | record (bounded) | share of 16 MiB | without the bounds "
        "| CPU a write while it grew | CPU of one more summarize |"
    )
    print("|---|---|---|---|---|---|---|---|")
    per_version: dict[str, float] = {}
    for kind in KINDS:
        sizes = []
        for runs in args.runs:
            bounded, versions, building, summarizing = size(kind, runs)
            with unbounded():
                whole, *_ = size(kind, runs)
            sizes.append((versions, bounded))
            over = " (over the limit)" if whole > MONGODB_LIMIT else ""
            print(
                f"| {kind} | {runs} | {versions} | {bounded / 2**20:.2f} MiB | {bounded / MONGODB_LIMIT:.0%} "
                f"| {whole / 2**20:.2f} MiB{over} | {building * 1e3:.1f} ms | {summarizing * 1e3:.1f} ms |",
                flush=True,
            )
        (v1, b1), (v2, b2) = sizes[-2], sizes[-1]
        per_version[kind] = (b2 - b1) / (v2 - v1)
    print()
    for kind, grows in per_version.items():
        print(
            f"{kind}: {grows / 1024:.1f} KiB more a usable version; 16 MiB at about "
            f"{MONGODB_LIMIT / grows:,.0f} usable versions"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
