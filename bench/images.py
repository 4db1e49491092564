"""How long the images take to build, cold and warm, and how big they are (`make bench-images`).

    python -m bench.images [--cold [--cold-images NAME ...]] [--base] [--docs]

warm: `make images` with the cache as it is (every image current: no build at all), from a copy
of the sources taken at the start. --cold: the
same build into an empty cache and an empty buildah storage of its own (a temporary
CONTAINERS_STORAGE_CONF and IMAGE_CACHE_DIR), so every layer is built and every pinned package
downloaded again; the Debian base comes from its archive (made once, timed apart as `base`), as
on any machine where it was made before. Then the sizes of each image and of its layers, from
the archives. --docs writes the table into docs/performance.md's images section.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from scripts import images

ROOT = Path(__file__).resolve().parent.parent
PERFORMANCE = ROOT / "docs" / "performance.md"
START, END = "<!-- images:start -->", "<!-- images:end -->"
STORAGE_CONF = """[storage]
driver = "overlay"
graphroot = "{root}/storage"
runroot = "{root}/run"
"""


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def timed_build(engine: str, names: list[str]) -> tuple[float, dict[str, object], list[str]]:
    said: list[str] = []

    def log(line: str) -> None:
        said.append(line)
        print(line, flush=True)

    started = time.monotonic()
    index = images.build(names, images.DEFAULT_REGISTRY, images.version(), engine, log=log)
    return time.monotonic() - started, index, said


def cold(engine: str, names: list[str]) -> dict[str, object]:
    """Every image built from nothing: a storage and a cache of their own, the base's archive
    copied in (its making is timed apart)."""
    warm_cache = images.cache_dir()
    scratch = Path(tempfile.mkdtemp(prefix="bench-images-", dir=warm_cache))
    try:
        (scratch / "storage.conf").write_text(STORAGE_CONF.format(root=scratch))
        cache = scratch / "cache"
        cache.mkdir()
        for name in ("base-debian.tar", "base.json"):
            if (warm_cache / name).exists():
                shutil.copy(warm_cache / name, cache / name)
        with environment(CONTAINERS_STORAGE_CONF=str(scratch / "storage.conf"), IMAGE_CACHE_DIR=str(cache)):
            seconds, index, said = timed_build(engine, names)
            per_image = {
                name: entry["seconds"]
                for name, entry in index["images"].items()  # type: ignore[attr-defined]
            }
            empty(engine)
        return {"seconds": round(seconds, 1), "per_image": per_image, "built": said}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def empty(engine: str) -> None:
    """Remove what the scratch storage holds, so its overlay mounts are gone before rmtree."""
    images._run([engine, "rm", "--all"])
    images._run([engine, "rmi", "--all", "--force"])


def base_seconds(engine: str) -> float | None:
    """The Debian base made anew (mmdebstrap and its archive), in a cache of its own."""
    if images.read_index(images.cache_dir()).get("base", {}).get("source") != "debian":  # type: ignore[union-attr]
        return None
    scratch = Path(tempfile.mkdtemp(prefix="bench-base-", dir=images.cache_dir()))
    try:
        (scratch / "storage.conf").write_text(STORAGE_CONF.format(root=scratch))
        with environment(CONTAINERS_STORAGE_CONF=str(scratch / "storage.conf")):
            started = time.monotonic()
            images.ensure_base(engine, scratch, "debian", log=print)
            seconds = time.monotonic() - started
            empty(engine)
        return round(seconds, 1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def largest_parts(archive: Path, top: int = 6) -> list[tuple[str, int]]:
    """The biggest packages of the image's virtual environment (site-packages' top directories,
    their bytecode included), from its archive's layers."""
    sizes: dict[str, int] = {}
    marker = "/site-packages/"
    with tarfile.open(archive) as outer:
        (manifest,) = json.loads(outer.extractfile("manifest.json").read())  # type: ignore[union-attr]
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer), mode="r|") as inner:
                for member in inner:
                    if member.isfile() and marker in member.name:
                        package = member.name.split(marker, 1)[1].split("/", 1)[0]
                        package = re.sub(r"(-[0-9].*)?\.(dist|egg)-info$|\.libs$", "", package)
                        sizes[package] = sizes.get(package, 0) + member.size
    return sorted(sizes.items(), key=lambda item: -item[1])[:top]


def table(result: dict[str, object]) -> str:
    index = result["index"]
    lines = [
        "| image | size | cold build | layers (size: what made it) |",
        "|---|---|---|---|",
    ]
    cold_times = (result.get("cold") or {}).get("per_image", {})  # type: ignore[union-attr]
    for name, entry in index["images"].items():  # type: ignore[index]
        layers = "; ".join(
            f"{images.human(layer['size'])}: `{images.describe_step(layer['step'])[:60]}`"
            for layer in entry["layers"]
        )
        parts = ", ".join(f"{package} {images.human(size)}" for package, size in result["parts"][name])  # type: ignore[index]
        when = f"{cold_times[name]} s" if name in cold_times else "not measured"
        lines.append(
            f"| `{entry['image']}` | {images.human(entry['size'])} | {when} | {layers} (largest: {parts}) |"
        )
    cold_result = result.get("cold") or {}
    lines += [
        "",
        f"`make images` warm (every image current): {result['warm_seconds']} s. "
        + (f"Cold (empty layer cache and storage): {cold_result['seconds']} s. " if cold_result else "")  # type: ignore[index]
        + (f"The Debian base made anew: {result['base_seconds']} s. " if result.get("base_seconds") else "")
        + f"Base: `{index['base']['image']}` ({index['base']['source']}"  # type: ignore[index]
        + (f", Python {index['base'].get('python')}" if index["base"].get("python") else "")  # type: ignore[index,union-attr]
        + f"). Measured {result['when']} with {result['engine']} on {os.cpu_count()} CPUs, load average "
        f"{result['load_start']} at the start and {result['load_end']} at the end "
        f"(`python -m bench.images{' --cold' if cold_result else ''}`).",
    ]
    return "\n".join(lines)


def write_docs(text: str) -> None:
    doc = PERFORMANCE.read_text()
    if START not in doc:
        raise SystemExit(f"{PERFORMANCE} has no {START} … {END} section")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    PERFORMANCE.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.images", description=__doc__)
    parser.add_argument("--cold", action="store_true", help="also build everything from an empty cache")
    parser.add_argument(
        "--cold-images",
        nargs="+",
        choices=list(images.IMAGES),
        help="only these images cold (the GPU worker's cold build downloads and writes gigabytes)",
    )
    parser.add_argument("--base", action="store_true", help="also time making the Debian base anew")
    parser.add_argument("--docs", action="store_true", help="write the table into docs/performance.md")
    args = parser.parse_args(argv)
    engine = images.find_engine(os.environ.get("CONTAINER_ENGINE") or None, install=True)
    names = list(images.IMAGES)
    # the sources as they are now: an edit made while it runs must not turn warm into a rebuild
    snapshot = Path(tempfile.mkdtemp(prefix="bench-context-"))
    os.environ["IMAGE_CONTEXT"] = str(images.snapshot_context(snapshot))
    load_start = f"{os.getloadavg()[0]:.1f}"
    first, _, _ = timed_build(engine, names)  # makes the cache warm if it was not
    warm, index, said = timed_build(engine, names)
    assert not [line for line in said if line.startswith("+ ")], "a warm build built something"
    result: dict[str, object] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "engine": Path(engine).name,
        "first_seconds": round(first, 1),
        "warm_seconds": round(warm, 1),
        "index": index,
        "base_seconds": base_seconds(engine) if args.base else None,
        "cold": cold(engine, args.cold_images or names) if args.cold else None,
    }
    result["parts"] = {name: largest_parts(images.archive(name)) for name in names}
    result["load_start"], result["load_end"] = load_start, f"{os.getloadavg()[0]:.1f}"
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "images.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(snapshot, ignore_errors=True)
    text = table(result)
    print(text)
    if args.docs:
        write_docs(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
