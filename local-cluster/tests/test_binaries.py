"""Which binaries the local cluster uses: $KUBEBUILDER_ASSETS first (envtest's convention), then
$PATH, then what `make kube` built, each only when its version is the pinned minor release."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from localcluster import binaries, build


def fake(folder: Path, name: str, says: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{says}'\n")
    path.chmod(0o755)
    return path


def version_line(name: str, version: str) -> str:
    return f"etcd Version: {version}" if name == "etcd" else f"Kubernetes {version}"


def test_assets_come_first_when_their_version_fits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assets = tmp_path / "assets"
    for name in binaries.NAMES:
        fake(assets, name, version_line(name, "3.6.1" if name == "etcd" else "v1.36.0"))
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    found = binaries.find()
    assert all(p.parent == assets for p in found.paths())
    assert found.versions()["kube-apiserver"] == "v1.36.0"


def test_a_binary_of_another_release_is_passed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assets, on_path = tmp_path / "assets", tmp_path / "bin"
    for name in binaries.NAMES:
        fake(assets, name, version_line(name, "3.5.9" if name == "etcd" else "v1.35.2"))  # too old
        fake(on_path, name, version_line(name, "3.6.8" if name == "etcd" else "v1.36.3"))
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    monkeypatch.setenv("PATH", f"{on_path}:/usr/bin:/bin")
    assert all(p.parent == on_path for p in binaries.find().paths())


def test_nothing_fitting_says_how_to_get_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with pytest.raises(binaries.BinariesMissing, match="run `make kube`"):
        binaries.find(include_built=False)


def test_the_build_is_pinned(tmp_path: Path) -> None:
    """kube/go.mod pins k8s.io/kubernetes and replaces every staging module with the same release."""
    text = (build.KUBE / "go.mod").read_text()
    version = build.kubernetes_version()
    assert version.startswith(f"v{binaries.KUBERNETES_MINOR}.")
    staging = version.replace("v1.", "v0.")
    replaces = [line.split() for line in text.splitlines() if "=>" in line]
    assert len(replaces) >= 30 and all(r[0] == r[2] and r[3] == staging for r in replaces), replaces
    assert "go.etcd.io/etcd/server/v3 v3.6." in text
    assert build.required_go() >= (1, 26)
    assert len(build.pins()) == 64 and os.access(build.KUBE / "main.go", os.R_OK)


def test_the_built_binaries_report_the_pinned_versions() -> None:
    found = binaries.find()
    versions = found.versions()
    assert versions["kube-apiserver"] == versions["kube-scheduler"] == build.kubernetes_version()
    assert versions["etcd"].startswith(f"{binaries.ETCD_MINOR}.")
