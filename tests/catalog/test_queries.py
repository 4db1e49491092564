"""The read side: pure query builders, then the same behaviour on both backends."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from contentgen.catalog import DELETED, Catalog, Filters, Page, Sort
from contentgen.catalog.queries import build_filter, build_search, build_sort, check_page, search_words
from tests.catalog.factory import T0, image_doc, lora_doc, transcript_doc

# --- pure builders --------------------------------------------------------------------------


def test_the_default_filter_leaves_deleted_records_out() -> None:
    assert build_filter(Filters()) == {"status": {"$ne": DELETED}}


def test_filters_become_one_query() -> None:
    since, until = T0, T0 + timedelta(days=1)
    query = build_filter(
        Filters(
            owner="alice",
            type="image-generation",
            status="Failed",
            since=since,
            until=until,
            model="flux-pro",
        )
    )
    usable = [
        {"latestVersion": {"$gte": 1}},
        {"schema": {"$exists": False}, "images.0": {"$exists": True}},
        {"schema": {"$exists": False}, "transcript.textUri": {"$exists": True}},
    ]
    assert query == {
        "owner": "alice",
        "type": "image-generation",
        "createdAt": {"$gte": since, "$lt": until},
        "$and": [
            # Failed: nothing usable, its latest run failed (in both document shapes)
            {"status": "Failed", "$nor": usable},
            # any version's model (documents before versions have one `model`)
            {"$or": [{"models": "flux-pro"}, {"models": {"$exists": False}, "model": "flux-pro"}]},
        ],
    }


def test_succeeded_means_a_usable_version_and_run_the_latest_runs_phase() -> None:
    succeeded = build_filter(Filters(status="Succeeded"))["$or"]
    assert succeeded[:2] == [
        {"status": "Succeeded"},
        {"status": {"$ne": DELETED}, "latestVersion": {"$gte": 1}},
    ]
    assert build_filter(Filters(run="Failed")) == {
        "$and": [
            {"status": {"$ne": DELETED}},
            {"$or": [{"latestRun.phase": "Failed"}, {"latestRun": {"$exists": False}, "status": "Failed"}]},
        ]
    }
    with pytest.raises(ValueError, match="unknown run phase 'Done'"):
        build_filter(Filters(run="Done"))


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (
            Filters(type="video"),
            "unknown type 'video': use one of image-generation, lora-evaluation, lora-training, "
            "transcription",
        ),
        (Filters(status="completed"), "unknown status 'completed'"),
    ],
)
def test_unknown_types_and_statuses_are_refused(filters: Filters, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build_filter(filters)


def test_search_needs_every_word_and_takes_them_literally() -> None:
    query = build_search("Fox  C++ a.b", Filters(owner="alice"))
    assert query["owner"] == "alice"
    assert query["$and"] == [
        {"searchText": {"$regex": "fox", "$options": "i"}},
        {"searchText": {"$regex": r"c\+\+", "$options": "i"}},
        {"searchText": {"$regex": r"a\.b", "$options": "i"}},
    ]


@pytest.mark.parametrize("text", ["", "   ", " ".join(["w"] * 21)])
def test_empty_and_overlong_searches_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="search query"):
        search_words(text)


def test_sorting_is_whitelisted_and_stable() -> None:
    assert build_sort(Sort("name", descending=False)) == [("name", 1), ("_id", 1)]
    assert build_sort(Sort()) == [("createdAt", -1), ("_id", 1)]
    with pytest.raises(ValueError, match=r"cannot sort by 'spec\.owner'"):
        build_sort(Sort("spec.owner"))


@pytest.mark.parametrize(
    ("page", "message"), [(Page(0), "limit"), (Page(501), "limit"), (Page(10, -1), "offset")]
)
def test_page_bounds(page: Page, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_page(page)


# --- on both backends -----------------------------------------------------------------------


@pytest.fixture
def filled(catalog: Catalog) -> Catalog:
    """alice: 2 LoRAs, 2 image runs, 1 transcript, 1 deleted image run; bob: 1 of each kind."""
    hour = timedelta(hours=1)
    docs = [
        lora_doc("a-lora-1", name="jesse-avatar", trigger="jfz", tags=("Headshot",), created=T0),
        lora_doc("a-lora-2", name="logo-style", phase="Running", versions=1, created=T0 + hour),
        image_doc("a-img-1", prompt="Portrait of jfz in a suit", model="flux-lora", created=T0 + 2 * hour),
        image_doc("a-img-2", prompt="a red fox, c++ poster", phase="Failed", created=T0 + 3 * hour),
        transcript_doc("a-tr-1", text="Wildfires spread across the Forest", created=T0 + 4 * hour),
        image_doc("a-img-del", prompt="a red fox", created=T0 + 5 * hour),
        lora_doc("b-lora-1", owner="bob", name="jesse-avatar", trigger="jfz", created=T0 + 6 * hour),
        image_doc("b-img-1", owner="bob", prompt="a red fox", created=T0 + 7 * hour),
        transcript_doc("b-tr-1", owner="bob", text="wildfires again", created=T0 + 8 * hour),
    ]
    for doc in docs:
        catalog.upsert(doc)
    catalog.mark_deleted("a-img-del", T0 + 9 * hour)
    return catalog


def ids(catalog: Catalog, filters: Filters, sort: Sort | None = None) -> list[str]:
    return [d["_id"] for d in catalog.find(filters, sort or Sort()).docs]


def test_list_by_owner_newest_first(filled: Catalog) -> None:
    assert ids(filled, Filters(owner="alice")) == ["a-tr-1", "a-img-2", "a-img-1", "a-lora-2", "a-lora-1"]
    assert ids(filled, Filters(owner="carol")) == []
    assert len(ids(filled, Filters())) == 8


def test_list_by_type_status_and_model(filled: Catalog) -> None:
    assert ids(filled, Filters(owner="alice", type="lora-training")) == ["a-lora-2", "a-lora-1"]
    assert ids(filled, Filters(owner="alice", status="Failed")) == ["a-img-2"]
    assert ids(filled, Filters(status="Running")) == ["a-lora-2"]
    assert ids(filled, Filters(status=DELETED)) == ["a-img-del"]
    assert ids(filled, Filters(type="image-generation", model="flux-lora")) == ["a-img-1"]


def test_list_by_creation_range(filled: Catalog) -> None:
    since, until = T0 + timedelta(hours=1), T0 + timedelta(hours=3)
    assert ids(filled, Filters(owner="alice", since=since, until=until)) == ["a-img-1", "a-lora-2"]
    assert ids(filled, Filters(since=T0 + timedelta(hours=8))) == ["b-tr-1"]
    assert ids(filled, Filters(until=T0 + timedelta(minutes=1))) == ["a-lora-1"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (Sort("createdAt", descending=False), ["a-lora-1", "a-lora-2", "a-img-1", "a-img-2", "a-tr-1"]),
        (Sort("name", descending=False), ["a-lora-1", "a-lora-2", "a-tr-1", "a-img-1", "a-img-2"]),
        (Sort("totalBytes"), ["a-lora-1", "a-img-1", "a-tr-1", "a-img-2", "a-lora-2"]),
    ],
)
def test_sorting(filled: Catalog, sort: Sort, expected: list[str]) -> None:
    assert ids(filled, Filters(owner="alice"), sort) == expected


def test_pages_cover_everything_once_with_the_total(filled: Catalog) -> None:
    seen: list[str] = []
    for offset in range(0, 8, 3):
        page = filled.find(Filters(), Sort("createdAt", descending=False), Page(3, offset))
        assert page.total == 8 and page.limit == 3 and page.offset == offset
        seen += [d["_id"] for d in page.docs]
    assert len(seen) == 8 and len(set(seen)) == 8
    beyond = filled.find(Filters(), page=Page(3, 100))
    assert beyond.total == 8 and beyond.docs == []


def test_lists_leave_out_large_internal_fields(filled: Catalog) -> None:
    doc = filled.find(Filters(owner="alice", type="transcription")).docs[0]
    assert "transcriptText" not in doc and "searchText" not in doc and "spec" not in doc
    assert doc["createdAt"].tzinfo is not None


def search(catalog: Catalog, text: str, filters: Filters | None = None) -> list[str]:
    return sorted(d["_id"] for d in catalog.search(text, filters or Filters()).docs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("jesse", ["a-lora-1"]),  # name
        ("HEADSHOT", ["a-lora-1"]),  # tag, any case
        ("jfz", ["a-img-1", "a-lora-1"]),  # trigger word and prompt
        ("suit jfz", ["a-img-1"]),  # every word must match
        ("wildfires forest", ["a-tr-1"]),  # transcript text
        ("fox", ["a-img-2"]),  # the deleted run is left out
        ("c++", ["a-img-2"]),  # regex metacharacters are literal
        (".*", []),
        ("jesse unicorn", []),
    ],
)
def test_search(filled: Catalog, text: str, expected: list[str]) -> None:
    assert search(filled, text, Filters(owner="alice")) == expected


def test_search_combines_with_filters_and_owners(filled: Catalog) -> None:
    assert search(filled, "wildfires") == ["a-tr-1", "b-tr-1"]
    assert search(filled, "wildfires", Filters(owner="bob")) == ["b-tr-1"]
    assert search(filled, "jfz", Filters(owner="alice", type="lora-training")) == ["a-lora-1"]
    assert filled.search("wildfires", Filters(), page=Page(1)).total == 2


def test_description_is_searched(catalog: Catalog) -> None:
    catalog.upsert(transcript_doc("t", description="Episode 12 of the Garden podcast"))
    assert search(catalog, "garden episode") == ["t"]


def test_stats_per_owner_leave_deleted_records_out(filled: Catalog) -> None:
    stats = filled.stats("alice", 0.023)
    assert stats.owner == "alice"
    assert stats.total_jobs == 5
    assert stats.by_type == {
        "lora-training": 2,
        "image-generation": 2,
        "transcription": 1,
        "lora-evaluation": 0,
        "video-generation": 0,
    }
    assert stats.by_status == {"Pending": 0, "Running": 1, "Succeeded": 3, "Failed": 1, "Interrupted": 0}
    lora = 1000 + 10  # a-lora-1: model and config; a-lora-2 has no version yet
    images = 2 * 500  # a-img-1; a-img-2 failed without images
    transcript = 300 + len("Wildfires spread across the Forest")
    assert stats.total_bytes == lora + images + transcript
    assert stats.estimated_monthly_cost == pytest.approx(stats.total_bytes / 1024**3 * 0.023, abs=1e-6)


def test_stats_for_everyone_and_at_another_price(filled: Catalog) -> None:
    everyone = filled.stats(None, 0.023)
    assert everyone.owner is None and everyone.total_jobs == 8
    assert everyone.by_type == {
        "lora-training": 3,
        "image-generation": 3,
        "transcription": 2,
        "lora-evaluation": 0,
        "video-generation": 0,
    }
    gigabyte = 1024**3
    filled.upsert(lora_doc("c-lora", owner="carol", model_bytes=3 * gigabyte - 10))
    carol = filled.stats("carol", 0.5)
    assert carol.total_bytes == 3 * gigabyte
    assert carol.total_gb == 3.0 and carol.estimated_monthly_cost == 1.5
    assert filled.stats("nobody", 0.023).total_jobs == 0


def test_stats_refuse_a_negative_price(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="price"):
        catalog.stats(None, -1)
