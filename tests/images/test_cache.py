"""What an image is built from and when it is built again (scripts/image_context.py, the index of
scripts/images.py): docker's .dockerignore rules, the content key, the host's pip settings a
build takes, and an archive's layers read back."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from scripts import images
from scripts.image_context import cache_key, context_manifest, ignored, parse_dockerignore
from tests.conftest import ROOT


def test_dockerignore_rules() -> None:
    patterns = parse_dockerignore("# comment\n*\n!operator/\n**/__pycache__\n!README.md\nREADME.md\n")
    assert ignored(".venv/bin/python", patterns)
    assert not ignored("operator/contentgen/cli/main.py", patterns)
    assert ignored("operator/contentgen/__pycache__/main.cpython-311.pyc", patterns)
    assert ignored("__pycache__/x.pyc", patterns), "`**/` also matches at the top"
    assert ignored("README.md", patterns), "the last matching pattern wins"
    single = parse_dockerignore("docs/*.md\n")
    assert ignored("docs/install.md", single) and not ignored("docs/reference/values.md", single)


def test_the_context_is_what_the_images_copy() -> None:
    files = [path for path, _, _ in context_manifest(ROOT)]
    tops = {path.split("/", 1)[0] for path in files}
    assert tops == {"pyproject.toml", "README.md", "requirements", "operator"}, tops
    assert "operator/contentgen/cli/main.py" in files
    assert not any("__pycache__" in path or path.endswith(".pyc") for path in files)


def mini_repo(root: Path) -> Path:
    (root / "operator" / "pkg").mkdir(parents=True)
    (root / "operator" / "pkg" / "a.py").write_text("A = 1\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_a.py").write_text("")
    (root / "README.md").write_text("readme\n")
    (root / ".dockerignore").write_text("*\n!operator/\n!README.md\n**/__pycache__\n")
    return root


def test_the_key_follows_the_context_the_dockerfile_and_the_base(tmp_path: Path) -> None:
    root = mini_repo(tmp_path)
    dockerfile = b"FROM python:3.11.14-slim-bookworm\nCOPY operator /src/operator\n"

    def key(dockerfile: bytes = dockerfile, base: str = "sha256:" + "1" * 64) -> str:
        return cache_key(dockerfile, context_manifest(root), base, "ghcr.io/contentgen/contentgen:0.1.0")

    first = key()
    assert key() == first, "the same inputs, the same key"
    (root / "tests" / "test_a.py").write_text("changed, but ignored\n")
    (root / "operator" / "pkg" / "__pycache__").mkdir()
    (root / "operator" / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert key() == first, "an ignored file is not in the context"
    assert key(dockerfile + b"RUN true\n") != first
    assert key(base="sha256:" + "2" * 64) != first
    (root / "operator" / "pkg" / "a.py").write_text("A = 2\n")
    second = key()
    assert second != first
    (root / "operator" / "pkg" / "a.py").chmod(0o755)
    assert key() != second, "the executable bit is part of a file"
    copy = tmp_path.parent / (tmp_path.name + "-copy")
    shutil.copytree(root, copy)
    assert (
        cache_key(
            dockerfile, context_manifest(copy), "sha256:" + "1" * 64, "ghcr.io/contentgen/contentgen:0.1.0"
        )
        == key()
    ), "the key does not depend on where the repository is"


def test_an_index_entry_is_current_only_with_its_key_and_its_whole_archive(tmp_path: Path) -> None:
    (tmp_path / "contentgen.tar").write_bytes(b"x" * 10)
    entry: dict[str, object] = {"key": "k1", "archive": "contentgen.tar", "size": 10}
    assert images.current(entry, "k1", tmp_path)
    assert not images.current(entry, "k2", tmp_path)
    assert not images.current(None, "k1", tmp_path)
    (tmp_path / "contentgen.tar").write_bytes(b"x" * 4)  # cut short
    assert not images.current(entry, "k1", tmp_path)


def test_pip_settings_from_the_host() -> None:
    listed = (
        ":env:.cert='/etc/ssl/certs/ca-certificates.crt'\n"
        ":env:.find-links='/opt/wheels'\n"
        "global.index-url='https://mirror.example/simple'\n"
        "global.cert='/etc/other.pem'\n"
    )
    settings = images.pip_settings(listed)
    # the environment wins over the files; a host path other than the CA is not taken
    assert settings == {
        "cert": "/etc/ssl/certs/ca-certificates.crt",
        "index-url": "https://mirror.example/simple",
    }
    conf = images.pip_conf(settings)
    assert conf.startswith("[global]\n") and "cert = /etc/ssl/certs/ca-certificates.crt\n" in conf
    mounts = images.egress_mounts(settings, Path("/x/pip.conf"), exists=lambda p: True)
    assert mounts == [
        "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro",
        "/x/pip.conf:/etc/pip.conf:ro",
    ]
    assert all(m.endswith(":ro") for m in mounts)


def test_build_commands_per_engine() -> None:
    volumes = ["/ca.crt:/ca.crt:ro"]
    buildah = images.build_command("/usr/bin/buildah", "Dockerfile", "r/contentgen:1", volumes)
    assert buildah[:2] == ["/usr/bin/buildah", "bud"]
    for flag in ("--pull=never", "--layers"):
        assert flag in buildah
    assert (
        buildah[buildah.index("--runtime") + 1] == "runc"
        and buildah[buildah.index("--network") + 1] == "host"
    )
    assert buildah[buildah.index("--volume") + 1] == volumes[0] and buildah[-1] == "."
    assert "--ulimit" not in buildah, "raising a limit needs CAP_SYS_RESOURCE"
    assert images.build_command("docker", "Dockerfile", "r/contentgen:1", volumes) == [
        "docker",
        "build",
        "--file",
        "Dockerfile",
        "--tag",
        "r/contentgen:1",
        ".",
    ]
    assert (
        images.save_command("/usr/bin/buildah", "r/c:1", Path("/a/c.tar"))[-1]
        == "docker-archive:/a/c.tar:r/c:1"
    )


@pytest.mark.parametrize(
    ("wanted", "engine", "present", "source"),
    [
        (None, "buildah", True, "local"),
        (None, "buildah", False, "debian"),
        (None, "docker", False, "pull"),
        ("debian", "buildah", True, "debian"),
        ("pull", "buildah", False, "pull"),
    ],
)
def test_where_the_base_comes_from(wanted: str | None, engine: str, present: bool, source: str) -> None:
    assert images.base_source(wanted, engine, present) == source


def test_a_wrong_image_base_is_one_line() -> None:
    with pytest.raises(images.EngineMissing, match="IMAGE_BASE=registry: use pull"):
        images.base_source("registry", "buildah", False)


def test_archive_layers_pairs_sizes_with_steps(tmp_path: Path) -> None:
    config = json.dumps(
        {
            "history": [
                {"created_by": "mmdebstrap"},
                {"created_by": "/bin/sh -c #(nop) ENV HOME=/tmp", "empty_layer": True},
                {"created_by": f"/bin/sh -c #(nop) COPY dir:{'c' * 64} in /opt/contentgen "},
            ]
        }
    ).encode()
    digest = "a" * 64
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (
            (
                "manifest.json",
                json.dumps([{"Config": f"{digest}.json", "Layers": ["l1.tar", "l2.tar"]}]).encode(),
            ),
            (f"{digest}.json", config),
            ("l1.tar", b"1" * 300),
            ("l2.tar", b"2" * 50),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    found, layers = images.archive_layers(archive)
    assert found == digest
    assert [(layer.size, images.describe_step(layer.created_by)) for layer in layers] == [
        (300, "mmdebstrap"),
        (50, "COPY /opt/contentgen"),
    ]


def test_archive_names_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMAGE_CACHE_DIR", str(tmp_path))
    with pytest.raises(LookupError, match="contentgen is not built: run `make images`"):
        images.archive("contentgen")
    with pytest.raises(LookupError, match="no image 'nginx'"):
        images.archive("nginx")
