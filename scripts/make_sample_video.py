"""Write examples/media/sample.mp4, the video `make demo` trains its example LoRA from.

About 25 seconds of 720p H.264 with an AAC tone track: eight shots from the images bundled
in scikit-image (public domain / CC0), four of them showing a face (the astronaut, Eileen
Collins, in four framings), one too short to count (0.6 s) and one that starts out of focus.
The encoder runs single-threaded, so the file comes out the same byte for byte on every
machine with the same PyAV. Run from the repository root:

    .venv/bin/python scripts/make_sample_video.py [OUTPUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `scripts` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.synthetic_video import SceneSpec, SyntheticVideo, face_scene, other_scene, write_video

OUTPUT = Path(__file__).resolve().parent.parent / "examples" / "media" / "sample.mp4"
MAX_BYTES = 2_000_000

PLAN: list[SceneSpec] = [
    face_scene(4.0, variant=0, blurred_until=0.4),
    other_scene(3.0, "coffee", variant=1),
    face_scene(3.5, variant=1),
    other_scene(0.6, "rocket", variant=2),
    other_scene(3.0, "chelsea", variant=3),
    face_scene(4.0, variant=2),
    other_scene(3.0, "hubble_deep_field", variant=4),
    face_scene(3.5, variant=3),
]


def make(output: Path = OUTPUT) -> SyntheticVideo:
    video = write_video(
        output,
        PLAN,
        width=1280,
        height=720,
        fps=24,
        noise=2.0,
        audio=True,
        crf=25,
        preset="medium",
        threads=1,
    )
    size = output.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{output} is {size} bytes, over the {MAX_BYTES} the repository allows")
    return video


def main() -> None:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT
    video = make(output)
    faces = [i for i, face in enumerate(video.face_scenes) if face]
    print(
        f"{output}: {video.duration:.1f} s, {output.stat().st_size} bytes, cuts at "
        f"{', '.join(f'{cut:.2f}' for cut in video.cuts)} s, faces in scenes {faces}"
    )


if __name__ == "__main__":
    main()
