"""A LoRA version's likeness evaluation (pipeline/likeness/evaluation.py) through the real fal
provider against the fal fake, whose FLUX pictures show real faces chosen per test (the subject,
another person, none, a copy of a training image, the subject twice), and through the offline
provider. Billing: every picture billed once, a checkpointed re-run pays nothing, the baseline is
paid once and shared."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import cv2
import numpy as np
import pytest

from contentgen.api.lora import LIKENESS_PROMPT_SETS, LikenessPromptSet
from contentgen.pipeline.likeness import score
from contentgen.pipeline.likeness.evaluation import Candidate, Evaluation, run_evaluation, run_evaluations
from contentgen.pipeline.likeness.plan import Plan, expected_usage
from contentgen.pipeline.likeness.prompts import PROMPT_SETS, prompt_set
from contentgen.pricing import PriceTable, priced
from contentgen.providers.base import Checkpoint, ImageGenerator, LoraWeights, MemoryCheckpoint
from contentgen.providers.fal import FalProvider
from contentgen.providers.offline import OfflineProvider
from contentgen.store.local import LocalStore
from tests.harness.faces import (
    a_copy,
    another_person,
    is_pair,
    shows,
    square,
    the_subject,
)
from tests.pipeline.likeness_faces import (
    LATER_SECONDS,
    moments,
    photo,
    side_by_side,
    subject,
)
from tests.providers.fake_fal import FAL_KEY, FakeFal
from tests.providers.fakes import FakeSleep, mocked, retry

WEIGHTS = "https://example.com/loras/dmavatar.safetensors"
PLAN = Plan(seeds=(1,))  # six prompts, one seed: twelve pictures a fresh evaluation


def no_face(arguments: dict[str, Any]) -> np.ndarray:
    return square(photo("coffee"))


def subject_twice(arguments: dict[str, Any]) -> np.ndarray:
    if is_pair(arguments):
        return square(side_by_side(moments()[LATER_SECONDS[0]], moments()[LATER_SECONDS[1]]))
    return square(moments()[LATER_SECONDS[2]])


class Checkpoints:
    """The provider checkpoints of one resource, kept across runs (as the store keeps them)."""

    def __init__(self) -> None:
        self.kept: dict[str, MemoryCheckpoint] = {}

    def __call__(self, name: str) -> Checkpoint:
        return self.kept.setdefault(name, MemoryCheckpoint())


def evaluate_with(
    generator: ImageGenerator, store: LocalStore, work: Path, checkpoints: Checkpoints | None = None
) -> tuple[Evaluation, list[Any]]:
    billed: list[Any] = []
    work.mkdir(parents=True, exist_ok=True)
    evaluation = run_evaluation(
        generator,
        store,
        PLAN,
        "dmavatar",
        LoraWeights(url=WEIGHTS),
        subject(),
        work,
        lambda *_: None,
        checkpoints or Checkpoints(),
        billed,
    )
    return evaluation, billed


@pytest.fixture
def fal() -> FakeFal:
    fake = FakeFal()
    fake.files[WEIGHTS] = fake.weights
    return fake


@pytest.fixture
def provider() -> FalProvider:
    return FalProvider(FAL_KEY, retry=retry(FakeSleep()), poll_interval=2.0)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def test_a_lora_that_shows_the_subject_scores_high_and_every_picture_is_billed_once(
    fal: FakeFal, provider: FalProvider, store: LocalStore, tmp_path: Path
) -> None:
    fal.picture = shows(the_subject)
    checkpoints = Checkpoints()
    with mocked(fal):
        evaluation, billed = evaluate_with(provider, store, tmp_path / "one", checkpoints)
    likeness = evaluation.likeness
    assert likeness.verdict == "good", likeness.reasons
    assert likeness.median is not None and likeness.median >= score.THRESHOLD
    assert likeness.gain is not None and likeness.gain >= score.MIN_GAIN
    assert likeness.bleed is not None and likeness.bleed < score.THRESHOLD
    pictures = 2 * len(PLAN.items())
    # every picture one billed fal request, each in the usage with its request id
    assert fal.billed == pictures == len(billed)
    assert len({line.request for line in billed}) == pictures and all(line.request for line in billed)
    assert [line.item for line in billed] == ["fal-ai/flux-lora"] * pictures
    # the price known before it started is what it billed
    prices = PriceTable()
    assert priced(expected_usage("fal", PLAN), prices)[0] == pytest.approx(priced(billed, prices)[0])
    assert cv2.imread(str(evaluation.grid)) is not None

    # the same run again (a retried pod): the checkpoints deliver what was paid, nothing is billed
    with mocked(fal):
        again, billed_again = evaluate_with(provider, store, tmp_path / "again", checkpoints)
    assert fal.billed == pictures
    # its usage names the LoRA's requests paid then (status.cost counts a request once); the
    # baseline it reads from the store
    assert [line.request for line in billed_again] == [line.request for line in billed[: len(PLAN.items())]]
    assert again.likeness.median == likeness.median

    # another version: the baseline is stored already, only the LoRA's pictures are paid
    with mocked(fal):
        other, billed_other = evaluate_with(provider, store, tmp_path / "other")
    assert fal.billed == pictures + len(PLAN.items()) and len(billed_other) == len(PLAN.items())
    assert priced(expected_usage("fal", PLAN, baseline_cached=True), prices)[0] == pytest.approx(
        priced(billed_other, prices)[0]
    )
    assert other.likeness.baseline_median == likeness.baseline_median


@pytest.mark.parametrize(
    ("pictures", "verdict", "reason"),
    [
        (another_person, "poor", "do not look like the subject"),
        (no_face, "no-faces", "no face in any of the 6 generated images"),
        (a_copy, "poor", "copies of one training image"),
        (subject_twice, "poor", "(bleed)"),
    ],
    ids=["another-person", "no-face", "a-copy", "the-subject-twice"],
)
def test_what_a_bad_lora_shows_is_reported_as_such(
    pictures: Callable[[dict[str, Any]], np.ndarray],
    verdict: str,
    reason: str,
    fal: FakeFal,
    provider: FalProvider,
    store: LocalStore,
    tmp_path: Path,
) -> None:
    fal.picture = shows(pictures)
    with mocked(fal):
        evaluation, _ = evaluate_with(provider, store, tmp_path)
    likeness = evaluation.likeness
    assert likeness.verdict == verdict
    assert any(reason in line for line in likeness.reasons), likeness.reasons
    if verdict == "no-faces":
        assert likeness.median is None and likeness.percent is None and likeness.faces == 0


def test_offline_placeholders_report_no_faces(store: LocalStore, tmp_path: Path) -> None:
    evaluation, billed = evaluate_with(OfflineProvider(), store, tmp_path)
    likeness = evaluation.likeness
    assert likeness.verdict == "no-faces" and likeness.median is None and likeness.gain is None
    assert likeness.no_face_rate == 1.0 and len(likeness.scored) == len(PLAN.items())
    assert all(s.similarity is None for s in likeness.scored)
    # known to show no face (test_likeness: a search finds none), they are not searched, and say so
    reasons = likeness.reasons
    assert any("offline placeholders" in r and "not searched" in r for r in reasons), reasons
    assert cv2.imread(str(evaluation.grid)) is not None
    # the usage recorded (free offline), one line for the pictures: they have no request ids
    assert [(line.item, line.quantity, line.request) for line in billed] == [("flux-lora", 12, "")]


def test_the_apis_prompt_sets_are_the_pipelines() -> None:
    """The API names the sets and prices them by their number of prompts; the pipeline has them."""
    assert {name: len(prompt_set(name)) for name in PROMPT_SETS} == LIKENESS_PROMPT_SETS
    assert set(get_args(LikenessPromptSet)) == set(PROMPT_SETS)


def test_each_checkpoint_is_scored_against_the_training_faces(
    fal: FakeFal, provider: FalProvider, store: LocalStore, tmp_path: Path
) -> None:
    """Several LoRAs on one baseline (a training's checkpoints): every one's pictures are scored
    against the dataset's faces as a version's single LoRA is, their nearest training image named
    among the dataset's, not among the pictures' names (the second checkpoint's were, before)."""
    fal.picture = shows(the_subject)
    names, rows = subject()
    steps = ("500", "1000", "1500")
    for step in steps:
        fal.files[f"{WEIGHTS}?step={step}"] = fal.weights
    candidates = [Candidate(LoraWeights(url=f"{WEIGHTS}?step={s}"), f"step-{s}", f" step {s}") for s in steps]
    with mocked(fal):
        evaluations = run_evaluations(
            provider, store, PLAN, "dmavatar", candidates, (names, rows), tmp_path / "all",
            lambda *_: None, Checkpoints(), [],
        )  # fmt: skip
        single, _ = evaluate_with(provider, store, tmp_path / "one")
    assert len(evaluations) == len(steps)
    for evaluation in evaluations:
        scored = evaluation.likeness.scored
        assert scored and all(s.faces for s in scored)
        assert {s.nearest_training for s in scored} <= set(names), [s.nearest_training for s in scored]
        assert [s.nearest_training for s in scored] == [s.nearest_training for s in single.likeness.scored]
        assert evaluation.names == [name for name, _, _, _ in PLAN.items()]
