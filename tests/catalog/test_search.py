"""Search with an index (catalog/search.py) on every backend: ranking, phrases, transcript hits with
their times, owners, and the index kept in step with writes. The embedded catalog answers from its
FTS5 index; mongomock and FerretDB have no `$text`, so they answer with the scan (explicitly:
`engine`); MongoDB's text path is checked on the query it sends (a recording collection)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import mongomock
import pytest

from contentgen.catalog import Catalog, Filters, Page, Sort
from contentgen.catalog.document import without_versions
from contentgen.catalog.embedded import SEARCH_FILE, EmbeddedCatalog
from contentgen.catalog.mongo import MongoCatalog
from contentgen.catalog.search import (
    TEXT_INDEX_NAME,
    parse,
    play_link,
    search_page,
    text_search,
    time_at,
)
from contentgen.transcripts import searchable

from .factory import T0, image_doc, lora_doc, transcript_doc

# A transcript of 40 words said 2 s apart: word i at 2*i seconds.
SAID = [f"w{i}" for i in range(40)]
SAID[20:23] = ["forest", "fire", "season"]
SAID[38] = "fire"
TEXT = " ".join(SAID)


def marks(text: str, every: int = 5, seconds: float = 2.0) -> list[list[float]]:
    """[offset, seconds] of every `every`-th word, word i said at i*seconds."""
    out, at = [], 0
    for i, word in enumerate(text.split(" ")):
        if i % every == 0:
            out.append([at, i * seconds])
        at += len(word) + 1
    return out


def ids(result: Any) -> list[str]:
    return [d["_id"] for d in result.docs]


def expected_engine(catalog: Catalog) -> str:
    return "sqlite-fts5" if isinstance(catalog, EmbeddedCatalog) else "scan"


def test_query_words_and_phrases() -> None:
    query = parse('Forest "FIRE season" it\'s c++')
    assert [t.words for t in query.terms] == [("forest",), ("fire", "season"), ("it", "s"), ("c",)]
    assert query.fts5() == '"forest" AND "fire season" AND "it s" AND "c"'
    assert query.mongo_text() == '"forest" "fire season" "it s" "c"'
    with pytest.raises(ValueError, match="empty"):
        parse("   ")
    assert parse('""').terms == () and parse(".*").terms == ()  # nothing to find: an empty page


def test_ranking_name_above_prompt_above_transcript(catalog: Catalog) -> None:
    catalog.upsert(
        transcript_doc("t", name="talk", text="we saw a lynx at dawn", created=T0 + timedelta(days=2))
    )
    catalog.upsert(image_doc("i", prompt="a lynx in the snow", created=T0 + timedelta(days=1)))
    catalog.upsert(lora_doc("l", name="lynx", created=T0))
    result = catalog.search("lynx", Filters(owner="alice"))
    assert ids(result) == ["l", "i", "t"] and result.engine == expected_engine(catalog)
    scores = [h.score for h in result.hits]
    assert all(s is not None for s in scores) and scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    assert [h.fields for h in result.hits] == [["name"], ["prompt"], ["transcript"]]
    # by a field when asked: newest first
    by_date = catalog.search("lynx", Filters(owner="alice"), Sort("createdAt"))
    assert ids(by_date) == ["t", "i", "l"] and by_date.ranked_by == "createdAt"


def test_more_occurrences_rank_higher_with_an_index(tmp_path: Path) -> None:
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    catalog.upsert(transcript_doc("once", text="otter " + "river " * 40))
    catalog.upsert(transcript_doc("often", text="otter " * 10 + "river " * 31))
    assert ids(catalog.search("otter", Filters())) == ["often", "once"]
    catalog.close()


def test_phrase_needs_the_words_in_order(catalog: Catalog) -> None:
    catalog.upsert(transcript_doc("in-order", text="the forest fire season began"))
    catalog.upsert(transcript_doc("apart", name="other", text="fire in the forest"))
    assert ids(catalog.search('"forest fire"', Filters())) == ["in-order"]
    assert sorted(ids(catalog.search("forest fire", Filters()))) == ["apart", "in-order"]


def test_transcript_hits_have_their_time(catalog: Catalog) -> None:
    catalog.upsert(transcript_doc("t", text=TEXT, times=marks(TEXT)))
    result = catalog.search('"fire season"', Filters(owner="alice"))
    [hits] = result.hits
    assert hits.fields == ["transcript"]
    [hit] = hits.transcript
    # "fire" is word 21, said at 42 s; marks every 5 words: the mark of word 20, at 40 s
    assert hit.version == 1 and hit.at_seconds == 40.0
    start, end = hit.highlights[0]
    assert hit.snippet[start:end] == "fire season" and hit.snippet.startswith("…")
    page = search_page(result)
    assert page["hits"][0]["transcript"][0]["link"] == "/#/transcript/t?version=1&t=40"
    # two hits far apart: two snippets, in the order said
    both = catalog.search("fire", Filters()).hits[0].transcript
    assert [h.at_seconds for h in both] == [40.0, 70.0]  # word 38: the mark of word 35


def test_owners_never_see_each_others_hits(catalog: Catalog) -> None:
    catalog.upsert(transcript_doc("a", owner="alice", text="the secret recipe"))
    catalog.upsert(transcript_doc("b", owner="bob", text="bob's secret recipe"))
    assert ids(catalog.search("secret", Filters(owner="alice"))) == ["a"]
    assert ids(catalog.search("secret", Filters(owner="bob"))) == ["b"]
    assert ids(catalog.search("bob", Filters(owner="alice"))) == []
    assert sorted(ids(catalog.search("secret", Filters(owner=("alice", "bob"))))) == ["a", "b"]
    assert catalog.search("secret", Filters(owner="carol")).total == 0


def test_the_index_follows_updates_and_deletions(catalog: Catalog) -> None:
    first = transcript_doc("t", text="about wolves")
    catalog.upsert(first)
    assert ids(catalog.search("wolves", Filters())) == ["t"]
    second = transcript_doc("t", text="about bears", version=2, previous=first)
    catalog.write(second, first["rev"], exists=True)
    assert ids(catalog.search("bears", Filters())) == ["t"]
    assert ids(catalog.search("wolves", Filters())) == ["t"]  # version 1 is still there
    pruned = without_versions(second, [1], at=T0, by="test")
    catalog.write(pruned, second["rev"], exists=True)
    assert ids(catalog.search("wolves", Filters())) == []  # its transcript went with it
    catalog.mark_deleted("t", T0 + timedelta(days=1))
    assert ids(catalog.search("bears", Filters())) == []
    assert ids(catalog.search("bears", Filters(status="Deleted"))) == []  # outputs gone, text too


def test_filters_and_pages_apply(catalog: Catalog) -> None:
    for n in range(5):
        catalog.upsert(transcript_doc(f"t{n}", text="heron", created=T0 + timedelta(days=n)))
    catalog.upsert(image_doc("i", prompt="a heron", tags=("birds",)))
    assert ids(catalog.search("heron", Filters(tag="birds"))) == ["i"]
    assert ids(catalog.search("heron", Filters(since=T0 + timedelta(days=3), type="transcription"))) == [
        "t4",
        "t3",
    ]
    page = catalog.search("heron", Filters(type="transcription"), page=Page(2, 2))
    assert page.total == 5 and len(page.docs) == 2
    assert "transcriptText" not in page.docs[0] and "transcriptTimes" not in page.docs[0]["versions"][0]


def test_stored_times_are_two_flat_lists(catalog: Catalog) -> None:
    catalog.upsert(transcript_doc("t", text=TEXT, times=marks(TEXT)))
    stored = catalog.get("t")
    assert stored is not None
    times = stored["versions"][0]["transcriptTimes"]
    assert times == {"chars": [m[0] for m in marks(TEXT)], "seconds": [m[1] for m in marks(TEXT)]}


def test_a_write_the_process_did_not_finish_is_indexed_at_the_next_search(tmp_path: Path) -> None:
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    catalog.upsert(transcript_doc("t", text="about wolves"))
    doc = transcript_doc("t", text="about lynxes")
    catalog.search_index.begin("t")  # as a write does, then the process died before the index's turn
    catalog._collection.replace_one({"_id": "t"}, doc)
    assert ids(catalog.search("lynxes", Filters())) == ["t"]
    assert ids(catalog.search("wolves", Filters())) == [] and catalog.search_index.pending() == []
    catalog.close()


def test_a_catalog_without_the_index_gets_one_at_open(tmp_path: Path) -> None:
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    catalog.upsert(transcript_doc("t", text="about wolves"))
    catalog.close()
    (tmp_path / "catalog" / SEARCH_FILE).unlink()
    reopened = EmbeddedCatalog(tmp_path / "catalog")
    assert ids(reopened.search("wolves", Filters())) == ["t"]
    reopened.close()
    with sqlite3.connect(tmp_path / "catalog" / SEARCH_FILE) as db:
        assert db.execute("SELECT count(*) FROM records").fetchone() == (1,)


def test_mongomock_has_no_text_search_and_says_so() -> None:
    catalog = MongoCatalog(mongomock.MongoClient(), "contentgen")
    catalog.ensure_indexes()  # mongomock keeps a text index, then refuses $text
    catalog.upsert(transcript_doc("t", text="about wolves"))
    result = catalog.search("wolves", Filters())
    assert ids(result) == ["t"] and result.engine == "scan" and catalog.search_engine == "scan"


class Recording:
    """A collection that records what MongoDB would be asked (text_search's calls)."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs, self.calls = docs, []  # type: ignore[var-annotated]

    def count_documents(self, query: dict[str, Any]) -> int:
        self.calls.append(("count", query))
        return len(self.docs)

    def find(self, query: dict[str, Any], projection: dict[str, Any]) -> Recording:
        self.calls.append(("find", query, projection))
        return self

    def sort(self, order: Any) -> Recording:
        self.calls.append(("sort", order))
        return self

    def skip(self, n: int) -> Recording:
        return self

    def limit(self, n: int) -> list[dict[str, Any]]:
        return self.docs


def test_mongodb_text_search_asks_for_text_and_its_score() -> None:
    doc = {**transcript_doc("t", text=TEXT, times=marks(TEXT)), "score": 2.5}
    collection = Recording([doc])
    result = text_search(collection, parse('"fire season" w3'), Filters(owner="alice"), None, Page())
    (_, counted), (_, query, projection), (_, order) = collection.calls
    assert counted == query and query["owner"] == "alice"
    assert query["$text"] == {"$search": '"fire season" "w3"'}
    assert projection["score"] == {"$meta": "textScore"} and "versions.transcriptText" not in projection
    assert order == [("score", {"$meta": "textScore"}), ("_id", 1)]
    assert result.engine == "mongodb-text" and result.hits[0].score == 2.5
    assert [h.at_seconds for h in result.hits[0].transcript] == [0.0, 40.0]  # w3, then the phrase
    assert "score" not in result.docs[0]


def test_ferretdb_refuses_a_text_index(ferretdb: Any) -> None:
    """FerretDB 1.x cannot make a text index: the catalog scans, and says so."""
    catalog = MongoCatalog.connect(f"{ferretdb.url}search-refused")
    try:
        catalog.ensure_indexes()
        names = {i["name"] for i in catalog._collection.list_indexes()}
        assert TEXT_INDEX_NAME not in names and catalog.search_engine == "scan"
    finally:
        catalog.client.drop_database("search-refused")
        catalog.close()


def test_searchable_text_keeps_the_time_of_every_fifth_word() -> None:
    response = {
        "words": [{"text": w, "start": i * 2000, "end": i * 2000 + 500} for i, w in enumerate(SAID)],
        "audio_duration": 80,
    }
    text, times = searchable(response, 80.0, 10_000)
    assert text == TEXT and times == marks(TEXT)
    stored = {"chars": [m[0] for m in times], "seconds": [m[1] for m in times]}
    assert time_at(stored, TEXT.index("season")) == 40.0 and time_at(None, 5) is None
    short, kept = searchable(response, 80.0, 20)
    assert len(short) == 20 and all(m[0] < 20 for m in kept)


def test_play_link() -> None:
    assert play_link("abc", 2, 61.9) == "/#/transcript/abc?version=2&t=61"
    assert play_link("abc", 1, None) == "/#/transcript/abc?version=1"


def test_another_text_index_is_kept_and_search_scans(monkeypatch: pytest.MonkeyPatch) -> None:
    """A collection has one text index at most: one made by someone else stays, and search scans."""
    import pymongo.errors

    catalog = MongoCatalog(mongomock.MongoClient(), "contentgen")
    made = catalog._collection.create_index

    def create_index(keys: Any, **options: Any) -> str:
        if options.get("name") == TEXT_INDEX_NAME:
            raise pymongo.errors.OperationFailure("an equivalent index exists with another name", code=85)
        return str(made(keys, **options))

    monkeypatch.setattr(catalog._collection, "create_index", create_index)
    catalog.ensure_indexes()  # no error: the operator starts
    catalog.upsert(transcript_doc("t", text="about wolves"))
    assert catalog.search_engine == "scan" and ids(catalog.search("wolves", Filters())) == ["t"]
