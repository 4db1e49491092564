"""What a REF names (catalog/names.py), on both backends: ids, prefixes, namespace/name for the
resource that exists now, name@id-prefix for older ones, bare names, and errors that list the
choices by what tells them apart."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from contentgen.catalog import AmbiguousReference, Catalog, resolve
from tests.catalog.factory import T0, image_doc, lora_doc

OLD = "3f2a9c1e-0000-4000-8000-000000000001"
NEW = "9b1c7d2e-0000-4000-8000-000000000002"


def _in(namespace: str, doc: dict[str, object]) -> dict[str, object]:
    return {**doc, "namespace": namespace}


@pytest.fixture
def recreated(catalog: Catalog) -> Catalog:
    """default/landscape deleted (Retain) and created again: two records of one name and kind."""
    catalog.upsert(image_doc(OLD, name="landscape", created=T0))
    catalog.mark_deleted(OLD, T0 + timedelta(days=1), policy="Retain", outputs_kept=True, by="operator")
    catalog.upsert(image_doc(NEW, name="landscape", created=T0 + timedelta(days=2)))
    return catalog


def test_namespace_and_name_is_the_resource_that_exists(recreated: Catalog) -> None:
    found = resolve(recreated, "default/landscape")
    assert found is not None and found["_id"] == NEW


def test_older_records_of_a_name_by_id_prefix(recreated: Catalog) -> None:
    found = resolve(recreated, "default/landscape@3f2a")
    assert found is not None and found["_id"] == OLD
    assert resolve(recreated, "default/landscape@ffff") is None
    with pytest.raises(ValueError, match="NAMESPACE/NAME@ID-PREFIX"):
        resolve(recreated, "default/landscape@")


def test_ids_and_prefixes(recreated: Catalog) -> None:
    assert resolve(recreated, NEW)["_id"] == NEW  # type: ignore[index]
    assert resolve(recreated, "3f2a9c")["_id"] == OLD  # type: ignore[index]
    assert resolve(recreated, "3f2") is None  # too short to be a prefix, and no such name


def test_a_bare_name_looks_in_default_then_everywhere(catalog: Catalog) -> None:
    catalog.upsert(_in("team-a", lora_doc("a" * 8 + "-0000-4000-8000-000000000003", name="avatar")))
    found = resolve(catalog, "avatar")  # not in default: found in team-a
    assert found is not None and found["namespace"] == "team-a"
    catalog.upsert(lora_doc("b" * 8 + "-0000-4000-8000-000000000004", name="avatar"))
    found = resolve(catalog, "avatar")  # default first
    assert found is not None and found["namespace"] == "default"
    assert resolve(catalog, "nobody") is None


def test_ambiguity_lists_what_tells_the_choices_apart(catalog: Catalog) -> None:
    catalog.upsert(_in("team-a", image_doc(OLD, name="portrait", created=T0)))
    catalog.upsert(_in("team-b", image_doc(NEW, name="portrait", created=T0 + timedelta(hours=5))))
    with pytest.raises(AmbiguousReference) as raised:
        resolve(catalog, "portrait")
    message = str(raised.value)
    assert "'portrait' matches 2 records" in message
    assert "team-a/portrait@3f2a9c1e (image-generation, created 2025-03-01 12:00, not deleted)" in message
    assert "team-b/portrait@9b1c7d2e (image-generation, created 2025-03-01 17:00, not deleted)" in message
    assert "name one as NAMESPACE/NAME@ID-PREFIX, e.g. team-a/portrait@3f2a9c1e" in message
    found = resolve(catalog, "team-b/portrait@9b1c")
    assert found is not None and found["_id"] == NEW


def test_two_deleted_records_of_a_name_are_listed_with_when_they_went(catalog: Catalog) -> None:
    for uid, day in ((OLD, 1), (NEW, 2)):
        catalog.upsert(image_doc(uid, name="landscape", created=T0 + timedelta(days=day - 1)))
        catalog.mark_deleted(uid, T0 + timedelta(days=day), policy="Retain", outputs_kept=True, by="operator")
    with pytest.raises(AmbiguousReference, match=re.escape("deleted 2025-03-03 12:00")):
        resolve(catalog, "default/landscape")


def test_kinds_that_share_a_name_are_told_apart_by_type(catalog: Catalog) -> None:
    catalog.upsert(lora_doc(OLD, name="demo"))
    catalog.upsert(image_doc(NEW, name="demo"))
    with pytest.raises(AmbiguousReference, match=r"or give the type \(--type, \?type=\)"):
        resolve(catalog, "default/demo")
    found = resolve(catalog, "default/demo", type="lora-training")
    assert found is not None and found["_id"] == OLD


def test_other_owners_records_are_not_found(recreated: Catalog) -> None:
    assert resolve(recreated, "default/landscape", owner="bob") is None
    assert resolve(recreated, NEW, owner="bob") is None
    with pytest.raises(ValueError, match="an empty id"):
        resolve(recreated, "  ")
