"""`contentgen validate`: what GitOps CI runs on a repository of manifests."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from contentgen.cli.main import main
from tests.conftest import EXAMPLES

BAD = """\
apiVersion: contentgen.io/v1alpha1
kind: LoraTraining
metadata:
  name: typo
spec:
  owner: demo
  videoUrl: https://example.com/v.mp4
  source:
    url: https://example.com/v.mp4
  triggerWord: jf
  dataset:
    maxFrames: 500
    faceFiltr: false
"""

OTHER = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: unrelated
spec: {}
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["validate", *args])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_examples_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(EXAMPLES))
    assert (code, out) == (0, [])
    assert f"{len(list(EXAMPLES.glob('*.yaml')))} resources valid" in err


def test_each_problem_is_one_line_naming_file_document_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    code, out, _ = run(capsys, str(path))
    assert code == 1
    assert (
        f"{path}: LoraTraining/typo (document 1): spec.dataset.maxFrames: must be at most 200, got 500" in out
    )
    unknown = [line for line in out if "spec.videoUrl" in line]
    assert unknown and "source.url" in unknown[0] and "silently drop" in unknown[0]
    assert any(
        'spec.dataset.faceFiltr: unknown field "faceFiltr"' in line and '"faceFilter"' in line for line in out
    )
    assert len(out) == 3


def test_a_cluster_only_training_field_with_fal_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """training.memoryPlan (and the other fields only provider cluster reads) with provider fal:
    refused in one line naming the field and what to do, as admission refuses it (issue 39)."""
    path = tmp_path / "fal.yaml"
    path.write_text(
        "apiVersion: contentgen.io/v1alpha1\nkind: LoraTraining\nmetadata:\n  name: on-fal\nspec:\n"
        "  owner: demo\n  provider: fal\n  source:\n    url: https://example.com/v.mp4\n"
        "  triggerWord: jf\n  training:\n    memoryPlan: int8\n"
    )
    code, out, _ = run(capsys, str(path))
    assert (code, out) == (
        1,
        [
            f"{path}: LoraTraining/on-fal (document 1): spec.training.memoryPlan: training.memoryPlan is "
            "for provider cluster (fal and offline ignore it): leave it auto, or use provider cluster"
        ],
    )
    path.write_text(path.read_text().replace("provider: fal", "provider: cluster"))
    assert run(capsys, str(path))[:2] == (0, [])


def test_directories_are_walked_and_other_groups_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "lora.yml").write_text((EXAMPLES / "loratraining.yaml").read_text())
    (tmp_path / "deploy.yaml").write_text(OTHER)
    (tmp_path / "notes.txt").write_text("not a manifest")
    code, out, err = run(capsys, str(tmp_path))
    assert (code, out) == (0, [])
    assert "1 resource valid; 1 path not read (--verbose lists them)" in err


def test_a_gitops_repository_is_validated_without_noise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dot-directories, Helm templates, values files and other groups' documents are passed over
    (and listed with --verbose); contentgen resources anywhere else are checked."""
    lora = (EXAMPLES / "loratraining.yaml").read_text()
    files = {
        "apps/avatars/lora.yaml": lora,
        "apps/avatars/deploy.yaml": OTHER.replace("unrelated", "contentgen-frontend"),
        "apps/avatars/kustomization.yaml": "resources: [lora.yaml]\n",
        ".git/objects/x.yaml": BAD,
        ".venv/lib/site-packages/pkg/data.yaml": BAD,
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
        "charts/app/values.yaml": "contentgen:\n  enabled: true\n",
        "charts/app/templates/lora.yaml": "apiVersion: contentgen.io/v1alpha1\nkind: LoraTraining\n"
        "metadata:\n  name: {{ .Values.name }}\n{{- if .Values.x }}\n",
        "vendor/upstream/bad.yaml": BAD,
        "apps/broken/typo.yaml": BAD,
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    code, out, err = run(capsys, str(tmp_path), "--exclude", "vendor/*")
    assert code == 1
    assert {line.split(":")[0] for line in out} == {str(tmp_path / "apps/broken/typo.yaml")}
    assert err.strip().endswith(
        "3 problems in 1 of 2 documents; 2 other documents skipped; 6 paths not read (--verbose lists them)"
    )
    code, out, err = run(capsys, str(tmp_path), "--exclude", "vendor/*", "--exclude", "typo.yaml", "-v")
    assert code == 0 and out == []
    skipped = sorted(line for line in err.splitlines() if line.startswith("skipped"))
    assert skipped == sorted(
        [
            f"skipped {tmp_path}/.git/: dot-directory",
            f"skipped {tmp_path}/.venv/: dot-directory",
            f"skipped {tmp_path}/apps/avatars/deploy.yaml: Deployment/contentgen-frontend (document 1): "
            "apps/v1 Deployment, not contentgen.io",
            f"skipped {tmp_path}/apps/avatars/kustomization.yaml: no contentgen resources in it",
            f"skipped {tmp_path}/apps/broken/typo.yaml: excluded",
            f"skipped {tmp_path}/charts/app/Chart.yaml: no contentgen resources in it",
            f"skipped {tmp_path}/charts/app/templates/: Helm chart templates (render them to validate)",
            f"skipped {tmp_path}/charts/app/values.yaml: document 1: not a Kubernetes object (it has no "
            "apiVersion and kind)",
            f"skipped {tmp_path}/vendor/upstream/: excluded",
        ]
    )


def test_the_repository_itself_validates(capsys: pytest.CaptureFixture[str]) -> None:
    """This repository is a real tree: a chart with templates, CRDs, JSON data, a virtualenv. What
    `make demo` and `make bench` leave behind (git-ignored), and the store of the catalog migration
    test's fixture, hold run results, not manifests."""
    code, out, err = run(
        capsys,
        str(EXAMPLES.parent),
        "--exclude",
        "contentgen-data",
        "--exclude",
        "bench/out",
        "--exclude",
        "tests/catalog/legacy",
    )
    assert (code, out) == (0, [])
    assert err.startswith(f"{len(list(EXAMPLES.glob('*.yaml')))} resources valid;")


def test_latin1_manifests_are_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "lora.yaml"
    path.write_bytes((EXAMPLES / "loratraining.yaml").read_bytes() + "# réglé\n".encode("latin-1"))
    code, out, _ = run(capsys, str(path))
    lines = (EXAMPLES / "loratraining.yaml").read_bytes().count(b"\n") + 1
    assert code == 1
    assert out == [
        f"{path}: document 0: not UTF-8 text (byte 0xe9 on line {lines}): save it as UTF-8, as Kubernetes "
        "and Git tools expect (e.g. iconv -f latin1 -t utf-8)"
    ]
    code, _, err = run_command(capsys, "run", "--offline", str(path))
    assert code == 1 and "not UTF-8 text" in err and "Traceback" not in err


def run_command(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_multi_document_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = (EXAMPLES / "transcription.yaml").read_text()
    path = tmp_path / "all.yaml"
    path.write_text(good + "\n---\n" + BAD + "\n---\n" + OTHER)
    code, out, _ = run(capsys, str(path))
    assert code == 1
    assert all("(document 2)" in line for line in out)

    listing = tmp_path / "list.json"
    doc = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "contentgen.io/v1alpha1",
                "kind": "Transcription",
                "metadata": {"name": "t"},
                "spec": {"owner": "u"},
            }
        ],
    }
    listing.write_text(json.dumps(doc))
    code, out, _ = run(capsys, str(listing))
    assert code == 1 and out == [f"{listing}: Transcription/t (document 1): spec.source: required; add it"]


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(BAD))
    code, out, _ = run(capsys, "-")
    assert code == 1 and all(line.startswith("<stdin>: LoraTraining/typo") for line in out)


def test_unknown_api_version_and_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        "apiVersion: contentgen.io/v1\nkind: LoraTraining\nmetadata: {name: a}\n---\n"
        "apiVersion: contentgen.io/v1alpha1\nkind: loratraining\nmetadata: {name: b}\n---\n"
        "kind: LoraTraining\n---\n- just\n- a list\n"
    )
    code, out, _ = run(capsys, str(path))
    assert code == 1
    assert 'apiVersion: unknown apiVersion "contentgen.io/v1"; use contentgen.io/v1alpha1' in out[0]
    assert 'unknown kind "loratraining"' in out[1] and 'did you mean "LoraTraining"' in out[1]
    assert "apiVersion: missing" in out[2]
    assert "not a Kubernetes object" in out[3]


def test_unreadable_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: contentgen.io/v1alpha1\nkind: [unclosed\n")
    code, out, _ = run(capsys, str(broken), str(tmp_path / "missing.yaml"))
    assert code == 1
    assert "not valid YAML: line" in out[0]
    assert "missing.yaml" in out[1] and "cannot read" in out[1]


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    code, out, _ = run(capsys, "-o", "json", str(path))
    report = json.loads("\n".join(out))
    assert code == 1 and report["valid"] is False and report["resources"] == 1
    assert {
        "file": str(path),
        "document": "LoraTraining/typo (document 1)",
        "field": "spec.dataset.maxFrames",
        "reason": "must be at most 200, got 500",
    } in report["problems"]


def test_console_script_is_installed(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "contentgen"), "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and "spec.dataset.maxFrames" in proc.stdout
