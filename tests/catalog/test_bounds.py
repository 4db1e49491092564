"""A record stays far below MongoDB's 16 MiB document limit however long its resource lives
(bounds.py), on every backend; a real server refuses a document over the limit, mongomock and
montydb do not; and concurrent writers lose no update where the backend keeps MongoDB's
single-document atomicity."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import bson
import pymongo.errors
import pytest

from contentgen.catalog import Catalog, WriteConflict, record_json
from contentgen.catalog.bounds import CURVE_POINT, DETAILED_VERSIONS, MAX_DELETED_VERSIONS, MAX_RUNS
from contentgen.catalog.dates import to_storage
from contentgen.catalog.document import without_versions
from contentgen.httpapi.manifests import settings_of
from tests.catalog.factory import T0, grown, image_doc
from tests.catalog.video_factory import video_doc

MONGODB_LIMIT = 16 * 1024 * 1024
# (kind, runs): past every bound (100 runs, 20 detailed versions); the LoRA as long as the issue asks.
LONG_LIVED = (
    ("LoraTraining", 1000),
    ("ImageGeneration", 250),
    ("Transcription", 250),
    ("VideoGeneration", 250),
)
_grown: dict[str, dict[str, Any]] = {}


def long_lived(kind: str, runs: int) -> dict[str, Any]:
    """Built once for every backend (a thousand writes take seconds)."""
    if kind not in _grown:
        _grown[kind] = grown_video(runs) if kind == "VideoGeneration" else grown(kind, runs)
    return _grown[kind]


def grown_video(runs: int, fail_every: int = 10) -> dict[str, Any]:
    doc: dict[str, Any] | None = None
    for n in range(1, runs + 1):
        doc = video_doc(
            "long-lived-VideoGeneration", n, "Failed" if n % fail_every == 0 else "Succeeded", doc
        )
    assert doc is not None
    return doc


def bson_size(doc: dict[str, Any]) -> int:
    return len(bson.encode(to_storage(doc)))


@pytest.mark.parametrize(("kind", "runs"), LONG_LIVED)
def test_a_long_lived_record_stays_far_below_the_document_limit(
    catalog: Catalog, kind: str, runs: int
) -> None:
    doc = long_lived(kind, runs)
    failed = runs // 10
    assert len(doc["versions"]) == runs - failed  # every usable version stays
    assert len(doc["runs"]) == MAX_RUNS and doc["olderRuns"] == runs - MAX_RUNS
    assert [r["version"] for r in doc["runs"]] == list(range(runs - MAX_RUNS + 1, runs + 1))
    detailed = [v for v in doc["versions"] if v["spec"] is not None]
    assert [v["version"] for v in detailed] == [v["version"] for v in doc["versions"][-DETAILED_VERSIONS:]]
    catalog.upsert(doc)
    stored = catalog.get(doc["_id"])
    assert stored is not None
    assert bson_size(stored) < MONGODB_LIMIT / 3, f"{kind}: {bson_size(stored)} bytes after {runs} runs"
    record = record_json(stored)  # what `contentgen assets get` and the HTTP API print
    assert record["latestVersion"] == runs - 1 and record["olderRuns"] == runs - MAX_RUNS
    assert len(record["versions"]) == runs - failed and record["versions"][-1]["spec"] is not None


def test_older_lora_versions_keep_their_likeness_curves_in_brief() -> None:
    """Each version of a cluster LoRA carries its checkpoints' curve (20 points at most): the newest
    20 versions keep it whole, older ones each point's step, verdict, median and mark (the whole
    curve stays in the version's likeness-curve.json)."""
    doc = long_lived("LoraTraining", 1000)
    older, newest = doc["versions"][0], doc["versions"][-1]
    assert [set(p) for p in older["likeness"]["checkpoints"]] == [set(CURVE_POINT)] * 20
    assert older["likeness"]["chosenStep"] == 10000 and older["likeness"]["checkpoints"][-1]["chosen"]
    whole = newest["likeness"]["checkpoints"]
    assert len(whole) == 20 and all(p["gridUri"] and p["reasons"] for p in whole)
    # what the brief is for: 900 versions' whole curves alone would pass a third of the limit
    assert len(doc["versions"]) * len(bson.encode({"curve": whole})) > MONGODB_LIMIT / 3


def test_the_settings_of_a_version_without_its_snapshot_are_refused_not_guessed() -> None:
    """A version older than the newest 20 keeps no spec snapshot: re-running it or exporting its
    manifest (the HTTP API) says so rather than handing out the current spec as its settings."""
    doc = long_lived("ImageGeneration", 250)
    oldest, newest = doc["versions"][0], doc["versions"][-1]
    with pytest.raises(ValueError, match=r"v1 ran are no longer in its record.*result\.json"):
        settings_of(doc, int(oldest["version"]))
    spec, number = settings_of(doc, int(newest["version"]))
    assert number == newest["version"] and spec == newest["spec"]


def test_without_the_bounds_a_transcription_outgrows_the_document_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the bounds are for: keeping every run's transcript and spec, 300 runs of a
    transcription make a record close to 16 MiB (bench/catalog_size.py: over it at 1,000)."""
    from contentgen.catalog import bounds

    for name in ("MAX_RUNS", "DETAILED_VERSIONS", "OLDER_PROMPT_CHARS"):
        monkeypatch.setattr(bounds, name, 10**9)
    assert bson_size(grown("Transcription", 300)) > MONGODB_LIMIT / 2


def test_deleted_versions_keep_the_newest_and_count_the_rest() -> None:
    doc = long_lived("ImageGeneration", 250)
    numbers = [int(v["version"]) for v in doc["versions"]][:150]
    pruned = without_versions(doc, numbers[:70], at=T0 + timedelta(days=400), by="cli")
    pruned = without_versions(pruned, numbers[70:], at=T0 + timedelta(days=401), by="cli")
    assert len(pruned["deletedVersions"]) == MAX_DELETED_VERSIONS
    assert pruned["olderDeletedVersions"] == 150 - MAX_DELETED_VERSIONS
    assert [v["version"] for v in pruned["deletedVersions"]] == numbers[-MAX_DELETED_VERSIONS:]
    assert len(pruned["runs"]) == MAX_RUNS and pruned["olderRuns"] == doc["olderRuns"]  # not counted twice


def test_a_document_over_16_mib_is_refused_by_a_server_and_kept_by_the_doubles(
    catalog: Catalog, request: pytest.FixtureRequest
) -> None:
    """FerretDB refuses it as MongoDB does (the driver checks the server's maxBsonObjectSize);
    mongomock and montydb store it, so only the server shows the limit."""
    big = {**image_doc("uid-big"), "description": "x" * (17 * 1024 * 1024)}
    if request.node.callspec.params["catalog"] == "ferretdb":
        with pytest.raises(pymongo.errors.DocumentTooLarge):
            catalog.upsert(big)
        assert catalog.get("uid-big") is None
    else:
        catalog.upsert(big)
        stored = catalog.get("uid-big")
        assert stored is not None and len(stored["description"]) == 17 * 1024 * 1024


@pytest.mark.atomic_writes
def test_racing_writers_lose_no_update(catalog: Catalog) -> None:
    """4 writers × 25 changes of one record through modify (read, change, write if the rev is
    still the one read): every acknowledged change is in the stored record."""
    catalog.upsert({**image_doc("uid-race"), "hits": 0})
    acknowledged = []

    def bump(current: dict[str, Any] | None) -> dict[str, Any]:
        assert current is not None
        return {**current, "rev": current["rev"] + 1, "hits": current["hits"] + 1}

    def writer() -> None:
        done = 0
        while done < 25:
            try:
                catalog.modify("uid-race", bump)
            except WriteConflict:  # 8 other writers came first: try again
                continue
            done += 1
        acknowledged.append(done)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sum(acknowledged) == 100
    stored = catalog.get("uid-race")
    assert stored is not None and stored["hits"] == 100
