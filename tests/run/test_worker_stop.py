"""`contentgen worker` and SIGTERM: the signal comes while a paid fal request is in flight (the fal
fake behind the real fal-client sends it to this process on the first status poll). The worker
stops there: nothing more is asked of fal, nothing is written to the store, the request stays in
its checkpoint for the operator to cancel, and a later attempt resumes it without paying again."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from contentgen.api import RunFailure
from contentgen.cli.main import main
from contentgen.cli.worker import EXIT_STOPPED
from contentgen.controller.provider_cancel import checkpoints
from contentgen.providers import retry as retry_module
from contentgen.providers.cancel import pending
from contentgen.store import open_store
from tests.harness.cli import snapshot_file
from tests.providers.fake_fal import FAL_KEY, FakeFal
from tests.providers.fakes import FakeSleep, mocked

UID = "11111111-2222-3333-4444-555555555555"
SPEC = {"owner": "alice", "provider": "fal", "prompt": "a red fox", "model": "flux-dev", "numImages": 1}


class TermOnFirstPoll:
    """The fal fake, but the first status poll of a request is answered by SIGTERM to this process
    (as the node's kill of a deleted pod would come), with what was asked and stored until then."""

    def __init__(self, fal: FakeFal, store_root: Path) -> None:
        self.fal, self.store_root = fal, store_root
        self.asked_at_term: int | None = None
        self.stored_at_term: dict[str, bytes] = {}
        self.knows = fal.knows

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.asked_at_term is None and request.url.path.endswith("/status"):
            self.asked_at_term = len(self.fal.requests)
            self.stored_at_term = stored(self.store_root)
            os.kill(os.getpid(), signal.SIGTERM)  # its handler raises here, in this thread
        return self.fal(request)


def stored(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def worker(tmp_path: Path, spec: Path) -> tuple[int, str]:
    log = tmp_path / "termination-log"
    code = main(["worker", "--spec", str(spec), "--termination-log", str(log)])
    return code, log.read_text()


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = tmp_path / "store"
    monkeypatch.setenv("CONTENTGEN_STORE", store.as_uri())
    monkeypatch.setenv("CONTENTGEN_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    for variable in ("CONTENTGEN_KUBE_API", "KUBERNETES_SERVICE_HOST", "CONTENTGEN_PRICES"):
        monkeypatch.delenv(variable, raising=False)
    sleep = FakeSleep()  # the provider's polls and backoff are recorded, not slept
    original = retry_module.Retry.__init__

    def no_sleep(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.sleep = sleep

    monkeypatch.setattr(retry_module.Retry, "__init__", no_sleep)
    return store


def test_sigterm_in_a_paid_stage_stops_the_worker_and_hands_the_request_off(
    tmp_path: Path, environment: Path
) -> None:
    spec = snapshot_file(tmp_path, "ImageGeneration", SPEC, version=1)
    fal = FakeFal()
    term = TermOnFirstPoll(fal, environment)
    before = signal.getsignal(signal.SIGTERM)
    with mocked(term):
        code, message = worker(tmp_path, spec)
    assert code == EXIT_STOPPED == 143
    assert signal.getsignal(signal.SIGTERM) == before  # the handler lives only as long as the run
    failure = RunFailure.model_validate_json(message)
    assert failure.reason == "Stopped" and failure.transient and failure.usage is None
    assert "nothing was written after it" in failure.message
    # SIGTERM came with a request accepted and in flight: nothing was asked or stored after it.
    assert term.asked_at_term is not None and len(fal.requests) == term.asked_at_term
    assert (fal.accepted, [kind for kind, _ in fal.requests].count("submit")) == (1, 1)
    assert stored(environment) == term.stored_at_term
    # Handed off: its checkpoint names it, for the operator's cleanup to cancel.
    store = open_store(environment.as_uri())
    (request,) = pending(checkpoints(store, UID))
    assert (request.provider, request.request_id) == ("fal", fal.ours[0].request_id)

    # A later attempt of the Job (the pod was evicted, not deleted) resumes it: paid once.
    with mocked(fal):
        code, message = worker(tmp_path, spec)
    assert code == 0, message
    assert (fal.accepted, fal.billed) == (1, 1)
    assert json.loads(message)["usage"][0]["request"] == fal.ours[0].request_id
