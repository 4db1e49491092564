"""The progress stream: events until the job ends, changes delivered as they happen. The poll
interval is injected: `sleep` is a script that changes the catalog between polls, so nothing
waits on a clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from contentgen.catalog import Catalog
from contentgen.httpapi.routes.stream import job_events
from tests.catalog.factory import T0, transcript_doc
from tests.httpapi.conftest import MakeApp, auth

pytestmark = pytest.mark.asyncio
Step = Callable[[], None]


class Script:
    """A `sleep` that runs the next step (a catalog change) instead of waiting."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = list(steps)
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.steps:
            self.steps.pop(0)()


def parse(body: str) -> list[tuple[str, Any]]:
    """(event, data) pairs, and ("comment", text) for keep-alive lines."""
    events: list[tuple[str, Any]] = []
    for block in body.split("\n\n"):
        if not block:
            continue
        if block.startswith(":"):
            events.append(("comment", block[1:].strip()))
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def running(catalog: Catalog, progress: int, phase: str = "Running") -> Step:
    return lambda: catalog.upsert(transcript_doc("job", phase=phase, progress=progress))


async def stream(make_app: MakeApp, script: Script, who: str = "alice", uid: str = "job") -> httpx.Response:
    app = make_app(sleep=script)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        return await client.get(f"/api/stream/job/{uid}", headers=auth(who))


def progress_of(events: list[tuple[str, Any]]) -> list[tuple[str, int]]:
    return [(data["status"], data["latestRun"]["progress"]) for name, data in events if name == "status"]


async def test_changes_are_streamed_until_the_job_succeeds(catalog: Catalog, make_app: MakeApp) -> None:
    running(catalog, 10)()
    script = Script(
        [
            running(catalog, 10),  # nothing new: no event
            running(catalog, 40),
            running(catalog, 80),
            running(catalog, 100, "Succeeded"),
            running(catalog, 0, "Failed"),  # never read: the stream has ended
        ]
    )
    response = await stream(make_app, script)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    events = parse(response.text)
    assert progress_of(events) == [("Running", 10), ("Running", 40), ("Running", 80), ("Succeeded", 100)]
    assert events[-1] == ("end", {"id": "job", "status": "Succeeded", "phase": "Succeeded"})
    assert script.slept == [0.001] * 4  # the configured interval, once per poll before the end
    first = events[0][1]
    assert set(first) == {
        "id", "type", "kind", "name", "namespace", "owner", "tags", "status", "latestVersion", "versionCount",
        "latestRun", "deleted", "createdAt", "updatedAt", "placeholder",
    }  # fmt: skip
    assert {"phase", "progress", "stage", "message", "version"} <= set(first["latestRun"])


@pytest.mark.parametrize("terminal", ["Failed", "Deleted"])
async def test_failed_and_deleted_end_the_stream(catalog: Catalog, make_app: MakeApp, terminal: str) -> None:
    running(catalog, 5)()

    def finish() -> None:
        if terminal == "Failed":
            running(catalog, 50, "Failed")()
        else:
            catalog.mark_deleted("job", T0 + timedelta(days=1))

    events = parse((await stream(make_app, Script([finish]))).text)
    phase = "Failed" if terminal == "Failed" else "Cancelled"  # deleted while it ran
    assert events[-1] == ("end", {"id": "job", "status": terminal, "phase": phase})
    assert progress_of(events)[-1][0] == terminal
    if terminal == "Failed":
        assert events[-2][1]["latestRun"]["error"] == {"reason": "Failed", "message": ""}


async def test_a_finished_job_streams_its_state_and_ends(catalog: Catalog, make_app: MakeApp) -> None:
    catalog.upsert(transcript_doc("job"))
    script = Script([])
    events = parse((await stream(make_app, script)).text)
    assert events == [
        ("status", events[0][1]),
        ("end", {"id": "job", "status": "Succeeded", "phase": "Succeeded"}),
    ]
    assert events[0][1]["latestRun"]["progress"] == 100 and script.slept == []


async def test_a_rerun_of_a_finished_job_is_followed_until_it_ends(
    catalog: Catalog, make_app: MakeApp
) -> None:
    """v1 is usable (status Succeeded) while v2 runs: the stream follows the latest run."""
    first = transcript_doc("job")
    catalog.upsert(first)

    def rerun(progress: int, phase: str = "Running") -> Step:
        return lambda: catalog.upsert(
            transcript_doc("job", phase=phase, progress=progress, version=2, previous=first)
        )

    rerun(20)()
    events = parse((await stream(make_app, Script([rerun(60), rerun(100, "Succeeded")]))).text)
    runs = [
        (d["status"], d["latestRun"]["version"], d["latestRun"]["progress"])
        for n, d in events
        if n == "status"
    ]
    assert runs == [("Succeeded", 2, 20), ("Succeeded", 2, 60), ("Succeeded", 2, 100)]
    assert events[-1][1]["phase"] == "Succeeded"


async def test_another_owners_job_cannot_be_followed(catalog: Catalog, make_app: MakeApp) -> None:
    running(catalog, 10)()
    response = await stream(make_app, Script([]), who="bob")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no record 'job'"}}
    admin = await stream(make_app, Script([running(catalog, 100, "Succeeded")]), who="ops")
    assert progress_of(parse(admin.text)) == [("Running", 10), ("Succeeded", 100)]


async def first_doc(progress: int = 10) -> dict[str, Any]:
    return transcript_doc("job", phase="Running", progress=progress)


async def test_a_record_that_disappears_ends_the_stream_with_an_error() -> None:
    async def gone() -> None:
        return None

    events = [e async for e in job_events(gone, await first_doc(), Script([]), 0.5, heartbeat_every=10)]
    assert parse("".join(events))[-1] == ("error", {"code": "not_found", "message": "the record is gone"})


async def test_idle_streams_send_keep_alive_comments_and_ignore_bare_updates() -> None:
    doc = await first_doc()
    polls = iter(range(7))

    async def read() -> dict[str, Any]:
        n = next(polls)
        if n == 6:
            return transcript_doc("job")  # succeeded
        # Written again with only updatedAt changed: no news.
        return {**doc, "updatedAt": doc["updatedAt"] + timedelta(seconds=n)}

    events = parse("".join([e async for e in job_events(read, doc, Script([]), 5.0, heartbeat_every=3)]))
    names = [name for name, _ in events]
    assert names == ["status", "comment", "comment", "status", "end"]
    assert events[1] == ("comment", "keep-alive")


# --- the list stream: one for a whole page ------------------------------------------------------


async def take(events: Any, count: int) -> list[tuple[str, Any]]:
    got: list[str] = []
    async for text in events:
        got.append(text)
        if len([t for t in got if not t.startswith(":")]) == count:
            break
    await events.aclose()
    return parse("".join(got))


async def test_the_list_stream_announces_every_change_and_new_records(catalog: Catalog) -> None:
    from contentgen.catalog import Filters
    from contentgen.httpapi.routes.stream import list_events

    now = T0 + timedelta(days=1)
    clock = {"now": now}

    def doc(uid: str, progress: int, phase: str = "Running") -> Step:
        def write() -> None:
            clock["now"] += timedelta(seconds=1)
            written = transcript_doc(uid, phase=phase, progress=progress, created=T0)
            catalog.upsert({**written, "updatedAt": clock["now"]})

        return write

    doc("a", 10)()
    doc("old", 100, "Succeeded")()
    script = Script(
        [doc("a", 40), lambda: None, doc("b", 5), doc("a", 40), doc("b", 50), doc("a", 100, "Succeeded")]
    )

    async def read(since: Any) -> list[dict[str, Any]]:
        return catalog.changed_since(Filters(owner="alice"), since, 500)

    events = await take(list_events(read, catalog.last_change(Filters(owner="alice")), script, 0.5, 100), 5)
    assert events[0][0] == "ready"
    changes = [
        (d["id"], d["latestRun"]["phase"], d["latestRun"]["progress"]) for n, d in events if n == "job"
    ]
    # the records as they were when it started are not repeated; a write with nothing new is no event
    assert changes == [
        ("a", "Running", 40),
        ("b", "Running", 5),
        ("b", "Running", 50),
        ("a", "Succeeded", 100),
    ]
