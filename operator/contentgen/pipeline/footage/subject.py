"""Who the dataset shows: the people of a video, told apart by their faces, and the subject.

Pure decisions over face embeddings (identity.py): every judged scene contributes the faces of
its chosen frame (`sightings`); the faces are grouped into people (`identify`), and the subject
is the person the reference photos show, or else the one with clearly the most prominent screen
time (`choose_subject`).

Each person has two screen times. `seconds`: the length of the scenes their face is in, whoever
else is in them. `prominent`: each scene's length shared among the faces of its frame by their
prominence (`screen_shares`): a face alone on screen gets the whole scene, one of two faces of
the same size half of it, one of five in a group shot a fifth, a neighbour half out of the frame
or smaller at the side of a close-up a small part. In a group video everyone shares the group
shots, and the person the camera keeps coming back to gets their close-ups whole: that is the
person the video is about. The subject is chosen on `prominent` time; a person filmed alone is
unaffected (two people filmed alone for equal times stay equal).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from contentgen.api import MAX_LISTED_PEOPLE, Person, SubjectSummary

from .crop import inside_share
from .faces import Box
from .identity import SAME_PERSON, centroid, cluster, dominant, similarity


@dataclass
class PersonFound:
    """One person: the sightings (indices) of their face, the scenes and seconds they are in, and
    their prominent screen time (see the module)."""

    number: int  # 1 for the most prominent screen time
    members: list[int]
    scenes: set[int]
    seconds: float
    prominent: float
    centre: np.ndarray  # the unit mean of their faces' embeddings
    similarity: float | None = None  # to the reference photos


@dataclass
class Subject:
    """The decision: who the subject is (one person, or a few groups the reference photos all
    match that never share a frame), how it was chosen, and what the dataset kept of them."""

    people: list[PersonFound]  # everyone found
    chosen: list[PersonFound]  # the subject's groups
    chosen_by: Literal["screenTime", "reference"]
    purity: float = 1.0
    kept: list[int] = field(default_factory=list)  # sightings in the dataset

    @property
    def members(self) -> list[int]:
        return sorted(i for person in self.chosen for i in person.members)

    def report(self) -> dict[str, Any]:
        """DatasetSummary's fields about people and the subject."""
        numbers = {person.number for person in self.chosen}
        return {
            **people_report(self.people, numbers),
            "subject": SubjectSummary(
                person=min(numbers), chosen_by=self.chosen_by, purity=round(self.purity, 3)
            ),
        }


def people_report(people: list[PersonFound], subject: set[int] | None = None) -> dict[str, Any]:
    """DatasetSummary's people_found and people (the first MAX_LISTED_PEOPLE)."""
    return {
        "people_found": len(people),
        "people": [
            Person(
                number=person.number,
                screen_seconds=round(person.seconds, 2),
                prominent_seconds=round(person.prominent, 2),
                scenes=len(person.scenes),
                subject=person.number in (subject or set()),
                similarity=None if person.similarity is None else round(person.similarity, 3),
            )
            for person in people[:MAX_LISTED_PEOPLE]
        ],
    }


def screen_shares(faces: Sequence[Box], picture: Box) -> list[float]:
    """Each face's share of its frame's screen time: its prominence over the sum of all the
    frame's (`faces` are the faces large enough to be told apart; `picture` is the frame inside
    any black bars, in the same pixels). A face's prominence is its height times the part of its
    box inside the picture: the larger face of a two-shot gets more, a face cut by the frame's
    edge less, a face alone all of it."""
    weights = [box.h * inside_share(box, picture) for box in faces]
    total = sum(weights)
    if total <= 0:
        return [1 / len(faces)] * len(faces) if faces else []
    return [weight / total for weight in weights]


def identify(
    vectors: np.ndarray,
    scenes: list[int],
    scene_seconds: dict[int, float],
    shares: Sequence[float] | None = None,
) -> list[PersonFound]:
    """Group sightings (embedding rows, each in a scene, with its `shares` of the scene's screen
    time: `screen_shares`; whole by default) into people, most prominent screen time first.

    Faces of one scene are never one person (clustering's constraint): they are one frame's."""
    labels = cluster(vectors, scenes)
    shares = [1.0] * len(scenes) if shares is None else shares
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(label, []).append(index)
    people = []
    for members in groups.values():
        seen = {scenes[i] for i in members}
        seconds = sum(scene_seconds.get(scene, 0.0) for scene in seen)
        prominent = sum(scene_seconds.get(scenes[i], 0.0) * shares[i] for i in members)
        people.append(PersonFound(0, members, seen, seconds, prominent, centroid(vectors[members])))
    people.sort(key=lambda p: (-round(p.prominent, 6), -p.seconds, min(p.scenes)))
    for number, person in enumerate(people, start=1):
        person.number = number
    return people


def choose_subject(people: list[PersonFound], reference: np.ndarray | None) -> Subject | None:
    """The subject among `people` (most prominent screen time first). With `reference` (the unit
    mean of the reference photos' faces): the person most like it, with any other group that is
    as alike as one person's faces are (SAME_PERSON) and never in a frame with them; every
    person's `similarity` is set. None when no reference is given and no one clearly has the most
    prominent screen time (identity.dominant), or when no one looks like the reference."""
    if not people:
        return None
    if reference is not None:
        for person in people:
            person.similarity = similarity(person.centre, reference)
        best = max(people, key=lambda p: p.similarity or -1.0)
        if (best.similarity or -1.0) < SAME_PERSON:
            return None
        chosen = [best]
        for person in sorted(people, key=lambda p: -(p.similarity or -1.0)):
            if person is best or (person.similarity or -1.0) < SAME_PERSON:
                continue
            if all(not (person.scenes & other.scenes) for other in chosen):
                chosen.append(person)
        return Subject(people, chosen, "reference")
    index = dominant([person.prominent for person in people])
    if index is None:
        return None
    return Subject(people, [people[index]], "screenTime")


def purity(vectors: np.ndarray, kept: list[int], members: list[int], reference: np.ndarray | None) -> float:
    """The share of the kept sightings whose face the model takes for the subject: alike the
    reference (when given) or the mean of the subject's other faces, by SAME_PERSON or more. A
    subject seen once is compared with no one: 1.0."""
    if not kept:
        return 1.0
    agreeing = 0
    for index in kept:
        if reference is not None:
            target = reference
        else:
            others = [i for i in members if i != index]
            if not others:
                agreeing += 1
                continue
            target = centroid(vectors[others])
        agreeing += similarity(vectors[index], target) >= SAME_PERSON
    return agreeing / len(kept)
