"""Collections in the catalog, on each backend: a collection is read where it leaves the catalog (a
null or missing field reads as its zero, an entry of `shares` that is no grant is skipped), a change
keeps the fields it does not know, and racing changes lose none of each other's members."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from contentgen.api.sharing import grant
from contentgen.catalog import Catalog
from contentgen.catalog.collections import COLLECTIONS, CollectionError, Collections

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


def test_a_stored_collection_reads_its_nulls_as_zeros_and_skips_what_is_no_grant(catalog: Catalog) -> None:
    with catalog.guard:
        catalog.sibling(COLLECTIONS).insert_one(
            {
                "_id": "c-legacy",
                "name": None,
                "owner": "ann",
                "members": [{"id": "r1", "addedAt": None}, {"id": "r2", "by": "ann"}],
                "shares": [{"to": "owner:bob", "access": "read", "by": "ann"}, {"to": "nobody"}, "junk"],
                "rev": 2,
            }
        )
    found = Collections(catalog).find("c-legacy", ["bob"])
    assert found is not None
    seen, access = found
    assert (seen.name, seen.description, seen.created_at, access) == ("", "", "", "read")
    assert [(m.id, m.added_at, m.by) for m in seen.members] == [("r1", "", ""), ("r2", "", "ann")]
    assert [g.to for g in seen.shares] == ["owner:bob"]
    assert Collections(catalog).find("c-legacy", ["carol"]) is None
    assert [c.id for c in Collections(catalog).visible(["bob"])] == ["c-legacy"]


def test_a_change_keeps_the_fields_a_later_version_wrote(catalog: Catalog) -> None:
    collections = Collections(catalog)
    made = collections.create("ann", "spring", "the campaign", "ann", NOW)
    with catalog.guard:
        catalog.sibling(COLLECTIONS).update_one({"_id": made.id}, {"$set": {"cover": "r9"}})
    collections.add(made.id, "r1", "ann", NOW)
    collections.add(made.id, "r1", "ann", NOW)  # already a member: nothing added
    bob = grant("owner:bob", "read", by="ann", at="2026-11-28T04:00:00Z")
    collections.share(made.id, NOW, give=bob)
    after, removed = collections.remove(made.id, "r2", NOW)
    assert not removed
    with catalog.guard:
        stored = catalog.sibling(COLLECTIONS).find_one({"_id": made.id})
    assert stored["cover"] == "r9"
    assert stored["rev"] == after.rev == 5
    assert [m["id"] for m in stored["members"]] == ["r1"]
    assert stored["shares"] == [bob.wire()]
    assert (stored["name"], stored["description"], stored["createdBy"]) == ("spring", "the campaign", "ann")
    with pytest.raises(CollectionError, match="has a collection named 'spring' already"):
        collections.create("ann", "spring", "", "ann", NOW)


@pytest.mark.atomic_writes
def test_racing_adds_lose_no_member(catalog: Catalog) -> None:
    """4 writers add 10 records each to one collection (read, change, write if the rev is still
    the one read): every acknowledged add is in the stored collection."""
    made = Collections(catalog).create("ann", "race", "", "ann", NOW)

    def writer(n: int) -> None:
        collections = Collections(catalog)
        for i in range(10):
            while True:
                try:
                    collections.add(made.id, f"r{n}-{i}", "ann", NOW)
                    break
                except CollectionError:  # other writers came first 8 times: the caller tries again
                    continue

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    stored = Collections(catalog).get(made.id)
    assert stored is not None
    assert sorted(m.id for m in stored.members) == sorted(f"r{n}-{i}" for n in range(4) for i in range(10))
