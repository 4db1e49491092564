"""The base image made from Debian packages, where no registry serves the Dockerfiles' base.

The Dockerfiles start `FROM python:3.11.14-slim-bookworm`. Without a registry, `make images` makes
an image of that name from Debian's own packages instead: `mmdebstrap --variant=minbase` of the
tag's Debian release (bookworm) with the Python of the tag's minor version (python3.11, its venv
module, `python` as a name for it), CA certificates, netbase and tzdata, and without manual pages,
documentation or translations. It is reproducible: the package list is fixed here,
SOURCE_DATE_EPOCH pins every timestamp, and the image (one uncompressed layer, a config written
here) is an OCI archive whose digest depends only on the packages' bytes; the packages' versions
are recorded beside it. Debian's Python is the tag's minor version but its own patch release
(bookworm: 3.11.2), which is all the images rely on (the venv's lib/python3.11).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

# 2025-01-01T00:00:00Z: every file time in the base, and its created time.
SOURCE_DATE_EPOCH = 1735689600
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# What python:*-slim has that the images use, from Debian (the Python ones per minor version).
PACKAGES = ("ca-certificates", "netbase", "tzdata")
PYTHON_PACKAGES = ("python{minor}", "python{minor}-venv", "python-is-python3")
# Not shipped: manual pages, documentation (but the copyright files), translations.
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
)
ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")
# The Debian releases a python:*-slim-<release> tag may name, and the Python minor each ships.
DEBIAN_PYTHON = {"bookworm": "3.11", "trixie": "3.13"}


class BaseError(Exception):
    """A one-line reason the base cannot be made."""


@dataclass(frozen=True)
class Base:
    image: str  # the name the Dockerfiles use, fully qualified: docker.io/library/python:…
    minor: str  # the tag's Python minor version, "3.11"
    suite: str  # the tag's Debian release, "bookworm"

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(p.format(minor=self.minor) for p in PYTHON_PACKAGES) + PACKAGES


def from_images(dockerfiles: list[str]) -> str:
    """The one base image every Dockerfile's stages start from."""
    bases = set()
    for text in dockerfiles:
        for line in text.splitlines():
            words = line.split()
            if words and words[0].upper() == "FROM":
                image = next(w for w in words[1:] if not w.startswith("--"))
                bases.add(image)
    stages = {m for text in dockerfiles for m in re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", text)}
    bases -= stages
    if len(bases) != 1:
        raise BaseError(f"the Dockerfiles' FROM lines name {sorted(bases)}: one base image is expected")
    return bases.pop()


def qualified(image: str) -> str:
    """docker's short-name rule: `python:tag` is docker.io/library/python:tag."""
    first = image.split("/", 1)[0]
    if "/" not in image:
        return f"docker.io/library/{image}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{image}"
    return image


def parse_base(image: str) -> Base:
    """The Python minor version and Debian release a `python:X.Y.Z-slim-<release>` tag names."""
    match = re.fullmatch(r"(?:docker\.io/library/)?python:(\d+\.\d+)(?:\.\d+)?-slim-([a-z]+)", image)
    if match is None:
        raise BaseError(
            f"FROM {image}: only a python:X.Y[.Z]-slim-<debian release> base can be made from Debian "
            "packages; build with a registry (IMAGE_BASE=pull)"
        )
    minor, suite = match.groups()
    if DEBIAN_PYTHON.get(suite) != minor:
        raise BaseError(
            f"FROM {image}: Debian {suite} ships Python {DEBIAN_PYTHON.get(suite, 'unknown')}, not "
            f"{minor}; build with a registry (IMAGE_BASE=pull) or use a {suite} tag of that minor"
        )
    return Base(qualified(image), minor, suite)


def mmdebstrap_command(base: Base, output: Path) -> list[str]:
    sources = [
        f"deb {MIRROR} {base.suite} main",
        f"deb {MIRROR} {base.suite}-updates main",
        f"deb {SECURITY_MIRROR} {base.suite}-security main",
    ]
    return [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--format=tar",
        "--skip=output/dev",  # no device nodes: the runtime makes /dev
        "--include=" + ",".join(base.packages),
        *(f"--dpkgopt={option}" for option in DPKG_EXCLUDES),
        base.suite,
        str(output),
        *sources,
    ]


def recipe_key(base: Base) -> str:
    """What the base is made from; a change makes it anew."""
    recipe = {
        "image": base.image,
        "packages": base.packages,
        "excludes": DPKG_EXCLUDES,
        "epoch": SOURCE_DATE_EPOCH,
        "mirrors": [MIRROR, SECURITY_MIRROR],
        "env": ENV,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def installed_versions(rootfs_tar: Path) -> dict[str, str]:
    """Package -> version, from the root file system's dpkg status."""
    with tarfile.open(rootfs_tar) as tar:
        member = tar.extractfile("./var/lib/dpkg/status")
        assert member is not None
        status = member.read().decode()
    versions = {}
    for stanza in status.split("\n\n"):
        fields = dict(re.findall(r"(?m)^([A-Za-z-]+): (.*)$", stanza))
        if "Package" in fields and "installed" in fields.get("Status", ""):
            versions[fields["Package"]] = fields["Version"]
    return versions


def _blob(data: bytes) -> tuple[str, int]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), len(data)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), SOURCE_DATE_EPOCH, 0o644
    tar.addfile(info, io.BytesIO(data))


def write_oci_archive(base: Base, rootfs_tar: Path, output: Path, versions: dict[str, str]) -> str:
    """An OCI archive of one image: the root file system as its only layer. Returns the image id
    (the config's digest), which depends only on the layer's bytes and this recipe."""
    digest = hashlib.sha256()
    with rootfs_tar.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    layer = "sha256:" + digest.hexdigest()
    layer_size = rootfs_tar.stat().st_size
    created = "2025-01-01T00:00:00Z"
    assert SOURCE_DATE_EPOCH == 1735689600, "created above is SOURCE_DATE_EPOCH"
    python = versions.get(f"python{base.minor}", "?")
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {
                "Env": list(ENV),
                "Cmd": ["python3"],
                "Labels": {
                    "org.opencontainers.image.description": (
                        f"Debian {base.suite} minbase with Python {python} from Debian packages, standing "
                        f"in for {base.image} (contentgen scripts/image_base.py)"
                    ),
                },
            },
            "rootfs": {"type": "layers", "diff_ids": [layer]},
            "history": [
                {
                    "created": created,
                    "created_by": f"mmdebstrap --variant=minbase {base.suite} {' '.join(base.packages)}",
                }
            ],
        },
        sort_keys=True,
    ).encode()
    config_digest, config_size = _blob(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_size,
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}
            ],
        },
        sort_keys=True,
    ).encode()
    manifest_digest, manifest_size = _blob(manifest)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest,
                    "size": manifest_size,
                    "annotations": {"org.opencontainers.image.ref.name": base.image.rsplit(":", 1)[1]},
                }
            ],
        },
        sort_keys=True,
    ).encode()
    partial = output.with_suffix(".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(tar, "index.json", index)
        for blob_digest, data in ((config_digest, config), (manifest_digest, manifest)):
            _add(tar, f"blobs/sha256/{blob_digest.removeprefix('sha256:')}", data)
        info = tarfile.TarInfo(f"blobs/sha256/{layer.removeprefix('sha256:')}")
        info.size, info.mtime, info.mode = layer_size, SOURCE_DATE_EPOCH, 0o644
        with rootfs_tar.open("rb") as f:
            tar.addfile(info, f)
    partial.rename(output)
    return config_digest.removeprefix("sha256:")
