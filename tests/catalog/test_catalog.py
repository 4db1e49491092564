"""The write side and get, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import mongomock
import pytest

from contentgen.catalog import DELETED, INDEXES, Catalog, CatalogMissing, Filters, WriteConflict, open_catalog
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.catalog.mongo import MongoCatalog
from tests.catalog.factory import T0, image_doc, lora_doc, transcript_doc


def test_upsert_then_get_returns_the_document(catalog: Catalog) -> None:
    doc = lora_doc("uid-1", tags=("avatar",))
    catalog.upsert(doc)
    assert catalog.get("uid-1") == doc
    assert catalog.get("uid-missing") is None


def test_upsert_replaces_the_whole_document(catalog: Catalog) -> None:
    first = lora_doc("uid-1", versions=1)
    catalog.upsert(first)
    second = lora_doc("uid-1", versions=2, previous=catalog.get("uid-1"))
    catalog.upsert(second)
    stored = catalog.get("uid-1")
    assert stored is not None
    assert [v["version"] for v in stored["versions"]] == [1, 2]
    assert stored["latestModelUri"].endswith("/v2/model.safetensors")
    assert len(stored["artifacts"]) == 4  # both versions' model and config
    assert catalog.find(Filters()).total == 1


def test_dates_come_back_utc_aware_and_at_millisecond_precision(catalog: Catalog) -> None:
    created = datetime(2025, 3, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    catalog.upsert(image_doc("uid-1", created=created))
    stored = catalog.get("uid-1")
    assert stored is not None
    assert stored["createdAt"] == datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert stored["createdAt"].tzinfo is UTC
    assert stored["completedAt"].tzinfo is UTC


def test_get_with_an_owner_hides_other_owners_records(catalog: Catalog) -> None:
    catalog.upsert(transcript_doc("uid-1", owner="alice"))
    assert catalog.get("uid-1", owner="alice") is not None
    assert catalog.get("uid-1", owner="bob") is None


def test_mark_deleted_keeps_the_record(catalog: Catalog) -> None:
    catalog.upsert(image_doc("uid-1"))
    when = T0 + timedelta(days=1)
    assert catalog.mark_deleted("uid-1", when) is True  # deletionPolicy Delete: outputs removed
    stored = catalog.get("uid-1")
    assert stored is not None
    assert stored["status"] == DELETED
    assert stored["deletedAt"] == when and stored["deleted"]["outputsKept"] is False
    assert stored["images"] == [] and stored["totalBytes"] == 0
    (gone,) = stored["deletedVersions"]  # the history stays
    assert gone["version"] == 1 and gone["deletedAt"] == when and gone["objects"] == 2
    assert catalog.mark_deleted("uid-missing", when) is False
    assert catalog.find(Filters()).total == 0
    assert catalog.find(Filters(status=DELETED)).total == 1


def test_a_retained_resource_keeps_its_versions_and_says_so(catalog: Catalog) -> None:
    catalog.upsert(image_doc("uid-1"))
    when = T0 + timedelta(days=1)
    assert catalog.mark_deleted("uid-1", when, policy="Retain", outputs_kept=True, by="operator")
    stored = catalog.get("uid-1")
    assert stored is not None and stored["status"] == "Succeeded"
    assert stored["deleted"] == {"at": when, "policy": "Retain", "outputsKept": True, "by": "operator"}
    assert len(stored["images"]) == 2 and stored["versions"][0]["version"] == 1
    assert catalog.find(Filters(status="Succeeded")).total == 1  # still listed: its outputs are there


def test_a_deleted_pending_resource_does_not_stay_pending(catalog: Catalog) -> None:
    catalog.upsert(transcript_doc("uid-1", phase="Pending"))
    assert catalog.find(Filters(run="Pending")).total == 1
    catalog.mark_deleted("uid-1", T0 + timedelta(hours=1), policy="Retain", outputs_kept=True, by="operator")
    stored = catalog.get("uid-1")
    assert stored is not None and stored["status"] == DELETED  # nothing to keep
    run = stored["latestRun"]
    assert run["phase"] == "Cancelled" and "deleted while this run was Pending" in run["message"]
    assert "deletionPolicy Retain" in run["message"]
    assert catalog.find(Filters(run="Pending")).total == 0
    assert catalog.find(Filters(status=DELETED, run="Cancelled")).total == 1


def test_writes_are_conditional_on_the_stored_revision(catalog: Catalog) -> None:
    """No lost update: a write made from a document another writer has changed since is refused,
    and modify() reads again and applies its change to the newer document."""
    first = image_doc("uid-1")
    catalog.write(first, None, exists=False)
    with pytest.raises(WriteConflict):
        catalog.write(first, None, exists=False)  # someone inserted it first
    stored = catalog.get("uid-1")
    assert stored is not None and stored["rev"] == 1
    newer = {**stored, "rev": 2, "description": "theirs"}
    catalog.write(newer, 1, exists=True)
    with pytest.raises(WriteConflict):
        catalog.write({**stored, "rev": 2, "description": "mine"}, 1, exists=True)  # read at rev 1
    seen: list[int] = []

    def change(current: dict[str, Any] | None) -> dict[str, Any]:
        assert current is not None
        seen.append(current["rev"])
        if len(seen) == 1:  # another writer comes first, once
            catalog.write({**current, "rev": current["rev"] + 1, "tags": ["x"]}, current["rev"], exists=True)
        return {**current, "rev": current["rev"] + 1, "description": f"{current['description']}+mine"}

    written = catalog.modify("uid-1", change)
    assert seen == [2, 3] and written is not None
    stored = catalog.get("uid-1")
    assert stored is not None and stored["rev"] == 4
    assert stored["tags"] == ["x"] and stored["description"] == "theirs+mine"


def test_ping_reads_the_catalog(catalog: Catalog) -> None:
    catalog.ping()


def test_ensure_indexes_creates_the_query_indexes() -> None:
    client = mongomock.MongoClient()
    catalog = MongoCatalog(client, "cg")
    catalog.ensure_indexes()
    catalog.ensure_indexes()  # idempotent
    info = client["cg"]["jobs"].index_information()
    assert {name: info[name]["key"] for _, name in INDEXES} == {
        "owner_type_createdAt": [("owner", 1), ("type", 1), ("createdAt", -1)],
        "owner_status_createdAt": [("owner", 1), ("status", 1), ("createdAt", -1)],
        "owner_searchText": [("owner", 1), ("searchText", 1)],
        "owner_namespace_name": [("owner", 1), ("namespace", 1), ("name", 1)],
        "owner_loraUids": [("owner", 1), ("loraUids", 1)],
        "owner_updatedAt": [("owner", 1), ("updatedAt", -1)],
        "owner_run_createdAt": [("owner", 1), ("latestRun.phase", 1), ("createdAt", -1)],
        "namespace_deletedAt": [("namespace", 1), ("deletedAt", 1)],
        "shares_to_createdAt": [("shares.to", 1), ("createdAt", -1)],
    }
    shared = client["cg"]["collections"].index_information()
    assert shared["owner_name"]["key"] == [("owner", 1), ("name", 1)]
    assert shared["shares_to"]["key"] == [("shares.to", 1)]


def test_the_embedded_catalog_persists_across_opens(tmp_path: Path) -> None:
    first = EmbeddedCatalog(tmp_path / "cat")
    first.upsert(lora_doc("uid-1"))
    first.close()
    second = EmbeddedCatalog(tmp_path / "cat")
    assert second.get("uid-1") is not None
    second.close()


@pytest.mark.parametrize("form", ["file", "plain"])
def test_open_catalog_opens_a_directory(tmp_path: Path, form: str) -> None:
    url = f"file://{tmp_path}/cat" if form == "file" else str(tmp_path / "cat")
    catalog = open_catalog(url, create=True)
    assert isinstance(catalog, EmbeddedCatalog) and catalog.directory == tmp_path / "cat"
    catalog.close()
    reopened = open_catalog(url)  # a reader opens what exists
    assert isinstance(reopened, EmbeddedCatalog)
    reopened.close()


def test_readers_never_create_a_local_catalog(tmp_path: Path) -> None:
    with pytest.raises(CatalogMissing, match=f"there is no catalog at {tmp_path}/typo: check the path"):
        open_catalog(str(tmp_path / "typo"))
    assert not (tmp_path / "typo").exists()


def test_open_catalog_reads_the_environment_then_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTENTGEN_CATALOG", f"file://{tmp_path}/from-env")
    catalog = open_catalog(create=True)
    assert isinstance(catalog, EmbeddedCatalog) and catalog.directory == tmp_path / "from-env"
    catalog.close()
    monkeypatch.delenv("CONTENTGEN_CATALOG")
    monkeypatch.chdir(tmp_path)
    catalog = open_catalog(create=True)
    assert isinstance(catalog, EmbeddedCatalog)
    assert catalog.directory == tmp_path / "contentgen-data" / "catalog"
    catalog.close()


def test_open_catalog_connects_to_mongodb_with_the_uri_database() -> None:
    # pymongo connects lazily, so nothing needs to listen on this port.
    catalog = open_catalog("mongodb://127.0.0.1:9/assets?serverSelectionTimeoutMS=100")
    assert isinstance(catalog, MongoCatalog)
    assert catalog._collection.full_name == "assets.jobs"
    catalog.close()
    catalog = open_catalog("mongodb://127.0.0.1:9/")
    assert isinstance(catalog, MongoCatalog) and catalog._collection.full_name == "contentgen.jobs"
    catalog.close()


def test_open_catalog_refuses_other_schemes_without_echoing_credentials() -> None:
    with pytest.raises(ValueError, match="unsupported catalog URL") as raised:
        open_catalog("postgres://user:hunter2@db/x")
    assert "hunter2" not in str(raised.value)


def test_the_embedded_catalog_mends_a_collection_file_left_without_its_table(tmp_path: Path) -> None:
    """An earlier operator's prune, deleting from a collection before its first insert, left
    montydb an empty SQLite file, and every write to it failed 'no such table: documents'."""
    import sqlite3

    from contentgen.catalog.deliveries import EVENTS, Deliveries

    EmbeddedCatalog(tmp_path / "cat").close()
    sqlite3.connect(tmp_path / "cat" / "contentgen" / f"{EVENTS}.collection").close()
    catalog = EmbeddedCatalog(tmp_path / "cat")
    store = Deliveries(catalog)
    assert store.enqueue([{"id": "e-1", "type": "io.contentgen.run.succeeded", "data": {}}]) == 1
    assert store.unfanned()[0]["id"] == "e-1"
    catalog.close()
