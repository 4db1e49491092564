"""Which checkpoints a training's likeness evaluation scores, and which one becomes the version's
model (pipeline/likeness/checkpoints.py, pure): good beats poor, then the higher median, exact ties
to the earlier step, and the last step where nothing was measured; and how their grid draws them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from contentgen.pipeline.likeness.checkpoints import Scored, choose, spread
from contentgen.pipeline.likeness.evaluation import Evaluation, draw_checkpoint_grid
from contentgen.pipeline.likeness.score import ImageScore, Likeness


def test_a_good_checkpoint_beats_a_poor_one_with_a_higher_median() -> None:
    # step 200 is a copy of a training image: the highest median, and poor for it
    choice = choose([Scored(100, "poor", 0.12), Scored(150, "good", 0.55), Scored(200, "poor", 0.84)])
    assert (choice.step, choice.final) == (150, 200)
    assert choice.why.startswith(
        "step 150 scored best of 3 checkpoints (good, median 0.55; the last step, 200:"
    )
    assert "poor, median 0.84" in choice.why and "finalModelUri" in choice.why


def test_among_equals_the_higher_median_wins() -> None:
    assert choose([Scored(1, "good", 0.40), Scored(2, "good", 0.61), Scored(3, "good", 0.52)]).step == 2
    assert choose([Scored(1, "poor", 0.20), Scored(2, "poor", 0.25), Scored(3, "no-faces", None)]).step == 2


def test_an_exact_tie_goes_to_the_earlier_step() -> None:
    assert choose([Scored(250, "good", 0.5), Scored(500, "good", 0.5), Scored(750, "good", 0.5)]).step == 250
    # the order they come in does not matter
    assert choose([Scored(750, "good", 0.5), Scored(500, "good", 0.5), Scored(250, "good", 0.5)]).step == 250


def test_the_last_step_when_it_scores_best() -> None:
    choice = choose([Scored(100, "poor", 0.2), Scored(200, "good", 0.6)])
    assert (choice.step, choice.final) == (200, 200)
    assert choice.why == "the last step, 200, scored best of 2 checkpoints (good, median 0.60)"


def test_a_measured_checkpoint_beats_one_without_faces() -> None:
    scored = [Scored(1, "poor", 0.1), Scored(2, "no-faces", None), Scored(3, "no-faces", None)]
    assert choose(scored).step == 1


def test_none_measured_the_last_step_and_the_choice_says_why() -> None:
    choice = choose([Scored(2, "no-faces", None), Scored(1, "no-faces", None), Scored(3, "no-faces", None)])
    assert (choice.step, choice.final) == (3, 3)
    assert choice.why == (
        "no checkpoint's likeness could be measured (no-faces at all 3 scored): the last step, 3, is the "
        "version's model"
    )
    with pytest.raises(ValueError, match="no checkpoint"):
        choose([])


def test_one_checkpoint_scored() -> None:
    choice = choose([Scored(1000, "poor", 0.2)])
    assert choice.step == 1000
    assert choice.why == "the last step, 1000, is the only checkpoint scored (poor, median 0.20)"


@pytest.mark.parametrize(
    ("stored", "at_most", "scored"),
    [
        ([250, 500, 750, 1000], 8, [250, 500, 750, 1000]),  # fewer than asked: all of them
        ([250, 500, 750, 1000], 2, [500, 1000]),
        ([250, 500, 750, 1000], 1, [1000]),  # 1: the last step only
        (list(range(20, 1001, 20)), 8, [120, 240, 360, 500, 620, 740, 860, 1000]),
        ([34, 68, 100], 3, [34, 68, 100]),
        ([100], 8, [100]),
        ([], 8, []),
    ],
)
def test_the_scored_checkpoints_are_spread_evenly_with_the_last_among_them(
    stored: list[int], at_most: int, scored: list[int]
) -> None:
    assert spread(stored, at_most) == scored


def _drawn_rows(tmp_path: Path, label: str) -> np.ndarray:
    """The title column of the first checkpoint's row of a grid drawn with `label` (luma)."""
    picture = tmp_path / "p.png"
    cv2.imwrite(str(picture), np.full((64, 64, 3), 90, np.uint8))
    scored = ImageScore("p01-s1", "portrait", 0)
    evaluation = Evaluation(
        likeness=Likeness("no-faces", [], 1, 0, 1.0, scored=[scored]),
        grid=picture,
        with_lora=[picture],
        baseline=[picture],
        baseline_scores=[scored],
        names=["p01-s1"],
    )
    out = draw_checkpoint_grid(tmp_path / "grid.jpg", [(label, evaluation)], title="t")
    sheet = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE)
    row = 50 + (128 + 22 + 6)  # under the header and the row without the LoRA
    return sheet[row : row + 128 + 22, : 150 + 3]


def test_the_grids_row_titles_are_drawn_a_line_each_and_cut_to_their_column(tmp_path: Path) -> None:
    """Each line of a row's title under the last (not joined by "?"), each fitted to the title
    column with "..." where it is longer (not cut mid-letter into the pictures)."""
    column = _drawn_rows(tmp_path, "step 250\npoor\nno median")
    lit = [(column[top : top + 18, :150] > 150).sum() for top in (8, 26, 44)]
    assert all(count > 20 for count in lit), lit  # three lines of text, one under another
    alone = _drawn_rows(tmp_path, "step 250")
    assert (alone[26:62, :150] > 150).sum() == 0  # a one-line title leaves the next lines empty
    long = _drawn_rows(tmp_path, "step 1000 * a title far longer than the column it is drawn in")
    assert (long[:18, 147:153] > 150).sum() == 0  # fitted: nothing drawn over the column's edge
