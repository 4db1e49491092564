"""The HTTP API against its own OpenAPI document, by schemathesis's engine (every check; the
examples, coverage, fuzzing and stateful phases; a fixed seed and a bounded number of examples per
operation): for an owner's token and an admin's, with creates on (local runs, held so that none
runs: the contract is the HTTP layer's) and off (every phase but coverage, on the routes that read
the creator: see `config` and READS_THE_CREATOR). A
request the document allows is never refused as invalid (on the creates, a 400 it allows says what
the document cannot state, by its code: request_rules.py), one it forbids is refused with a 4xx,
no input is answered with a 5xx, and every answer (status, headers, body, a 400's code) is one the
document describes."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from contentgen.catalog import Catalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.pipeline.settings import PipelineSettings
from contentgen.store import LocalStore
from tests.catalog.factory import T0
from tests.catalog.video_factory import VIDEO_FILES, video_doc
from tests.harness.creators import HeldCreator
from tests.httpapi.conftest import HOUR, TOKENS, fill
from tests.httpapi.documented import Answers

EXAMPLES_PER_OPERATION = 5  # per phase and operation: bounded, for a suite on 2 cores
# another seed explores other cases: CONTENTGEN_CONTRACT_SEED=20261122 found issue 70's share refusal
SEED = int(os.environ.get("CONTENTGEN_CONTRACT_SEED") or 29)
# and the routes that make a version's verdict or its training go on (issue 80's 400s)
CREATES = (
    r"^/api/(resources|lora/train|images/generate|transcribe|jobs/\{ref\}/(rerun|compare)"
    r"|assets/\{ref\}/versions/\{version\}/(verdict|continue))$"
)
# The routes whose answers depend on whether the API creates (they read `Services.creator`); with
# creates off every other route answers as with creates on, which the "on" runs check.
READS_THE_CREATOR = (
    r"^/ui/config$|^/api/(resources|lora/train|images/generate|transcribe|jobs/\{ref\}(/(rerun|compare|cancel|stop))?"
    r"|assets/\{ref\}/versions/\{version\}/(evaluate|score|promote|verdict|continue)"
    r"|notifications/deliveries/\{delivery_id\}/replay|uploads)$"
)
# An upload the document allows may still be refused for what it cannot state: a file's first bytes
# not of the type it says (415), a file past its type's cap (413).
UPLOADS = r"^/api/uploads$"
ACCEPTED = ["2xx", "3xx", 401, 403, 404, 409, 429]  # schemathesis' own for a schema-valid request
# What a create's 400 says of a request its document allows: what JSON Schema cannot state.
BEYOND_THE_DOCUMENT = {"invalid_combination", "unresolved", "not_applicable", "provider_unavailable"}


@schemathesis.check
def schema_valid_creates_are_not_invalid(ctx: Any, response: Any, case: Any) -> bool | None:
    """A create the document allows is refused only for what the document cannot state."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    if not re.match(CREATES, case.operation.path):
        return None
    code = response.json()["error"]["code"]
    if code not in BEYOND_THE_DOCUMENT:
        raise AssertionError(f"a request the document allows was refused with code {code}")
    return None


def config(token: str, *, coverage: bool = True) -> SchemathesisConfig:
    """`coverage`: the coverage phase, whose deterministic boundary and negative cases are most of
    a run (three quarters of its time, 1,200 cases for POST /api/resources alone). With creates
    off it is left out: its negative cases meet the same request validation as with creates on
    (a route reads the creator only after it), and its positive cases, on the routes that read
    the creator, meet the refusal of an API that does not create, which the examples and fuzzing
    phases still ask of every operation; the other routes answer as with creates on."""
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"mode": "all", "max-examples": EXAMPLES_PER_OPERATION, "deterministic": True},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": coverage},
                "fuzzing": {"enabled": True},
            },
            "checks": {"enabled": True},
            "max-stream-events": 1,
            "operations": [
                {
                    # A 400 that the check above lets through (a rule the document cannot state).
                    "include-method": "POST",
                    "include-path-regex": CREATES,
                    "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, 400]}},
                },
                {
                    "include-method": "POST",
                    "include-path-regex": UPLOADS,
                    "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, 413, 415]}},
                },
            ],
        }
    )


def findings(schema: Any) -> list[str]:
    """Every failed check and error of a schemathesis run over `schema`, one line each."""
    from schemathesis import engine
    from schemathesis.engine import Status, events

    found: list[str] = []
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.status == Status.FAILURE:
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.failure_info is not None:
                        seen = event.recorder.interactions.get(case_id)
                        answer = seen.response.content[:300] if seen and seen.response else b""
                        failure = check.failure_info.failure
                        status = getattr(failure, "status_code", "")
                        line = f"{event.recorder.label} [{check.name}] {status} {failure.title}"
                        line += f": {failure.message}"
                        found.append(f"{line}\n    {check.failure_info.code_sample}\n    {answer!r}")
        elif isinstance(event, events.NonFatalError):
            found.append(f"{event.label}: error {event.value!r}")
        elif isinstance(event, events.FatalError):
            found.append(f"fatal: {event.exception!r}")
    return sorted(set(found))


def fill_videos(catalog: Catalog, store: LocalStore) -> None:
    """Beside `fill`'s records, a VideoGeneration of alice's (its files in the store, so its downloads
    and their ranges answer) and one of bob's: schemathesis meets video answers too."""
    for uid, owner in (("a-vid-1", "alice"), ("b-vid-1", "bob")):
        catalog.upsert(
            video_doc(uid, owner=owner, name=f"{owner}-clip", created=T0 + 10 * HOUR, uri_of=store.uri)
        )
    for file, kind in VIDEO_FILES.items():
        store.put_bytes(f"generated-videos/alice/a-vid-1/v1/{file}", f"bytes of {file}".encode() * 64, kind)


@pytest.mark.parametrize("who", ["alice", "ops"])
@pytest.mark.parametrize("creates", ["on", "off"])
def test_the_api_keeps_its_contract(
    who: str, creates: str, catalog: Catalog, store: LocalStore, settings: ApiSettings, tmp_path: Path
) -> None:
    fill(catalog, store)
    fill_videos(catalog, store)
    creator = None
    if creates == "on":
        work = PipelineSettings(work_dir=tmp_path / "work")
        creator = HeldCreator(catalog, lambda: store, offline=True, settings=work)
    app = Answers(create_app(settings, catalog=catalog, store=lambda: store, creator=creator))
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, config=config(TOKENS[who], coverage=creates == "on")
    )
    if creates == "off":
        paths = {result.ok().path for result in schema.get_all_operations()}
        chosen = {path for path in paths if re.match(READS_THE_CREATOR, path)}
        assert len(chosen) == 17, "\n".join(sorted(chosen))  # every route of the pattern is in the document
        schema = schema.include(path_regex=READS_THE_CREATOR)
    try:
        found = findings(schema)
    finally:
        if creator is not None:
            creator.close()
    assert found == [], "\n".join(found)
    assert app.undocumented() == []
