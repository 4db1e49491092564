"""What a catalog write costs as a record's versions accumulate (`python -m bench.catalog`).

The operator writes a resource's record at most once a second while its run goes (live progress)
and rebuilds the whole document each time (catalog.modify: read it, build it, write it if nobody
wrote in between), so the cost of one write, and the size of the document, grow with the number
of versions a record holds. Measured per backend (mongomock, the embedded montydb catalog) for a
LoraTraining record with 1, 10, 100 and 300 versions:

- a live-progress write (the operator's: `catalog_document` over the stored record, then the
  conditional replace), median of repeated writes;
- the baseline in the same run: the plain replace of the very same document (no read, no build);
- the document's size (JSON bytes).

The ratio write ÷ replace is the price of building and of the conditional write; the absolute
time says how many resources a catalog can follow live at one write a second each. Writes to
/tmp; nothing is kept.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

VERSIONS = (1, 10, 100, 300)
UID = "0b7f1f3e-aaaa-4bbb-8ccc-123456789abc"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def status(versions: int, progress: int) -> dict[str, Any]:
    made = [
        {
            "version": n,
            "generation": n,
            "provider": "fal",
            "placeholder": False,
            "startedAt": "2026-01-01T00:00:00Z",
            "createdAt": "2026-01-01T00:10:00Z",
            "costUsd": 2.0,
            "modelUri": f"s3://assets/loras/alice/{UID}/v{n}/model.safetensors",
            "configUri": f"s3://assets/loras/alice/{UID}/v{n}/config.json",
            "datasetUri": f"s3://assets/datasets/alice/{UID}/v{n}/dataset.zip",
            "contactSheetUri": f"s3://assets/datasets/alice/{UID}/v{n}/contact-sheet.jpg",
            "sizeBytes": 10_000_000,
            "sha256": "ab" * 32,
            "sourceUrl": "https://example.com/videos/source.mp4",
            "frames": 24,
            "triggerWord": "tw",
            "trainingModel": "fal-ai/flux-lora-fast-training",
            "steps": 1000,
        }
        for n in range(1, versions + 1)
    ]
    return {
        "phase": "Running",
        "progress": progress,
        "stage": "train",
        "observedGeneration": versions + 1,
        "runVersion": versions + 1,
        "startedAt": "2026-01-01T01:00:00Z",
        "latestVersion": versions,
        "versions": made,
    }


def state(versions: int, progress: int) -> Any:
    from contentgen.catalog import ResourceState

    spec = {
        "owner": "alice",
        "provider": "fal",
        "source": {"url": "https://e.com/v.mp4"},
        "triggerWord": "tw",
    }
    return ResourceState(
        kind="LoraTraining",
        name="avatar",
        namespace="team-a",
        uid=UID,
        generation=versions + 1,
        spec=spec,
        status=status(versions, progress),
        created_at=T0,
    )


def measure(catalog: Any, versions: int, repeat: int) -> dict[str, float]:
    from contentgen.catalog import catalog_document

    catalog.modify(UID, lambda previous: catalog_document(state(versions, 0), now=T0, origin="operator"))
    writes, replaces = [], []
    for n in range(repeat):  # interleaved, so that other load on the machine hits both alike
        moment = T0 + timedelta(seconds=n + 1)
        began = time.perf_counter()
        catalog.modify(
            UID,
            lambda previous, n=n, moment=moment: catalog_document(
                state(versions, n % 100), now=moment, origin="operator", previous=previous
            ),
        )
        writes.append(time.perf_counter() - began)
        doc = catalog.get(UID)
        began = time.perf_counter()
        catalog.upsert(doc)
        replaces.append(time.perf_counter() - began)
    size = len(json.dumps(catalog.get(UID), default=str))
    write, replace = statistics.median(writes), statistics.median(replaces)
    return {"versions": versions, "write_ms": write * 1e3, "replace_ms": replace * 1e3,
            "ratio": write / replace, "bytes": size}  # fmt: skip


def backends(root: Path) -> dict[str, Any]:
    import mongomock

    from contentgen.catalog.embedded import EmbeddedCatalog
    from contentgen.catalog.mongo import MongoCatalog

    def embedded(versions: int) -> Any:
        return EmbeddedCatalog(root / f"catalog-{versions}")

    def mock(versions: int) -> Any:
        return MongoCatalog(mongomock.MongoClient(), "contentgen")

    return {"mongomock": mock, "embedded (montydb)": embedded}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="contentgen-bench-catalog-") as folder:
        for name, open_catalog in backends(Path(folder)).items():
            for versions in VERSIONS:
                catalog = open_catalog(versions)
                try:
                    rows.append({"backend": name, **measure(catalog, versions, args.repeat)})
                finally:
                    catalog.close()
    print(
        "| backend | versions | live-progress write (median) | plain replace (baseline) | ratio | document |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['backend']} | {row['versions']} | {row['write_ms']:.2f} ms | {row['replace_ms']:.2f} ms "
            f"| {row['ratio']:.1f}× | {row['bytes'] / 1024:.0f} KiB |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
