"""What the dataset stage found and chose: scenes kept and dropped, the people told apart, the
subject, and the images with their captions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ..base import ApiModel
from ..common import Artifact
from .clips import ClipsSummary


class DroppedScenes(ApiModel):
    """Why scenes gave no dataset image, scene by scene (each scene is counted once)."""

    too_short: Annotated[int, Field(ge=0, description="Shorter than minSceneSeconds.")] = 0
    no_face: Annotated[int, Field(ge=0, description="No face found (faceFilter).")] = 0
    blurry: Annotated[int, Field(ge=0, description="Every candidate frame was blurred.")] = 0
    dark: Annotated[int, Field(ge=0, description="Every candidate frame was too dark or too bright.")] = 0
    other_person: Annotated[
        int, Field(ge=0, description="Only another person's face was found, not the subject's.")
    ] = 0
    crowded: Annotated[
        int,
        Field(
            ge=0,
            description="The subject's face is too close to other faces for a crop that leaves them out.",
        ),
    ] = 0
    duplicate: Annotated[
        int, Field(ge=0, description="The same shot as a better image already in the dataset.")
    ] = 0
    over_max_frames: Annotated[int, Field(ge=0, description="Beyond maxFrames, the weakest left out.")] = 0

    @property
    def total(self) -> int:
        return (
            self.too_short
            + self.no_face
            + self.blurry
            + self.dark
            + self.other_person
            + self.crowded
            + self.duplicate
            + self.over_max_frames
        )


MAX_LISTED_PEOPLE = 10
# Without reference images the subject is the person with at least this many times the next
# person's prominent screen time; otherwise the run stops with SubjectAmbiguous.
SUBJECT_DOMINANCE = 1.5


class Person(ApiModel):
    """One person told apart in the video by their face."""

    number: Annotated[
        int,
        Field(
            ge=1, description="1 for the most prominent screen time (prominentSeconds), 2 for the next, ..."
        ),
    ]
    screen_seconds: Annotated[
        float,
        Field(ge=0, description="Seconds of the scenes their face is in, whoever else is in them."),
    ]
    prominent_seconds: Annotated[
        float | None,
        Field(
            ge=0,
            description="Screen time weighed by prominence, on which the subject is chosen: each scene's "
            "seconds shared among the faces in it by their height (and the part of them inside the "
            "picture): a face alone gets the whole scene, one of two of the same size half, one of five "
            "in a group shot a fifth. Unset in reports of runs made before it was measured.",
        ),
    ] = None
    scenes: Annotated[int, Field(ge=0, description="Scenes their face is in.")]
    subject: Annotated[bool, Field(description="The person the dataset shows.")] = False
    similarity: Annotated[
        float | None,
        Field(ge=-1, le=1, description="How alike their face is to the reference images (cosine, -1 to 1)."),
    ] = None


class SubjectSummary(ApiModel):
    """Who the dataset shows and how that was decided."""

    person: Annotated[int, Field(ge=1, description="The person's number in people.")]
    chosen_by: Annotated[
        Literal["screenTime", "reference"],
        Field(
            description="screenTime: clearly the most screen time weighed by prominence (people's "
            f"prominentSeconds: at least {SUBJECT_DOMINANCE:g} times the next person's); reference: "
            "dataset.subject.referenceImages."
        ),
    ]
    purity: Annotated[
        float,
        Field(
            ge=0,
            le=1,
            description="The share of dataset images whose face the embedding model takes for the "
            "subject's (compared with the subject's other faces, or the reference images).",
        ),
    ]


class DatasetSummary(ApiModel):
    """What the dataset stage found: status.dataset, also in the run's result. Its counts are
    required, so the CRD gives status.dataset no default: it is absent until a run has counted
    (a defaulted object of zeros would say "no scenes found" while the first run is going)."""

    scenes: Annotated[int, Field(ge=0, description="Scenes (shots) found in the video.")]
    candidates: Annotated[int, Field(ge=0, description="Scenes long enough to judge (minSceneSeconds).")]
    faces: Annotated[int, Field(ge=0, description="Judged scenes in which a face was found.")]
    kept: Annotated[int, Field(ge=0, description="Images in the dataset.")]
    min_frames: Annotated[int, Field(ge=0, description="The least the run accepted.")]
    dropped: Annotated[DroppedScenes, Field(description="Scenes left out, by reason.")]
    people_found: Annotated[
        int, Field(ge=0, description="People told apart by their faces (faceFilter).")
    ] = 0
    people: Annotated[
        list[Person],
        Field(
            max_length=MAX_LISTED_PEOPLE,
            description="The people found, most prominent screen time first (the first "
            f"{MAX_LISTED_PEOPLE}).",
        ),
    ] = []
    subject: Annotated[
        SubjectSummary | None, Field(description="Who the dataset shows; unset without faceFilter.")
    ] = None
    contact_sheet_uri: Annotated[
        str | None,
        Field(
            description="When the run stopped at the subject (SubjectAmbiguous, SubjectNotFound): a "
            "JPEG with one face of each person found, numbered as in people."
        ),
    ] = None
    clips: Annotated[
        ClipsSummary | None,
        Field(description="The clips cut for a video LoRA (docs/lora-datasets.md#clips); unset for stills."),
    ] = None


class DatasetImage(ApiModel):
    uri: str
    time: Annotated[float, Field(ge=0, description="Seconds into the source.")]
    scene: Annotated[int, Field(ge=0)]
    width: int
    height: int
    sharpness: float
    face: bool
    caption: str = ""


class Scene(ApiModel):
    start: Annotated[float, Field(ge=0, description="Seconds into the source.")]
    end: Annotated[float, Field(ge=0)]


class Captioning(ApiModel):
    """Who wrote the captions."""

    mode: Literal["template", "auto"] = "template"
    provider: str = ""
    model: str = ""
    placeholder: bool = Field(default=False, description="True when the offline provider wrote them.")
    cost_usd: float = Field(default=0.0, ge=0, description="What the provider reported charging (auto).")


class DatasetReport(ApiModel):
    """What the dataset stage found and chose (the run result's `dataset`)."""

    frames: int
    scenes: list[Scene]
    images: list[DatasetImage]
    archive: Artifact | None = None
    contact_sheet: Artifact | None = None
    summary: DatasetSummary | None = None
    captioning: Captioning | None = None
