"""The evaluation's prompts: fixed and versioned, so that two versions' scores (and a version's
score and its baseline's) come from the same pictures asked for. A changed prompt is a new set;
a set, once published, never changes (its baseline is cached under its name)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# A portrait of the subject, or the subject with a second person.
Kind = Literal["portrait", "pair"]

DEFAULT_SET = "likeness-v1"
DEFAULT_SEEDS = (1, 2)


@dataclass(frozen=True)
class Prompt:
    kind: Kind
    text: str  # with {trigger}: the LoRA's trigger word (without the LoRA: "a person")

    def filled(self, trigger: str) -> str:
        return self.text.format(trigger=trigger)


PROMPT_SETS: dict[str, tuple[Prompt, ...]] = {
    "likeness-v1": (
        Prompt("portrait", "a close-up photo portrait of {trigger}, looking at the camera, soft light"),
        Prompt("portrait", "a photo of {trigger} smiling, head and shoulders, outdoors in daylight"),
        Prompt("portrait", "a photo of {trigger} in a kitchen, medium shot, natural light"),
        Prompt("portrait", "a candid photo of {trigger} walking in a city street, waist up"),
        Prompt("pair", "a photo of {trigger} standing next to another person, both facing the camera"),
        Prompt("pair", "a photo of {trigger} talking with a friend at a cafe table, both faces visible"),
    ),
}


def prompt_set(name: str) -> tuple[Prompt, ...]:
    """The prompts of set `name`; ValueError naming the sets there are."""
    if name not in PROMPT_SETS:
        raise ValueError(f"unknown likeness prompt set {name!r}; use one of {sorted(PROMPT_SETS)}")
    return PROMPT_SETS[name]
