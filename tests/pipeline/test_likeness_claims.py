"""Re-evaluation numbers (pipeline/likeness/reevaluate.py `claim`): two evaluations of one LoRA
version at once (two LoraEvaluations in a cluster, or one beside a laptop's) never take one
number; a claimant's own unfinished claim is resumed, its finished one is taken as it is; and the
part of reevaluate that finds and estimates a target imports without numpy or OpenCV (the HTTP
API's image has neither)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from contentgen.pipeline.likeness.plan import Plan
from contentgen.pipeline.likeness.reevaluate import (
    CLAIM_FILE,
    RECORD_FILE,
    Target,
    claim,
    finished_claim,
)
from contentgen.store import LocalStore
from tests.conftest import ROOT

UID = "7d3c6a9e-1111-4222-8333-944455556666"


def goal(evaluations: tuple[dict[str, object], ...] = ()) -> Target:
    return Target(
        uid=UID,
        owner="demo-user",
        namespace="default",
        name="demo-avatar",
        version=2,
        trigger_word="dmavatar",
        model_uri="file:///nowhere/model.safetensors",
        dataset_uri="file:///nowhere/dataset.zip",
        provider="offline",
        plan=Plan(),
        evaluations=evaluations,
    )


def finish(store: LocalStore, number: int) -> None:
    record = {"evaluation": number, "version": 2, "likeness": {"verdict": "no-faces"}}
    store.put_once_bytes(goal().folder(number) + RECORD_FILE, json.dumps(record).encode(), "application/json")


def test_racing_claimants_each_get_a_number_of_their_own(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    got: dict[str, int] = {}
    start = threading.Barrier(8)

    def take(who: str) -> None:
        start.wait()
        got[who] = claim(store, goal(), who)

    threads = [threading.Thread(target=take, args=(f"evaluation-{n}/v1",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(got.values()) == list(range(1, 9))
    for who, number in got.items():  # each claim says whose it is
        stored = json.loads(store.get_bytes(goal().folder(number) + CLAIM_FILE))
        assert stored == {"claimant": who}


def test_a_claimant_resumes_its_own_unfinished_claim_and_takes_its_finished_one(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    assert claim(store, goal(), "a/v1") == 1
    assert claim(store, goal(), "b/v1") == 2
    # a retried attempt of a's run resumes its number (its checkpoints are under it)
    assert claim(store, goal(), "a/v1") == 1
    assert finished_claim(store, goal(), "a/v1") is None
    finish(store, 1)
    # finished: taken as it is; a new claim of a's gets a new number
    taken = finished_claim(store, goal(), "a/v1")
    assert taken is not None and (taken["evaluation"], taken["likeness"]) == (1, {"verdict": "no-faces"})
    assert [a["uri"] for a in taken["artifacts"]] == [store.uri(goal().folder(1) + RECORD_FILE)]
    assert claim(store, goal(), "a/v1") == 3
    # numbers the record holds (recorded by a laptop whose store objects are elsewhere) are skipped
    assert claim(store, goal(({"evaluation": 7},)), "c/v1") == 8


def test_an_unclaimed_stopped_attempt_is_resumed_under_its_number(tmp_path: Path) -> None:
    """A laptop attempt stopped before claims existed left pictures under e1 and no claim: the next
    laptop attempt takes e1 again (its checkpoints are there), as before."""
    store = LocalStore(tmp_path / "store")
    store.put_once_bytes(goal().folder(1) + "likeness-grid.jpg", b"half", "image/jpeg")
    assert claim(store, goal(), "local") == 1


def test_finding_and_estimating_a_target_needs_no_numpy_or_opencv() -> None:
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('numpy', 'cv2', 'httpx', 'fal_client'):\n"
        "            raise ImportError(f'{name} is not in the operator image')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from contentgen.pipeline.likeness import reevaluate\n"
        "from contentgen.httpapi.routes import evaluate\n"
        "from contentgen.controller import reconciler\n"
        "print(reevaluate.check_plan(None, [3]).seeds)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", blocker], capture_output=True, text=True, cwd=ROOT, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(3,)"
