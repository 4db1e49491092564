"""Pictures a likeness test's fake provider draws, from real photographs: the subject, another
person, baseline strangers, a copy of a training image (tests/pipeline, run, cluster, kube)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tests.pipeline.likeness_faces import (
    LATER_SECONDS,
    TRAINING_SECONDS,
    moments,
    photo,
    side_by_side,
)


def baseline_strangers(arguments: dict[str, Any]) -> np.ndarray:
    """Without the LoRA the base model draws strangers (and two of them in pair prompts)."""
    if is_pair(arguments):
        return square(side_by_side(stranger(arguments), photo("grace_hopper")))
    return square(stranger(arguments))


def the_subject(arguments: dict[str, Any]) -> np.ndarray:
    later = moments()[LATER_SECONDS[sum(map(ord, arguments["prompt"])) % len(LATER_SECONDS)]]
    return square(side_by_side(later, photo("luispedro")) if is_pair(arguments) else later)


def another_person(arguments: dict[str, Any]) -> np.ndarray:
    return square(side_by_side(photo("takeo"), photo("lenna")) if is_pair(arguments) else photo("takeo"))


def a_copy(arguments: dict[str, Any]) -> np.ndarray:
    return square(moments()[TRAINING_SECONDS[2]])


def shows(with_lora: Callable[[dict[str, Any]], np.ndarray]) -> Callable[[dict[str, Any], int], np.ndarray]:
    def picture(arguments: dict[str, Any], _: int) -> np.ndarray:
        return with_lora(arguments) if arguments.get("loras") else baseline_strangers(arguments)

    return picture


def square(image: np.ndarray) -> np.ndarray:
    """`image` in the middle of a grey square (the fake resizes to the square size asked for)."""
    height, width = image.shape[:2]
    side = max(height, width)
    out = np.full((side, side, 3), 128, np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    out[top : top + height, left : left + width] = image
    return out


def is_pair(arguments: dict[str, Any]) -> bool:
    return any(word in arguments["prompt"] for word in ("another person", "a friend"))


def stranger(arguments: dict[str, Any]) -> np.ndarray:
    return photo(STRANGERS[sum(map(ord, arguments["prompt"])) % len(STRANGERS)])


STRANGERS = ("grace_hopper", "astronaut", "luispedro", "lenna", "takeo", "einstein_tongue")
