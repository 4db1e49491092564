"""Build, cache and push the images: `make images`, `make push-images`.

    python scripts/images.py build [NAME ...] [--dry-run]  # the three images (or those named)
    python scripts/images.py archive NAME                  # print the path of NAME's archive
    python scripts/images.py sizes                         # each image's size and its layers
    python scripts/images.py push [--dry-run]

The engine is docker or podman when one answers `ENGINE info`, else Debian's buildah (installed
with apt-get when missing and this is root); CONTAINER_ENGINE (docker, podman, buildah) picks one.
Each image is tagged REGISTRY/NAME:TAG (IMAGE_REGISTRY, default ghcr.io/contentgen; IMAGE_TAG,
default the package version), built from the repository (IMAGE_CONTEXT: a copy of it) and saved
as a docker-archive tar under .images/ (IMAGE_CACHE_DIR), listed in .images/index.json with its
content key: the Dockerfile, the build context's files (as
.dockerignore leaves them) and the base image's id. An image whose key is unchanged is not built
again. The base (FROM python:…-slim-bookworm) is the engine's copy when it has one; else it is
pulled (IMAGE_BASE=pull; the default with docker or podman) or made from Debian packages
(IMAGE_BASE=debian; the default with buildah: scripts/image_base.py). A buildah build reaches the
package index as this machine does: the host's CA bundle and pip settings are mounted read-only
into its RUN steps, never copied into an image. --dry-run prints the build commands.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
try:
    from scripts import image_base, image_context
except ModuleNotFoundError:  # `python scripts/images.py`: the repository root is not on the path
    sys.path.insert(0, str(ROOT))
    from scripts import image_base, image_context
ENGINES = ("docker", "podman")
# name -> Dockerfile, as the chart's image.repository and worker.image.repository name them
IMAGES = {
    "contentgen": "Dockerfile",
    "contentgen-worker": "worker-image/Dockerfile",
    # the worker for provider cluster's Jobs (torch, faster-whisper and the CUDA 12 libraries)
    "contentgen-worker-gpu": "worker-image/gpu.Dockerfile",
}
DEFAULT_REGISTRY = "ghcr.io/contentgen"
INDEX_VERSION = 1
# The pip settings a build may take from the host (a mirror, its CA): nothing that names a path
# of the host other than the CA bundle, which is mounted at the same path.
PIP_KEYS = ("index-url", "extra-index-url", "trusted-host", "cert", "timeout", "default-timeout", "retries")
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt",)


class EngineMissing(Exception):
    pass


class BuildFailed(Exception):
    pass


def version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def tags(registry: str, tag: str) -> dict[str, str]:
    return {name: f"{registry.rstrip('/')}/{name}:{tag}" for name in IMAGES}


def cache_dir() -> Path:
    return Path(os.environ.get("IMAGE_CACHE_DIR") or ROOT / ".images")


def context_dir() -> Path:
    """Where the Dockerfiles and the build context are read: the repository, or a copy of it
    (IMAGE_CONTEXT, as the tests build from, so that edits made meanwhile change nothing)."""
    return Path(os.environ.get("IMAGE_CONTEXT") or ROOT)


def snapshot_context(destination: Path) -> Path:
    """A copy of what a build reads (the context as .dockerignore leaves it, the Dockerfiles and
    .dockerignore): the same keys as the repository, frozen."""
    root = ROOT
    wanted = [path for path, _, _ in image_context.context_manifest(root)]
    wanted += [*IMAGES.values(), ".dockerignore"]
    for rel in wanted:
        target = destination / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    return destination


# --- pure decisions ------------------------------------------------------------------------------


def pip_settings(config_list: str) -> dict[str, str]:
    """The host's pip settings a build takes, from `pip config list` (its environment's PIP_*
    lines, `:env:.key=…`, win over the files' `global.key=…`)."""
    found: dict[str, tuple[int, str]] = {}
    for line in config_list.splitlines():
        match = re.fullmatch(r"(:env:|global|install|download)\.([a-z-]+)='(.*)'", line.strip())
        if match is None or match.group(2) not in PIP_KEYS:
            continue
        rank = 2 if match.group(1) == ":env:" else 1
        key = match.group(2)
        if key not in found or found[key][0] <= rank:
            found[key] = (rank, match.group(3))
    return {key: value for key, (_, value) in sorted(found.items())}


def pip_conf(settings: dict[str, str]) -> str:
    return "[global]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items())


def egress_mounts(
    settings: dict[str, str], pip_conf_path: Path, exists: object = os.path.exists
) -> list[str]:
    """`--volume` arguments: the CA bundles (the pip `cert` and the system one) at their own paths
    and the pip configuration as /etc/pip.conf, all read-only."""
    paths = [p for p in dict.fromkeys([settings.get("cert", ""), *CA_BUNDLES]) if p]
    mounts = [f"{p}:{p}:ro" for p in paths if callable(exists) and exists(p)]
    return [*mounts, f"{pip_conf_path}:/etc/pip.conf:ro"]


def build_command(
    engine: str, dockerfile: str, image: str, volumes: Sequence[str] = (), context: str = "."
) -> list[str]:
    name = Path(engine).name
    if name == "buildah":
        # runc (crun refuses hybrid cgroups), the host's network (the build's pip), the base from
        # local storage only, the layers kept (an edit of the project reuses the installed set)
        command = [engine, "bud", "--pull=never", "--runtime", "runc", "--network", "host", "--layers"]
        for volume in volumes:
            command += ["--volume", volume]
        return [*command, "--file", dockerfile, "--tag", image, context]
    if name == "podman":
        extra = [arg for volume in volumes for arg in ("--volume", volume)]
        return [engine, "build", *extra, "--file", dockerfile, "--tag", image, context]
    return [engine, "build", "--file", dockerfile, "--tag", image, context]


def build_commands(engine: str, registry: str, tag: str) -> list[list[str]]:
    return [build_command(engine, IMAGES[name], image) for name, image in tags(registry, tag).items()]


def push_commands(engine: str, registry: str, tag: str) -> list[list[str]]:
    return [[engine, "push", image] for image in tags(registry, tag).values()]


def save_command(engine: str, image: str, archive: Path) -> list[str]:
    if Path(engine).name == "buildah":
        return [engine, "push", "--quiet", image, f"docker-archive:{archive}:{image}"]
    return [engine, "save", "--output", str(archive), image]


def load_command(engine: str, archive: Path) -> list[str]:
    if Path(engine).name == "buildah":
        return [engine, "pull", "--quiet", f"docker-archive:{archive}"]
    return [engine, "load", "--input", str(archive)]


def base_source(wanted: str | None, engine: str, present: bool) -> str:
    """Where the base image comes from: `local` (the engine has it), `pull` or `debian`."""
    if wanted not in (None, "", "pull", "debian"):
        raise EngineMissing(
            f"IMAGE_BASE={wanted}: use pull (a registry) or debian (made from Debian packages)"
        )
    if present and not wanted:
        return "local"
    if wanted:
        return wanted
    return "debian" if Path(engine).name == "buildah" else "pull"


@dataclass(frozen=True)
class Layer:
    size: int
    created_by: str


def archive_layers(archive: Path) -> tuple[str, list[Layer]]:
    """(the image id, its layers with the step that made each) from a docker-archive tar."""
    with tarfile.open(archive) as tar:

        def read(name: str) -> bytes:
            member = tar.extractfile(name)
            assert member is not None, name
            return member.read()

        (manifest,) = json.loads(read("manifest.json"))
        config_bytes = read(manifest["Config"])
        config = json.loads(config_bytes)
        sizes = [tar.getmember(path).size for path in manifest["Layers"]]
    steps = [h.get("created_by", "") for h in config.get("history", []) if not h.get("empty_layer")]
    if len(steps) != len(sizes):
        steps = [""] * len(sizes)
    image_id = str(manifest["Config"]).removesuffix(".json").rsplit("/", 1)[-1]
    if not re.fullmatch(r"[0-9a-f]{64}", image_id):
        import hashlib

        image_id = hashlib.sha256(config_bytes).hexdigest()
    return image_id, [Layer(size, step) for size, step in zip(sizes, steps, strict=True)]


def describe_step(created_by: str) -> str:
    """A layer's step, short: `RUN pip install …`, `COPY /opt/contentgen`."""
    text = re.sub(r"^/bin/sh -c #\(nop\)\s*", "", created_by.strip())
    text = re.sub(r"^/bin/sh -c ", "RUN ", text)
    text = re.sub(r"\|\d+ ", "", text)
    text = re.sub(r"\b(?:dir|file|multi):[0-9a-f]{64} in ", "", text)  # buildah's content hash
    return " ".join(text.split())[:110]


def human(size: int) -> str:
    """Bytes in MB (10^6) as docker and buildah print sizes, or GB from 10^9."""
    if size >= 10**9:
        return f"{size / 10**9:.2f} GB"
    if size >= 10**6:
        return f"{size / 10**6:.1f} MB"
    return f"{size / 10**3:.1f} kB"


# --- the index -----------------------------------------------------------------------------------


def read_index(directory: Path) -> dict[str, object]:
    path = directory / "index.json"
    if not path.exists():
        return {"version": INDEX_VERSION, "images": {}}
    index: dict[str, object] = json.loads(path.read_text())
    if index.get("version") != INDEX_VERSION:
        return {"version": INDEX_VERSION, "images": {}}
    return index


def write_index(directory: Path, index: dict[str, object]) -> None:
    partial = directory / "index.json.partial"
    partial.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    partial.rename(directory / "index.json")


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """One build at a time per cache (two test sessions may ask at once)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def current(entry: dict[str, object] | None, key: str, directory: Path) -> bool:
    """Whether the index entry is this key's image and its archive is still there, whole."""
    if not entry or entry.get("key") != key:
        return False
    archive = directory / str(entry.get("archive", ""))
    return archive.is_file() and archive.stat().st_size == entry.get("size")


# --- engines -------------------------------------------------------------------------------------


def _run(command: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - a container engine and its arguments
        list(command),
        capture_output=True,
        text=True,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )


def _answers(path: str, *args: str) -> tuple[bool, str]:
    try:
        done = _run([path, *args], timeout=60)
    except subprocess.TimeoutExpired:
        return False, "no answer in 60 s"
    reason = (done.stderr.strip() or done.stdout.strip()).splitlines()
    return done.returncode == 0, reason[-1] if reason else "no answer"


def install_buildah() -> str | None:
    """Debian's buildah, runc and mmdebstrap, with apt-get when this is root on Debian."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    print(
        "make images: no docker or podman answers: installing Debian's buildah, runc, mmdebstrap", flush=True
    )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "buildah", "runc", "mmdebstrap"],
    ):
        if _run(command, env=env).returncode != 0:
            return None
    return shutil.which("buildah")


def find_engine(wanted: str | None = None, install: bool = False) -> str:
    """The engine to use: `wanted`, else docker or podman if one answers `ENGINE info` (a docker
    CLI without a daemon does not), else buildah (installed from Debian when `install`)."""
    tried = []
    for name in [wanted] if wanted else [*ENGINES, "buildah"]:
        path = shutil.which(name)
        if path is None:
            tried.append(f"{name}: not installed")
            continue
        ok, reason = _answers(path, "info")
        if ok:
            return path
        tried.append(f"{name}: installed but not working ({reason})")
    if install and not wanted:
        path = install_buildah()
        if path is not None and _answers(path, "info")[0]:
            return path
    raise EngineMissing(
        "no working container engine (" + "; ".join(tried) + "): install docker or podman and start "
        "it, or Debian's buildah (apt-get install buildah runc mmdebstrap), or pick one with "
        "CONTAINER_ENGINE=podman"
    )


def image_id(engine: str, image: str) -> str | None:
    """The engine's id of `image` (its config digest), None when it has no such image."""
    if Path(engine).name == "buildah":
        done = _run([engine, "inspect", "--type", "image", "--format", "{{.FromImageID}}", image])
    else:
        done = _run([engine, "image", "inspect", "--format", "{{.Id}}", image])
    text = done.stdout.strip().removeprefix("sha256:")
    return text if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{64}", text) else None


def _check(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise BuildFailed(f"{what} failed: {lines[-1] if lines else 'no output'}")


def ensure_base(engine: str, directory: Path, wanted: str | None, log: object = print) -> dict[str, object]:
    """The base image in the engine's storage: what it is, where from, its id."""
    texts = [(context_dir() / f).read_text() for f in IMAGES.values()]
    reference = image_base.from_images(texts)
    name = image_base.qualified(reference)
    record_path = directory / "base.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    present = image_id(engine, name)
    ours = present is not None and record.get("digest") == f"sha256:{present}"
    source = base_source(wanted, engine, present is not None)
    if source == "local" and not ours:
        return {"image": name, "source": "local", "digest": f"sha256:{present}"}
    if source == "pull":
        if present is None or wanted == "pull":
            _check(_run([engine, "pull", name]), f"{Path(engine).name} pull {name}")
        found = image_id(engine, name)
        assert found is not None
        return {"image": name, "source": "registry", "digest": f"sha256:{found}"}
    if source == "debian" and not Path(engine).name == "buildah":
        raise EngineMissing("IMAGE_BASE=debian is made with buildah: CONTAINER_ENGINE=buildah")
    base = image_base.parse_base(reference)
    recipe = image_base.recipe_key(base)
    if ours and record.get("recipe") == recipe:
        return record
    archive = directory / "base-debian.tar"
    if record.get("recipe") != recipe or not archive.is_file():
        if shutil.which("mmdebstrap") is None:
            raise EngineMissing("mmdebstrap is missing: apt-get install mmdebstrap (it makes the base image)")
        with tempfile.TemporaryDirectory(dir=directory) as scratch:
            rootfs = Path(scratch) / "rootfs.tar"
            command = image_base.mmdebstrap_command(base, rootfs)
            if callable(log):
                log(f"+ SOURCE_DATE_EPOCH={image_base.SOURCE_DATE_EPOCH} {shlex.join(command)}")
            env = {**os.environ, "SOURCE_DATE_EPOCH": str(image_base.SOURCE_DATE_EPOCH)}
            _check(_run(command, env=env), "mmdebstrap (the Debian base image)")
            versions = image_base.installed_versions(rootfs)
            digest = image_base.write_oci_archive(base, rootfs, archive, versions)
        record = {
            "image": name,
            "source": "debian",
            "recipe": recipe,
            "digest": f"sha256:{digest}",
            "python": versions.get(f"python{base.minor}", ""),
            "suite": base.suite,
            "packages": versions,
        }
    _check(_run([engine, "pull", "--quiet", f"oci-archive:{archive}"]), "buildah pull (the Debian base)")
    digest = str(record["digest"]).removeprefix("sha256:")
    _check(_run([engine, "tag", digest, name]), f"buildah tag {name}")
    record_path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


@dataclass
class Egress:
    volumes: list[str]
    directory: Path


def egress(directory: Path) -> Egress:
    """The mounts that let a build's pip reach the index as this machine's does."""
    done = _run([sys.executable, "-m", "pip", "config", "list"])
    settings = pip_settings(done.stdout if done.returncode == 0 else "")
    if "cert" not in settings:
        for variable in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            if os.environ.get(variable) and os.path.exists(os.environ[variable]):
                settings["cert"] = os.environ[variable]
                break
    conf = directory / "build" / "pip.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(pip_conf(settings))
    return Egress(egress_mounts(settings, conf), conf.parent)


def key_of(name: str, image: str, base_digest: str, manifest: list[tuple[str, bool, str]]) -> str:
    return image_context.cache_key((context_dir() / IMAGES[name]).read_bytes(), manifest, base_digest, image)


def build(
    names: Sequence[str],
    registry: str,
    tag: str,
    engine: str,
    wanted_base: str | None = None,
    log: object = print,
) -> dict[str, object]:
    """Build what is not current, save each as an archive, update the index; returns the index."""
    say = log if callable(log) else (lambda _: None)
    directory = cache_dir()
    with locked(directory):
        base = ensure_base(engine, directory, wanted_base, say)
        index = read_index(directory)
        entries: dict[str, dict[str, object]] = index["images"]  # type: ignore[assignment]
        manifest = image_context.context_manifest(context_dir())
        all_tags = tags(registry, tag)
        mounts: Egress | None = None
        for name in names:
            image = all_tags[name]
            key = key_of(name, image, str(base["digest"]), manifest)
            entry = entries.get(name)
            if entry is not None and current(entry, key, directory):
                digest = str(entry["digest"]).removeprefix("sha256:")
                present = image_id(engine, image)
                if present is None:  # the engine's storage was emptied: the archive has it
                    load = load_command(engine, directory / str(entry["archive"]))
                    _check(_run(load), shlex.join(load))
                    present = image_id(engine, image)
                if present == digest:
                    say(f"= {image}: current ({entry['archive']}, key {key[:12]})")
                    continue
            if mounts is None:
                mounts = egress(directory)
            command = build_command(engine, IMAGES[name], image, mounts.volumes if mounts else ())
            say("+ " + shlex.join(command))
            started = time.monotonic()
            done = subprocess.run(command, cwd=context_dir(), check=False)  # noqa: S603 - the engine's build
            if done.returncode != 0:
                raise BuildFailed(f"`{shlex.join(command)}` failed (its output is above)")
            archive = directory / f"{name}.tar"
            partial = directory / f"{name}.tar.partial"
            partial.unlink(missing_ok=True)
            save = save_command(engine, image, partial)
            say("+ " + shlex.join(save))
            _check(_run(save), shlex.join(save))
            partial.rename(archive)
            seconds = round(time.monotonic() - started, 1)
            digest, layers = archive_layers(archive)
            entries[name] = {
                "image": image,
                "repository": image.rsplit(":", 1)[0],
                "tag": tag,
                "dockerfile": IMAGES[name],
                "digest": f"sha256:{digest}",
                "key": key,
                "archive": archive.name,
                "format": "docker-archive",
                "size": archive.stat().st_size,
                "layers": [{"size": layer.size, "step": describe_step(layer.created_by)} for layer in layers],
                "seconds": seconds,
            }
            index["base"] = base_summary(base)
            write_index(directory, index)
            say(f"= {image}: built in {seconds} s, {human(archive.stat().st_size)} ({archive})")
        index["base"] = base_summary(base)
        write_index(directory, index)
        return index


def base_summary(base: dict[str, object]) -> dict[str, object]:
    return {k: base[k] for k in ("image", "source", "digest", "python", "suite") if k in base}


def archive(name: str) -> Path:
    """The archive of image `name` (contentgen, contentgen-worker, contentgen-worker-gpu) as the
    last `make images` left it. Raises LookupError when there is none or it is stale."""
    if name not in IMAGES:
        raise LookupError(f"no image {name!r}: one of {', '.join(IMAGES)}")
    directory = cache_dir()
    index = read_index(directory)
    entry = index["images"].get(name)  # type: ignore[attr-defined]
    base = index.get("base") or {}
    if not entry:
        raise LookupError(f"{name} is not built: run `make images`")
    manifest = image_context.context_manifest(context_dir())
    key = key_of(name, entry["image"], base.get("digest", ""), manifest)  # type: ignore[union-attr]
    if not current(entry, key, directory):
        raise LookupError(f"{name}'s archive is older than the sources: run `make images`")
    return directory / str(entry["archive"])


def run_in_image(
    engine: str, image: str, argv: Sequence[str], user: str = "10001:10001", timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in a container of `image` (buildah, no network) as `user`, with the image's
    environment and working directory; the container is removed after."""
    made = _run([engine, "from", "--pull=never", "--quiet", image])
    _check(made, f"buildah from {image}")
    container = made.stdout.strip().splitlines()[-1]
    try:
        command = [engine, "run", "--runtime", "runc", "--network", "none", "--user", user, container]
        return _run([*command, "--", *argv], timeout=timeout)
    finally:
        _run([engine, "rm", container])


def image_config(engine: str, image: str) -> dict[str, object]:
    """The image's OCI config (User, Env, Entrypoint, Cmd, WorkingDir)."""
    done = _run([engine, "inspect", "--type", "image", image])
    _check(done, f"buildah inspect {image}")
    config: dict[str, object] = json.loads(done.stdout)["OCIv1"]["config"]
    return config


def sizes_report(index: dict[str, object]) -> str:
    lines = []
    base = index.get("base") or {}
    if base:
        lines.append(f"base {base.get('image')} ({base.get('source')}, Python {base.get('python', '?')})")  # type: ignore[union-attr]
    for entry in index["images"].values():  # type: ignore[attr-defined]
        lines.append(f"{entry['image']}: {human(entry['size'])}")
        for layer in entry["layers"]:
            lines.append(f"  {human(layer['size']):>10}  {layer['step']}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    command, *rest = argv or [""]
    dry = "--dry-run" in rest
    names = [a for a in rest if a != "--dry-run"]
    if command not in ("build", "push", "archive", "sizes") or (command == "archive" and len(names) != 1):
        print(__doc__, file=sys.stderr)
        return 2
    if command == "archive":
        try:
            print(archive(names[0]))
        except LookupError as exc:
            print(f"images.py archive: {exc}", file=sys.stderr)
            return 1
        return 0
    if command == "sizes":
        print(sizes_report(read_index(cache_dir())))
        return 0
    unknown = [n for n in names if n not in IMAGES]
    if unknown or (names and command != "build"):
        print(
            f"make images: no image {unknown or names}: the images are {', '.join(IMAGES)}", file=sys.stderr
        )
        return 2
    registry = os.environ.get("IMAGE_REGISTRY") or DEFAULT_REGISTRY
    tag = os.environ.get("IMAGE_TAG") or version()
    wanted = os.environ.get("CONTAINER_ENGINE") or None
    try:
        engine = (wanted or "docker") if dry else find_engine(wanted, install=command == "build")
        if dry:
            for line in (build_commands if command == "build" else push_commands)(engine, registry, tag):
                print("+ " + " ".join(line))
            return 0
        if command == "push":
            for line in push_commands(engine, registry, tag):
                print("+ " + " ".join(line), flush=True)
                if subprocess.run(line, cwd=ROOT, check=False).returncode != 0:  # noqa: S603
                    raise BuildFailed(f"`{' '.join(line)}` failed (its output is above)")
            return 0
        build(names or list(IMAGES), registry, tag, engine, os.environ.get("IMAGE_BASE") or None)
    except (EngineMissing, BuildFailed, image_base.BaseError) as exc:
        print(f"make images: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
