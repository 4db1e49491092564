"""Catalog records that could not be written yet, kept durably until the catalog is back.

A local run that finds the catalog away (MongoDB down, a locked embedded catalog) leaves its
record in the store, under outbox/catalog/, one JSON object per run, named so that they sort in
the order they were made. The next run (`contentgen run`) writes the waiting ones first, oldest
first, removing each once it is written; it stops at the first that fails, so the order (LoRA
versions) is kept. An entry belongs to one catalog, named by a digest of its URL (a MongoDB URL
may hold a password, which is never stored), and only a run against that catalog flushes it.

What an entry holds is what `record` needs to build the document against the catalog as it is
then: the run's spec snapshot, times, result or failure and the price table it was priced with.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contentgen.api import RunFailure, RunResult, SpecSnapshot, format_time, parse_timestamp
from contentgen.store import ObjectStore, keys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One run's record, waiting."""

    snapshot: SpecSnapshot
    started: datetime
    finished: datetime
    result: RunResult | None = None
    failure: RunFailure | None = None
    prices: dict[str, Any] | None = None
    baseline_cached: bool = False  # its likeness baseline was stored when it started (its estimate)

    def to_json(self, catalog: str) -> bytes:
        return json.dumps(
            {
                "catalog": catalog,
                "snapshot": self.snapshot.wire(),
                "started": format_time(self.started),
                "finished": format_time(self.finished),
                "result": self.result.model_dump(mode="json", by_alias=True) if self.result else None,
                "failure": self.failure.model_dump(mode="json", by_alias=True) if self.failure else None,
                "prices": self.prices,
                "baselineCached": self.baseline_cached,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> tuple[str, Entry]:
        raw = json.loads(data)
        started, finished = parse_timestamp(raw["started"]), parse_timestamp(raw["finished"])
        assert started is not None and finished is not None
        return raw["catalog"], cls(
            snapshot=SpecSnapshot.model_validate_json(json.dumps(raw["snapshot"])),
            started=started,
            finished=finished,
            result=RunResult.model_validate_json(json.dumps(raw["result"])) if raw.get("result") else None,
            failure=RunFailure.model_validate_json(json.dumps(raw["failure"]))
            if raw.get("failure")
            else None,
            prices=raw.get("prices"),
            baseline_cached=bool(raw.get("baselineCached", False)),
        )


def catalog_id(url: str) -> str:
    """Which catalog an entry is for, without keeping its URL (it may hold a password)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


class Outbox:
    def __init__(self, store: ObjectStore, catalog_url: str) -> None:
        self.store = store
        self.catalog = catalog_id(catalog_url)

    def put(self, entry: Entry) -> str:
        """Keep `entry`; returns where it went."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")  # sorts in the order they were kept
        key = keys.outbox(f"{stamp}-{entry.snapshot.uid}.json")
        self.store.put_bytes(key, entry.to_json(self.catalog), "application/json")
        return self.store.uri(key)

    def waiting(self) -> list[str]:
        """Keys of this catalog's entries, oldest first."""
        found = []
        for info in self.store.list(keys.outbox("")):
            try:
                catalog, _ = Entry.from_json(self.store.get_bytes(info.key))
            except (ValueError, KeyError, AssertionError) as exc:  # kept, for a person to look at
                log.warning("skipping unreadable outbox entry %s: %s", info.key, exc)
                continue
            if catalog == self.catalog:
                found.append(info.key)
        return sorted(found)

    def flush(self, record: Callable[[Entry], None]) -> int:
        """Record every waiting entry, oldest first, deleting each once recorded. The first that
        fails stops the flush (the rest keep their order) and its exception propagates."""
        done = 0
        for key in self.waiting():
            _, entry = Entry.from_json(self.store.get_bytes(key))
            record(entry)
            self.store.delete(key)
            done += 1
        return done
