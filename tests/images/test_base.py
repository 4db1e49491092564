"""The base image made from Debian packages (scripts/image_base.py): it stands in for the
Dockerfiles' FROM at the same Python minor version, and its archive is the same bytes for the same
packages."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from scripts import image_base, images
from scripts.image_base import BaseError, parse_base
from tests.conftest import ROOT


def dockerfiles() -> list[str]:
    return [(ROOT / path).read_text() for path in images.IMAGES.values()]


def test_the_dockerfiles_name_one_base_debian_can_stand_in_for() -> None:
    reference = image_base.from_images(dockerfiles())
    base = parse_base(reference)
    assert base.image == f"docker.io/library/{reference}"
    # the tag's minor version is the one Debian's release ships: python3.X from Debian is that minor
    assert (
        reference.startswith(f"python:{base.minor}.") and image_base.DEBIAN_PYTHON[base.suite] == base.minor
    )
    assert base.packages[:2] == (f"python{base.minor}", f"python{base.minor}-venv")


def test_a_base_debian_cannot_make_is_refused_in_one_line() -> None:
    with pytest.raises(BaseError, match=r"Debian bookworm ships Python 3\.11, not 3\.12"):
        parse_base("python:3.12.7-slim-bookworm")
    with pytest.raises(BaseError, match=r"only a python:X\.Y"):
        parse_base("python:3.11-alpine")
    with pytest.raises(BaseError, match="one base image is expected"):
        image_base.from_images(["FROM python:3.11.14-slim-bookworm AS build\n", "FROM debian:bookworm\n"])


def test_mmdebstrap_command_is_minbase_without_docs() -> None:
    command = image_base.mmdebstrap_command(parse_base("python:3.11.14-slim-bookworm"), Path("/o.tar"))
    assert command[:3] == ["mmdebstrap", "--mode=root", "--variant=minbase"]
    assert "--include=python3.11,python3.11-venv,python-is-python3,ca-certificates,netbase,tzdata" in command
    for excluded in ("/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*"):
        assert f"--dpkgopt=path-exclude={excluded}" in command
    assert "bookworm" in command and "/o.tar" in command


def rootfs(path: Path, python: str) -> Path:
    status = f"Package: python3.11\nStatus: install ok installed\nVersion: {python}\n\n".encode()
    with tarfile.open(path, "w") as tar:
        for name, data in (("./var/lib/dpkg/status", status), ("./usr/bin/python3.11", b"\x7fELF")):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), image_base.SOURCE_DATE_EPOCH
            tar.addfile(info, io.BytesIO(data))
    return path


def test_the_archive_is_reproducible(tmp_path: Path) -> None:
    base = parse_base("python:3.11.14-slim-bookworm")
    fs = rootfs(tmp_path / "rootfs.tar", "3.11.2-6+deb12u9")
    versions = image_base.installed_versions(fs)
    assert versions == {"python3.11": "3.11.2-6+deb12u9"}
    first = image_base.write_oci_archive(base, fs, tmp_path / "a.tar", versions)
    again = image_base.write_oci_archive(base, fs, tmp_path / "b.tar", versions)
    assert first == again and (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    other = rootfs(tmp_path / "other.tar", "3.11.2-6+deb12u10")
    assert image_base.write_oci_archive(base, other, tmp_path / "c.tar", versions) != first
    with tarfile.open(tmp_path / "a.tar") as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        (manifest,) = index["manifests"]
        assert manifest["annotations"]["org.opencontainers.image.ref.name"] == "3.11.14-slim-bookworm"
        config = json.load(tar.extractfile(f"blobs/sha256/{first}"))  # type: ignore[arg-type]
    assert config["created"] == "2025-01-01T00:00:00Z" and config["config"]["Cmd"] == ["python3"]
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in config["config"]["Env"]
