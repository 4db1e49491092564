"""The operator's cluster tests' resources and checks: a LoRA, an image, a face clip served over
HTTP, a resource's uid and reason, the RBAC calls recorded, the chart rendered for watchNamespaces
(tests/kube). The cluster itself is tests/kube/harness.py, re-exported here."""

from __future__ import annotations

import functools
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from scripts.synthetic_video import face_scene, other_scene, write_video
from tests.conftest import EXAMPLES
from tests.harness.conditions import reason  # noqa: F401 (re-exported)
from tests.httpserver import serve
from tests.kube.harness import ApiError, Cluster, cluster, operated, operator  # noqa: F401 (re-exported)
from tests.rbac.record import record_decisions


def face_clip(root: Path) -> Path:
    """A short video with sound in five shots: four framings of a face and a cup of coffee, so a
    LoRA dataset keeps four images and drops one for having no face."""
    shots = [face_scene(1.5), other_scene(1.5, "coffee"), *(face_scene(1.5, variant=v) for v in (1, 2, 3))]
    return write_video(root / "clip.mp4", shots, audio=True).path


def lora(name: str, media: str, *, source: str = "clip.mp4", **spec: Any) -> dict[str, Any]:
    body = {
        "owner": "alice",
        "provider": "offline",
        "source": {"url": f"{media}/{source}"},
        "triggerWord": "tw",
        # the clip's four face shots, all of them needed (minFrames may not be below 4)
        "dataset": {"maxFrames": 4, "minFrames": 4, "minSceneSeconds": 0.5},
        "training": {"steps": 100},
        "tags": ["avatar"],
    }
    body.update(spec)
    return manifest("LoraTraining", name, body)


def manifest(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A contentgen resource of `kind` named `name` (its namespace the one it is applied in)."""
    return {"apiVersion": "contentgen.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def image(name: str, **spec: Any) -> dict[str, Any]:
    body = {"owner": "alice", "provider": "offline", "prompt": "a lighthouse", "numImages": 1}
    body.update(spec)
    return manifest("ImageGeneration", name, body)


def clip(name: str, picture: str, **spec: Any) -> dict[str, Any]:
    """A VideoGeneration animating the ImageGeneration `picture`."""
    body = {
        "owner": "alice",
        "provider": "offline",
        "prompt": "the lighthouse's beam sweeps the sea",
        "model": "wan-2.2-i2v",
        "imageRef": {"name": picture},
        "numFrames": 17,
        "resolution": "480p",
    }
    body.update(spec)
    return manifest("VideoGeneration", name, body)


def evaluation(name: str, lora_name: str, **spec: Any) -> dict[str, Any]:
    """A LoraEvaluation of the LoraTraining `lora_name`'s version 1."""
    body = {"owner": "alice", "loraRef": {"name": lora_name, "version": 1}, "evaluation": {"seeds": [3]}}
    body.update(spec)
    return manifest("LoraEvaluation", name, body)


def uid_of(c: Cluster, kind: str, ns: str, name: str) -> str:
    obj = c.resource(kind, ns, name)
    assert obj is not None
    return str(obj["metadata"]["uid"])


def record_calls(c: Cluster, mode: str = "cluster-wide") -> None:
    record_decisions(c.decisions(), mode)


def namespaced_rbac(namespaces: list[str]) -> list[dict[str, Any]]:
    """The chart rendered for watchNamespaces: the namespaces (they exist before an install), the
    operator's ServiceAccount, the RBAC and the ConfigMap the operator mirrors grants into."""
    from scripts.chart import template

    docs = [
        d
        for d in yaml.safe_load_all(template("--set-json", f"watchNamespaces={json.dumps(namespaces)}"))
        if d
    ]
    kinds = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    namespace_docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        for ns in ["contentgen", *namespaces]
    ]
    shares = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "contentgen-shares"]
    return namespace_docs + [d for d in docs if d["kind"] in kinds] + shares


@functools.cache
def _face_clip_bytes() -> bytes:
    """`face_clip`, made once a process (every cluster serves it)."""
    with tempfile.TemporaryDirectory() as made:
        return face_clip(Path(made)).read_bytes()


@contextmanager
def served_media(host: str = "127.0.0.1") -> Iterator[str]:
    """The face clip (`face_clip`), and a text file posing as a video, served over HTTP on `host`."""
    routes = {
        "/clip.mp4": (200, {}, _face_clip_bytes()),
        "/notes.mp4": (200, {}, b"this is not a video\n" * 50),
        # the 25 s sample: a dataset stage long enough to watch its progress (test_records.py)
        "/sample.mp4": (200, {}, (EXAMPLES / "media" / "sample.mp4").read_bytes()),
    }
    with serve(routes, host=host) as (base, _):
        yield base
