"""bounded() leaves a version an earlier write slimmed as it is instead of slimming it again (a
write over a long-lived record copied every older version and every point of its likeness curve:
most of a thousand-run record's write time), and gives exactly what it gave when it slimmed
every older version on every write: the same values, types and key order, for records as the
current code writes them, records already bounded, and records older code wrote (slimmed without
the likeness brief or the transcript times, another prompt length, points in another order)."""

from __future__ import annotations

import copy
import random
from typing import Any
from unittest.mock import patch

import pytest

from contentgen.catalog import bounds
from contentgen.catalog.bounds import CURVE_POINT, DETAILED_VERSIONS, OLDER_PROMPT_CHARS, _older, bounded
from tests.catalog.factory import grown

GENERATED = 600
WORDS = ("fox", "lantern", "harbour", "quiet", "x" * 50)


def bounded_before(doc: dict[str, Any]) -> dict[str, Any]:
    """bounded() as it was before it recognised slim versions: every older version slimmed again
    (the reference)."""
    with patch.object(bounds, "_slim", lambda version: False):
        return bounded(doc)


def _text(rng: random.Random, around: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, around // 4)))[: around * 2]


def _point(rng: random.Random) -> dict[str, Any]:
    whole = {
        "step": rng.randint(0, 10_000),
        "verdict": rng.choice(("same", "different", None)),
        "median": rng.random(),
        "chosen": rng.random() < 0.1,
        "gridUri": "s3://b/grid.jpg",
        "reasons": ["blurry"],
    }
    keys = rng.sample(list(whole), rng.randint(0, len(whole)))
    if rng.random() < 0.5:  # as _older leaves a point: CURVE_POINT's keys in its order
        keys = [k for k in CURVE_POINT if k in keys]
    return {k: whole[k] for k in keys}


def _likeness(rng: random.Random) -> Any:
    shape = rng.randrange(6)
    if shape == 0:
        return None
    if shape == 1:
        return {"chosenStep": 10, "checkpoints": []}
    points: Any = [_point(rng) for _ in range(rng.randint(1, 20))]
    if shape == 2:
        points = tuple(points)
    return {"chosenStep": rng.randint(0, 100), "checkpoints": points, "median": rng.random()}


def _version(rng: random.Random, number: int) -> dict[str, Any]:
    choices: dict[str, Any] = {
        "version": lambda: number,
        "generation": lambda: number,
        "spec": lambda: rng.choice((None, {"prompt": "a fox"}, {})),
        "prompt": lambda: rng.choice(
            (
                _text(rng, OLDER_PROMPT_CHARS),
                None,
                7,
                "p" * OLDER_PROMPT_CHARS,
                "p" * (OLDER_PROMPT_CHARS + 1),
            )
        ),
        "transcriptText": lambda: rng.choice(("", None, _text(rng, 80))),
        "transcriptTimes": lambda: rng.choice(
            (
                {"chars": [], "seconds": []},
                {"seconds": [], "chars": []},
                {"chars": [0, 4], "seconds": [0.0, 0.5]},
                {"chars": (), "seconds": ()},
                {"chars": []},
                None,
            )
        ),
        "likeness": lambda: _likeness(rng),
        "artifacts": lambda: [{"uri": f"s3://b/v{number}/out.png", "sizeBytes": 3}],
    }
    keys = [k for k in choices if k == "version" or rng.random() < 0.7]
    rng.shuffle(keys)
    return {k: choices[k]() for k in keys}


# What older code, or a status giving a version its fields again, may have left in a version
# that is otherwise as _older leaves it.
UNSLIM: tuple[Any, ...] = (
    lambda v, rng: v.pop("spec", None),
    lambda v, rng: v.update(spec={}),
    lambda v, rng: v.update(prompt="p" * (OLDER_PROMPT_CHARS + 1)),
    lambda v, rng: v.update(transcriptText=" "),
    lambda v, rng: v.update(transcriptTimes={"seconds": [], "chars": []}),
    lambda v, rng: v.update(transcriptTimes={"chars": [1], "seconds": [0.5]}),
    lambda v, rng: v.update(likeness={"checkpoints": [{"median": 0.5, "step": 10}]}),
    lambda v, rng: v.update(likeness={"checkpoints": [{"step": 10, "gridUri": "s3://b/g.jpg"}]}),
    lambda v, rng: v.update(likeness={"checkpoints": ({"step": 10},)}),
    lambda v, rng: v.update(likeness={"checkpoints": [["step"]]}),  # refused, as it was
)


def _slim_but(rng: random.Random, number: int) -> dict[str, Any]:
    version = _older(_version(rng, number))
    if rng.random() < 0.7:
        rng.choice(UNSLIM)(version, rng)
    return version


def generated(rng: random.Random) -> dict[str, Any]:
    """A record in any shape bounded() may be handed, with 0 to 60 versions."""
    made = (_version, _slim_but)
    versions = [rng.choice(made)(rng, n) for n in range(1, rng.randint(0, 60) + 1)]
    runs = [{"version": n, "generation": n, "startedAt": f"t{n}"} for n in range(1, rng.choice((1, 4, 103)))]
    return {
        "latestRun": runs[-1] if runs and rng.random() < 0.5 else {"version": 0},
        "runs": runs,
        "olderRuns": rng.choice((None, 0, 5)),
        "deletedVersions": [{"version": n} for n in range(rng.choice((0, 2, 102)))],
        "olderDeletedVersions": rng.choice((None, 3)),
        "versions": versions,
    }


def outcome(bound: Any, doc: dict[str, Any]) -> str:
    """What `bound` makes of a copy of `doc`: its values, types and key order (the bytes a backend
    stores), or the error it refuses it with."""
    try:
        return repr(bound(copy.deepcopy(doc)))
    except (TypeError, KeyError) as refused:
        return type(refused).__name__


def assert_same_as_before(doc: dict[str, Any]) -> None:
    assert outcome(bounded, doc) == outcome(bounded_before, doc)


@pytest.mark.parametrize("seed", range(3))
def test_bounded_gives_what_it_gave_for_generated_records(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(GENERATED // 3):
        doc = generated(rng)
        assert_same_as_before(doc)
        try:
            once = bounded_before(copy.deepcopy(doc))  # a record a write bounded before
        except TypeError:
            continue
        assert_same_as_before(once)
        for version in once["versions"]:  # then a status gave some versions their fields again
            if rng.random() < 0.2:
                version.update(_version(rng, int(version["version"])))
        assert_same_as_before(once)


@pytest.mark.parametrize("kind", ["LoraTraining", "ImageGeneration", "Transcription"])
def test_bounded_gives_what_it_gave_for_long_lived_records(kind: str) -> None:
    """Records as the operator builds them, run after run, every older version already slim."""
    doc = grown(kind, 60)
    assert len(doc["versions"]) > DETAILED_VERSIONS
    assert_same_as_before(doc)


def test_a_slim_version_is_kept_not_built_again() -> None:
    doc = grown("LoraTraining", 60)
    older = doc["versions"][: len(doc["versions"]) - DETAILED_VERSIONS]
    again = bounded({**doc, "versions": list(doc["versions"])})
    assert all(a is b for a, b in zip(again["versions"], older, strict=False))
