"""Search with an index: ranking, phrases, and transcript hits with the time each is said at.

A query is words and "quoted phrases"; a record matches when every word and every phrase occurs in
it as whole words (any case), in its name, tags, trigger word, description, prompts or transcripts.
Three engines answer it, chosen by the backend (docs/assets.md#search):

    sqlite-fts5    the embedded catalog: an FTS5 index in search.sqlite beside montydb's store,
                   written with every catalog write (SearchIndex), ranked by bm25
    mongodb-text   MongoDB: a text index over the same fields (TEXT_INDEX), ranked by textScore
    scan           a server without text indexes (FerretDB 1.x answers `$text` with "unknown top
                   level operator", and creating one with IndexNotFound): today's regular
                   expressions over searchText, ranked by where the words are (name and tags, then
                   description and prompts, then transcripts), newest first among equals

Words weigh by where they are: name, tags and trigger word WEIGHTS["title"], description and
prompts WEIGHTS["body"], transcripts WEIGHTS["transcript"]. Hits (which fields matched, and up to
MAX_TRANSCRIPT_HITS snippets of transcripts with their time in the recording) are found here, in
Python, on the page's records only, whatever the engine.
"""

from __future__ import annotations

import bisect
import json
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from .common_record import RecordModel
from .dates import from_storage, to_storage
from .document import DELETED
from .queries import (
    LIST_EXCLUDES,
    Filters,
    Page,
    ResultPage,
    Sort,
    build_filter,
    build_sort,
    check_page,
    search_words,
)
from .records import JobPage, to_record

ENGINES = ("sqlite-fts5", "mongodb-text", "scan")
RELEVANCE = "relevance"
WEIGHTS = {"title": 10.0, "body": 5.0, "transcript": 1.0}
# The fields of each weight, as stored (versions.* over every usable version).
TITLE_FIELDS = ("name", "tags", "triggerWord")
BODY_FIELDS = ("description", "prompt", "versions.prompt")
TRANSCRIPT_FIELDS = ("versions.transcriptText",)
# MongoDB's text index: language "none" (no stemming, no stop words: whole words, as FTS5 and the
# hits here match them); language_override names a field no document has.
TEXT_INDEX_NAME = "search_text"
TEXT_INDEX: dict[str, Any] = {
    "keys": [(f, "text") for f in (*TITLE_FIELDS, *BODY_FIELDS, *TRANSCRIPT_FIELDS)],
    "weights": {
        **{f: int(WEIGHTS["title"]) for f in TITLE_FIELDS},
        **{f: int(WEIGHTS["body"]) for f in BODY_FIELDS},
        **{f: int(WEIGHTS["transcript"]) for f in TRANSCRIPT_FIELDS},
    },
    "default_language": "none",
    "language_override": "searchLanguage",
}
MAX_TRANSCRIPT_HITS = 3
SNIPPET_CONTEXT = 60  # characters of transcript each side of a hit
# What a search page leaves out (as lists do), less what hits are found in.
HIT_ONLY = ("versions.transcriptText", "versions.transcriptTimes")
PAGE_EXCLUDES = tuple(f for f in LIST_EXCLUDES if f not in HIT_ONLY)


# --- the query -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A word, or a phrase: words that must follow each other."""

    words: tuple[str, ...]

    @property
    def pattern(self) -> re.Pattern[str]:
        inner = r"\W+".join(re.escape(w) for w in self.words)
        return re.compile(rf"(?<!\w){inner}(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class SearchQuery:
    text: str
    terms: tuple[Term, ...]

    def fts5(self) -> str:
        """FTS5's query: every term, each as a quoted string (a word or a phrase; no operators)."""
        return " AND ".join('"' + " ".join(t.words) + '"' for t in self.terms)

    def mongo_text(self) -> str:
        """`$text`'s $search: every term quoted, which MongoDB takes as phrases that must all occur."""
        return " ".join('"' + " ".join(t.words) + '"' for t in self.terms)

    def scan_conditions(self) -> list[dict[str, Any]]:
        """The scan's: each word a literal substring of searchText, as before the index (so `c++`
        still finds "c++"), each phrase its words with anything but letters between."""
        conditions = []
        for raw in self.raw_terms:
            pattern = r"\W+".join(re.escape(w) for w in raw)
            conditions.append({"searchText": {"$regex": pattern, "$options": "i"}})
        return conditions

    @property
    def raw_terms(self) -> list[tuple[str, ...]]:
        found = []
        for quoted, bare in re.findall(r'"([^"]*)"|(\S+)', self.text):
            if quoted.strip():
                found.append(tuple(quoted.lower().split()))
            elif bare.strip('"'):
                found.append((bare.strip('"').lower(),))
        return found


def parse(text: str) -> SearchQuery:
    """Words and "quoted phrases" (1 to 20 words in all). A word of letters and signs (it's, c++)
    is the phrase of its letters and digits ("it s", "c"), as the index splits it."""
    search_words(text)  # empty, too many words: ValueError (quotes alone: no terms, nothing found)
    terms: list[Term] = []
    for quoted, bare in re.findall(r'"([^"]*)"|(\S+)', text):
        words = tuple(re.findall(r"\w+", (quoted or bare).lower()))
        if words and Term(words) not in terms:
            terms.append(Term(words))
    return SearchQuery(text, tuple(terms))


# --- hits ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptHit:
    version: int
    at_seconds: float | None
    snippet: str
    highlights: list[tuple[int, int]]


@dataclass(frozen=True)
class Hits:
    id: str
    score: float | None
    fields: list[str]
    transcript: list[TranscriptHit] = field(default_factory=list)


def _texts(doc: dict[str, Any], name: str) -> list[str]:
    if name == "tags":
        return [str(t) for t in doc.get("tags") or []]
    if name == "prompt":
        return [str(doc.get("prompt") or "")] + [
            str(v.get("prompt") or "") for v in doc.get("versions") or []
        ]
    return [str(doc.get(name) or "")]


def time_at(times: dict[str, list[float]] | None, offset: int) -> float | None:
    """When the word at `offset` of a transcript's text is said: the time of the last mark at or
    before it (at most transcripts.MARK_WORDS - 1 words early); None without marks. `times` is a
    version's transcriptTimes: {chars: [offset, ...], seconds: [time, ...]}."""
    chars, seconds = (times or {}).get("chars") or [], (times or {}).get("seconds") or []
    if not chars or len(chars) != len(seconds):
        return None
    at = bisect.bisect_right(chars, offset) - 1
    return float(seconds[max(at, 0)])


def _snippet(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    start, end = spans[0][0], spans[-1][1]
    left = max(0, start - SNIPPET_CONTEXT)
    right = min(len(text), end + SNIPPET_CONTEXT)
    if left > 0:  # start and end at whole words
        left = text.find(" ", left, start) + 1 or left
    if right < len(text):
        cut = text.rfind(" ", end, right)
        right = cut if cut > 0 else right
    prefix = "…" if left > 0 else ""
    suffix = "…" if right < len(text) else ""
    shift = len(prefix) - left
    return prefix + text[left:right] + suffix, [(s + shift, e + shift) for s, e in spans]


def transcript_hits(doc: dict[str, Any], query: SearchQuery) -> list[TranscriptHit]:
    """Up to MAX_TRANSCRIPT_HITS stretches of the record's transcripts (newest version first, each
    in the order said) where a term occurs, with the time in the recording."""
    hits: list[TranscriptHit] = []
    for version in reversed(doc.get("versions") or []):
        text = str(version.get("transcriptText") or "")
        if not text:
            continue
        spans = sorted(m.span() for t in query.terms for m in t.pattern.finditer(text))
        groups: list[list[tuple[int, int]]] = []
        for span in spans:  # hits close together share a snippet
            if groups and span[0] - groups[-1][0][0] <= SNIPPET_CONTEXT:
                groups[-1].append(span)
            else:
                groups.append([span])
        for group in groups:
            if len(hits) >= MAX_TRANSCRIPT_HITS:
                return hits
            snippet, marked = _snippet(text, group)
            at = time_at(version.get("transcriptTimes"), group[0][0])
            hits.append(TranscriptHit(int(version.get("version") or 0), at, snippet, marked))
    return hits


def hits_of(doc: dict[str, Any], query: SearchQuery, score: float | None = None) -> Hits:
    """Where the query's terms occur in a record (as stored, with its versions' transcripts)."""
    fields = [
        name
        for name in ("name", "tags", "triggerWord", "description", "prompt")
        if any(t.pattern.search(text) for t in query.terms for text in _texts(doc, name))
    ]
    found = transcript_hits(doc, query)
    if found:
        fields.append("transcript")
    return Hits(str(doc["_id"]), score, fields, found)


def coarse_score(doc: dict[str, Any], query: SearchQuery) -> float:
    """The scan's rank: for each term, the weight of the best place it occurs (title, body, else a
    transcript's)."""
    total = 0.0
    for term in query.terms:
        if any(term.pattern.search(x) for f in ("name", "tags", "triggerWord") for x in _texts(doc, f)):
            total += WEIGHTS["title"]
        elif any(term.pattern.search(x) for f in ("description", "prompt") for x in _texts(doc, f)):
            total += WEIGHTS["body"]
        else:
            total += WEIGHTS["transcript"]
    return total


def _without_hit_fields(doc: dict[str, Any]) -> dict[str, Any]:
    listed = {k: v for k, v in doc.items() if k not in ("score", "transcriptText", "transcriptTimes")}
    if isinstance(listed.get("versions"), list):
        listed["versions"] = [
            {k: v for k, v in version.items() if k not in ("transcriptText", "transcriptTimes", "spec")}
            for version in listed["versions"]
        ]
    return listed


@dataclass(frozen=True)
class SearchResult(ResultPage):
    """A page of records (list fields only) and, for each, where the query hit."""

    hits: list[Hits] = field(default_factory=list)
    engine: str = "scan"
    ranked_by: str = RELEVANCE


def _result(
    docs: list[dict[str, Any]],
    total: int,
    page: Page,
    query: SearchQuery,
    scores: list[float | None],
    engine: str,
    sort: Sort | None,
) -> SearchResult:
    hits = [hits_of(doc, query, score) for doc, score in zip(docs, scores, strict=True)]
    return SearchResult(
        total,
        page.limit,
        page.offset,
        [from_storage(_without_hit_fields(d)) for d in docs],
        hits,
        engine,
        RELEVANCE if sort is None else sort.field,
    )


# --- the scan and MongoDB's text index (over a pymongo-style collection) -------------------------

_RANK_FIELDS = ("name", "tags", "triggerWord", "description", "prompt", "versions.prompt", "createdAt")


def _page_docs(collection: Any, ids: list[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    found = {d["_id"]: d for d in collection.find({"_id": {"$in": ids}}, dict.fromkeys(PAGE_EXCLUDES, 0))}
    return [found[i] for i in ids if i in found]


def scan_search(
    collection: Any, query: SearchQuery, filters: Filters, sort: Sort | None, page: Page
) -> SearchResult:
    """Without an index: every record of the filters whose searchText has each term."""
    check_page(page)
    stored = to_storage(build_filter(filters))
    stored["$and"] = [*stored.get("$and", []), *query.scan_conditions()]
    if sort is not None:
        total = int(collection.count_documents(stored))
        cursor = (
            collection.find(stored, {"_id": 1}).sort(build_sort(sort)).skip(page.offset).limit(page.limit)
        )
        ids = [d["_id"] for d in cursor]
        return _result(_page_docs(collection, ids), total, page, query, [None] * len(ids), "scan", sort)
    rows = list(collection.find(stored, {**dict.fromkeys(_RANK_FIELDS, 1)}))
    ranked = sorted(
        ((coarse_score(r, query), r) for r in rows),
        key=lambda pair: (-pair[0], -_stamp(pair[1].get("createdAt")), str(pair[1]["_id"])),
    )
    chosen = ranked[page.offset : page.offset + page.limit]
    docs = _page_docs(collection, [r["_id"] for _, r in chosen])
    return _result(docs, len(rows), page, query, [s for s, _ in chosen], "scan", None)


def _stamp(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else 0.0


def text_search(
    collection: Any, query: SearchQuery, filters: Filters, sort: Sort | None, page: Page
) -> SearchResult:
    """With MongoDB's text index (TEXT_INDEX)."""
    check_page(page)
    stored = to_storage(build_filter(filters))
    stored["$text"] = {"$search": query.mongo_text()}
    total = int(collection.count_documents(stored))
    projection: dict[str, Any] = {**dict.fromkeys(PAGE_EXCLUDES, 0), "score": {"$meta": "textScore"}}
    cursor = collection.find(stored, projection)
    if sort is None:
        cursor = cursor.sort([("score", {"$meta": "textScore"}), ("_id", 1)])
    else:
        cursor = cursor.sort(build_sort(sort))
    docs = list(cursor.skip(page.offset).limit(page.limit))
    return _result(
        docs, total, page, query, [float(d.get("score") or 0.0) for d in docs], "mongodb-text", sort
    )


# --- the embedded catalog's index -------------------------------------------------------------

SCHEMA = 3
_SETUP = """
CREATE TABLE IF NOT EXISTS records(
    id INTEGER PRIMARY KEY, uid TEXT UNIQUE NOT NULL, owner TEXT NOT NULL, type TEXT NOT NULL,
    status TEXT NOT NULL, created TEXT NOT NULL, doc TEXT NOT NULL, texts TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_owner ON records(owner);
CREATE VIRTUAL TABLE IF NOT EXISTS terms USING fts5(title, body, transcript, scope, content='');
CREATE TABLE IF NOT EXISTS pending(uid TEXT PRIMARY KEY);
"""


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$date": value.isoformat()}
    raise TypeError(f"cannot store {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$date" in obj:
        return datetime.fromisoformat(obj["$date"])
    return obj


def owner_token(owner: str) -> str:
    """The owner as one token of the index's scope column (hex: any name, no collisions)."""
    return "o" + owner.encode().hex()


def _columns(doc: dict[str, Any], texts: dict[str, Any]) -> tuple[str, str, str, str]:
    title = " ".join(
        [str(doc.get("name") or ""), *map(str, doc.get("tags") or []), str(doc.get("triggerWord") or "")]
    )
    body = " ".join(
        [str(doc.get("description") or ""), str(doc.get("prompt") or "")]
        + [str(v.get("prompt") or "") for v in doc.get("versions") or []]
    )
    transcript = "\n".join(str(t.get("text") or "") for t in texts.values())
    return title, body, transcript, owner_token(str(doc.get("owner") or ""))


def _search_doc(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the index keeps of a stored document: its list fields (filters and sorts read them),
    and apart, each version's transcript and its times (only a page's records need them)."""
    kept = {k: v for k, v in doc.items() if k not in ("spec", "searchText", "transcriptText")}
    texts: dict[str, Any] = {}
    if isinstance(kept.get("versions"), list):
        listed = []
        for version in kept["versions"]:
            if version.get("transcriptText"):
                texts[str(version.get("version"))] = {
                    "text": version["transcriptText"],
                    "times": version.get("transcriptTimes"),
                }
            hidden = ("spec", "transcriptText", "transcriptTimes")
            listed.append({k: v for k, v in version.items() if k not in hidden})
        kept["versions"] = listed
    return kept, texts


def _with_texts(doc: dict[str, Any], texts: dict[str, Any]) -> dict[str, Any]:
    for version in doc.get("versions") or []:
        said = texts.get(str(version.get("version")))
        if said:
            version.update(transcriptText=said["text"], transcriptTimes=said["times"])
    return doc


class SearchIndex:
    """An FTS5 index of the catalog's records in one SQLite file, with what a search page shows of
    each (so a search never reads montydb, which scans every document for any query).

    It is kept in step with the catalog under the catalog's lock: `begin(uid)` before a write marks
    the record pending (in its own transaction), `put(doc)` after it replaces the record's entry
    and clears the mark; a write that did not happen clears it with `settle(uid)`. A process that
    died between the two leaves the mark, and the next search reads those records again
    (`pending()`, `refresh`). A missing or older file is built from the whole catalog at open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fresh = not path.exists()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version != SCHEMA and not fresh:
            self._db.executescript(
                "DROP TABLE IF EXISTS records; DROP TABLE IF EXISTS terms; DROP TABLE IF EXISTS pending;"
            )
        self._db.executescript(_SETUP)
        self.needs_build = fresh or version != SCHEMA
        self._db.execute(f"PRAGMA user_version = {SCHEMA}")

    def close(self) -> None:
        self._db.close()

    # --- writes ---
    def begin(self, uid: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO pending(uid) VALUES (?)", (uid,))

    def settle(self, uid: str) -> None:
        self._db.execute("DELETE FROM pending WHERE uid = ?", (uid,))

    def pending(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT uid FROM pending")]

    def _remove(self, uid: str) -> None:
        row = self._db.execute("SELECT id, doc, texts FROM records WHERE uid = ?", (uid,)).fetchone()
        if row is None:
            return
        old = json.loads(row[1], object_hook=_decode), json.loads(row[2])
        self._db.execute(
            "INSERT INTO terms(terms, rowid, title, body, transcript, scope) "
            "VALUES ('delete', ?, ?, ?, ?, ?)",
            (row[0], *_columns(*old)),
        )
        self._db.execute("DELETE FROM records WHERE id = ?", (row[0],))

    def _insert(self, doc: dict[str, Any]) -> None:
        kept, texts = _search_doc(to_storage(doc))
        cursor = self._db.execute(
            "INSERT INTO records(uid, owner, type, status, created, doc, texts) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                str(doc["_id"]),
                str(doc.get("owner") or ""),
                str(doc.get("type") or ""),
                str(doc.get("status") or ""),
                kept["createdAt"].isoformat() if isinstance(kept.get("createdAt"), datetime) else "",
                json.dumps(kept, default=_encode, separators=(",", ":")),
                json.dumps(texts, separators=(",", ":")),
            ),
        )
        self._db.execute(
            "INSERT INTO terms(rowid, title, body, transcript, scope) VALUES (?, ?, ?, ?, ?)",
            (cursor.lastrowid, *_columns(kept, texts)),
        )

    def put(self, doc: dict[str, Any]) -> None:
        """The record's entry, replaced by `doc` (as stored); its pending mark cleared."""
        self.refresh(str(doc["_id"]), doc)

    def refresh(self, uid: str, doc: dict[str, Any] | None) -> None:
        """The entry of `uid` made `doc` (None: gone), and its pending mark cleared, at once."""
        with self._db:
            self._db.execute("BEGIN")
            self._remove(uid)
            if doc is not None:
                self._insert(doc)
            self._db.execute("DELETE FROM pending WHERE uid = ?", (uid,))

    def rebuild(self, docs: Iterable[dict[str, Any]]) -> int:
        """Every entry from the catalog's documents; how many."""
        count = 0
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM records")
            self._db.execute("INSERT INTO terms(terms) VALUES ('delete-all')")
            for doc in docs:
                self._insert(doc)
                count += 1
            self._db.execute("DELETE FROM pending")
            self._db.execute("INSERT INTO terms(terms) VALUES ('optimize')")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the build's log, as big as the index
        self.needs_build = False
        return count

    # --- reads ---
    def search(self, query: SearchQuery, filters: Filters, sort: Sort | None, page: Page) -> SearchResult:
        check_page(page)
        match = query.fts5()
        where: list[str] = ["terms MATCH ?"]
        params: list[Any] = []
        if filters.owner is not None:
            owners = [filters.owner] if isinstance(filters.owner, str) else sorted(filters.owner)
            # in the index first (only the owner's matches are ranked), then exactly
            match = f"scope : ({' OR '.join(owner_token(o) for o in owners)}) AND {match}"
            where.append(f"r.owner IN ({', '.join('?' * len(owners))})")
            params += owners
        if filters.type is not None:
            build_filter(Filters(type=filters.type))  # an unknown type: ValueError
            where.append("r.type = ?")
            params.append(filters.type)
        if filters.status is None:
            where.append("r.status != ?")
            params.append(DELETED)
        weights = ", ".join(str(WEIGHTS[c]) for c in ("title", "body", "transcript")) + ", 0.0"
        rest = {k: v for k, v in vars(filters).items() if k not in ("owner", "type") and v is not None}
        # The other filters (dates, model, LoRA, tag, run, a status) are montydb's own query, run
        # on what the index keeps of each record: the same answers as the catalog's.
        needs_docs = bool(rest) or sort is not None
        # Only constants and placeholders go into the text; the values are parameters.
        sql = (
            f"SELECT r.id, bm25(terms, {weights}) AS score{', r.doc' if needs_docs else ''} "  # noqa: S608
            "FROM terms JOIN records r ON r.id = terms.rowid "
            f"WHERE {' AND '.join(where)} ORDER BY score, r.created DESC, r.uid"
        )
        rows = self._db.execute(sql, [match, *params])
        if not needs_docs:
            matched = rows.fetchall()
            chosen = matched[page.offset : page.offset + page.limit]
            return _result(
                self._docs([r[0] for r in chosen]),
                len(matched),
                page,
                query,
                [-float(r[1]) for r in chosen],
                "sqlite-fts5",
                None,
            )
        from montydb.engine.queries import QueryFilter  # the embedded catalog's own matcher

        matcher = QueryFilter(
            to_storage(build_filter(Filters(**{**vars(filters), "owner": None, "type": None})))
        )
        found = []
        for rowid, score, text in rows:
            doc = json.loads(text, object_hook=_decode)
            if matcher(doc):
                found.append((-float(score), doc, rowid))
        if sort is not None:
            build_sort(sort)  # an unknown field: ValueError
            found.sort(key=lambda row: str(row[1]["_id"]))
            found.sort(key=lambda row: _sort_key(row[1].get(sort.field)), reverse=sort.descending)
        chosen = found[page.offset : page.offset + page.limit]
        return _result(
            self._docs([rowid for _, _, rowid in chosen]),
            len(found),
            page,
            query,
            [score for score, _, _ in chosen],
            "sqlite-fts5",
            sort,
        )

    def _docs(self, ids: list[int]) -> list[dict[str, Any]]:
        """What the index keeps of these records, in this order."""
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        sql = f"SELECT id, doc, texts FROM records WHERE id IN ({marks})"  # noqa: S608
        rows = {r[0]: r[1:] for r in self._db.execute(sql, ids)}
        return [_with_texts(json.loads(rows[i][0], object_hook=_decode), json.loads(rows[i][1])) for i in ids]


def _sort_key(value: Any) -> tuple[int, Any]:
    """Missing values first (as MongoDB sorts null), then numbers, strings, dates."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool | int | float):
        return (1, float(value))
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, datetime):
        return (3, value.timestamp())
    return (4, str(value))


# --- the output (HTTP API, `contentgen assets search -o json`) --------------------------------


def play_link(uid: str, version: int, seconds: float | None) -> str:
    """The web UI's transcript page, playing from `seconds` (t=, whole seconds down)."""
    at = f"&t={int(seconds)}" if seconds is not None else ""
    return f"/#/transcript/{uid}?version={version}{at}"


class TranscriptHitModel(RecordModel):
    version: int = Field(description="The transcript's version.")
    at_seconds: float | None = Field(
        description="When the hit is said in the recording, in seconds: the start of its stretch of "
        "five words (at most four words early); null for a transcript stored without times."
    )
    snippet: str = Field(description="The words around the hit (… where the text goes on).")
    highlights: list[tuple[int, int]] = Field(
        description="Where in `snippet` the words searched for are: [start, end) character offsets."
    )
    link: str = Field(description="The web UI's transcript page, playing from atSeconds (t=).")


class HitsModel(RecordModel):
    id: str = Field(description="The record (items[].id) these hits are of.")
    score: float | None = Field(
        description="The relevance: bm25 (embedded catalog), textScore (MongoDB) or the scan's weights "
        "(see engine); higher is better; null when sorted by a field."
    )
    fields: list[str] = Field(
        description="Where the words occur: name, tags, triggerWord, description, prompt, transcript."
    )
    transcript: list[TranscriptHitModel] = Field(
        description=f"Up to {MAX_TRANSCRIPT_HITS} stretches of transcript where the words occur, newest "
        "version first, each with its time in the recording."
    )


class SearchPage(JobPage):
    hits: list[HitsModel] = Field(description="For each of items, in the same order: where the words occur.")
    engine: Literal["sqlite-fts5", "mongodb-text", "scan"] = Field(
        description="What answered: the embedded catalog's FTS5 index, MongoDB's text index, or a scan "
        "of every record (a server without text indexes, such as FerretDB)."
    )
    ranked_by: str = Field(description="relevance (best first), or the field sorted by.")


def search_page(result: SearchResult) -> dict[str, Any]:
    """The API's SearchPage of a result."""
    return {
        "total": result.total,
        "limit": result.limit,
        "offset": result.offset,
        "items": [to_record(doc).wire() for doc in result.docs],
        "hits": [
            {
                "id": h.id,
                "score": round(h.score, 4) if h.score is not None else None,
                "fields": h.fields,
                "transcript": [
                    {
                        "version": t.version,
                        "atSeconds": t.at_seconds,
                        "snippet": t.snippet,
                        "highlights": [list(x) for x in t.highlights],
                        "link": play_link(h.id, t.version, t.at_seconds),
                    }
                    for t in h.transcript
                ],
            }
            for h in result.hits
        ],
        "engine": result.engine,
        "rankedBy": result.ranked_by,
    }
