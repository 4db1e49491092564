"""Write a folder of pictures to score against the demo LoRA's subject (`contentgen assets
evaluate demo-avatar --pictures DIR`, docs/likeness.md#scoring-your-own-pictures), made from
photographs that packages in the virtualenv ship, as pictures made elsewhere would arrive:

- astronaut-mirrored.png: scikit-image's astronaut photograph (Eileen Collins, public domain),
  the demo's subject, mirrored and framed closer. The demo's dataset was cut from this very
  photograph (examples/media/sample.mp4), so this is a copy of a training image;
- astronaut-small.jpg: the same photograph as a 160-pixel thumbnail, JPEG;
- astronaut-soft.webp: the same photograph out of focus, WebP;
- grace-hopper.jpg: another person, matplotlib's photograph of Grace Hopper;
- coffee.png: scikit-image's cup of coffee, no face.

The files are the same on every run with the same packages. Run from the repository root:

    .venv/bin/python scripts/likeness_pictures.py DIR
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import cv2
import numpy as np
import skimage.data

GRACE_HOPPER = ("matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg")


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])


def pictures() -> dict[str, tuple[np.ndarray, list[int]]]:
    """Each file's name, its picture (BGR) and the encoder's parameters."""
    astronaut = _bgr(skimage.data.astronaut())  # 512 × 512, her face in the upper middle
    mirrored = np.ascontiguousarray(astronaut[0:384, 64:448][:, ::-1])
    small = cv2.resize(astronaut, (160, 160), interpolation=cv2.INTER_AREA)
    soft = cv2.GaussianBlur(astronaut, (0, 0), 3.0)
    package, member = GRACE_HOPPER
    hopper = cv2.imread(str(importlib.metadata.distribution(package).locate_file(member)))
    if hopper is None:
        raise SystemExit(f"{member} is missing from {package}; `make install` installs it")
    return {
        "astronaut-mirrored.png": (mirrored, []),
        "astronaut-small.jpg": (small, [cv2.IMWRITE_JPEG_QUALITY, 80]),
        "astronaut-soft.webp": (soft, [cv2.IMWRITE_WEBP_QUALITY, 85]),
        "grace-hopper.jpg": (hopper, [cv2.IMWRITE_JPEG_QUALITY, 90]),
        "coffee.png": (_bgr(skimage.data.coffee()), []),
    }


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (image, params) in pictures().items():
        ok, data = cv2.imencode(Path(name).suffix, image, params)
        if not ok:
            raise SystemExit(f"OpenCV could not encode {name}")
        path = folder / name
        path.write_bytes(data.tobytes())
        written.append(path)
    return written


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    written = write(Path(sys.argv[1]))
    print(f"{len(written)} pictures in {sys.argv[1]}: {', '.join(p.name for p in written)}")


if __name__ == "__main__":
    main()
