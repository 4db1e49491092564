"""Makes the fixture of tests/catalog/test_migration.py: a catalog and a store written by the code
of main before versions (commit 7d0216a), so that test reads what an upgrade finds.

    git worktree add /tmp/contentgen-7d0216a 7d0216a
    .venv/bin/python tests/catalog/legacy/make.py /tmp/contentgen-7d0216a
    git worktree remove /tmp/contentgen-7d0216a

It runs that checkout's `contentgen run --offline` on a small clip (scripts/synthetic_video.py:
four shots of a face and one of a cup, with a tone track) (its package on PYTHONPATH, this virtualenv's
dependencies, which it shares) against an S3 store (moto's server: the URIs in the catalog are
s3://contentgen-legacy/…, valid wherever the test puts the objects again) and a local catalog:

- fox (ImageGeneration): run with seed 1, again with seed 2 (0.1 wrote the new images over the
  first), then once with provider fal and no key (MissingCredentials: the record says Failed and
  shows no image, although the store holds those of seed 2);
- talk (Transcription): one run on the clip;
- avatar (LoraTraining): v1 from the clip, then a retraining on a file that is no video
  (InvalidInput: the record says Failed although v1 is usable);
- gone (ImageGeneration): run, then `contentgen assets delete --yes` (its objects removed, the
  record Deleted).

Then records as that commit's operator wrote them (its `catalog_document` over cluster statuses,
with Kubernetes' random uids): one left Pending by a resource deleted while it waited, one whose
re-run failed in the cluster (the operator kept the first run's images in the status). Their
images are put into the store by this script.

Writes tests/catalog/legacy/catalog/ (montydb's files) and tests/catalog/legacy/store/ (the bucket's
objects, one file per key).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
BUCKET = "contentgen-legacy"
STORE = f"s3://{BUCKET}/data"
sys.path.insert(0, str(REPO))

OPERATOR_DOCS = """
import json, sys
from datetime import datetime, timezone
from contentgen.catalog import open_catalog
from contentgen.catalog.document import catalog_document
from contentgen.api import ImageGenerationSpec

def spec(prompt):
    wire = {"owner": "alice", "prompt": prompt, "provider": "offline", "numImages": 1}
    return ImageGenerationSpec.model_validate(wire).wire()

def ready(reason):
    return [{"type": "Ready", "status": "False", "reason": reason, "message": reason}]

t0 = datetime(2025, 6, 1, 9, 0, tzinfo=timezone.utc)
catalog = open_catalog(sys.argv[1], create=True)
pending_uid, rerun_uid, image = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
common = dict(kind="ImageGeneration", namespace="team-a", created_at=t0, now=t0)
queued = {"phase": "Pending", "message": "waiting for a free slot", "observedGeneration": 1,
          "conditions": ready("Queued")}
catalog.upsert(catalog_document(name="queued", uid=pending_uid, generation=1, spec=spec("a queue"),
                                status=queued, **common))
first = {"phase": "Succeeded", "progress": 100, "stage": "done", "observedGeneration": 1,
         "images": [image], "provider": "offline", "startedAt": "2025-06-01T09:00:00Z",
         "completedAt": "2025-06-01T09:01:00Z"}
catalog.upsert(catalog_document(name="portrait", uid=rerun_uid, generation=1, spec=spec("a portrait"),
                                status=first, **common))
failed = {**first, "phase": "Failed", "progress": 40, "stage": "", "observedGeneration": 2,
          "message": "InvalidInput: the LoRA weights are missing",
          "startedAt": "2025-06-01T10:00:00Z", "completedAt": "2025-06-01T10:00:30Z",
          "conditions": ready("InvalidInput")}
catalog.upsert(catalog_document(name="portrait", uid=rerun_uid, generation=2, spec=spec("a portrait, again"),
                                status=failed, previous=catalog.get(rerun_uid), **common))
catalog.close()
"""


def main(old: Path) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CONTENTGEN_", "AWS_", "FAL_"))},
        "PYTHONPATH": str(old / "operator"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    s3.create_bucket(Bucket=BUCKET)
    work = Path(tempfile.mkdtemp(prefix="contentgen-legacy-"))
    catalog = work / "catalog"
    from scripts.synthetic_video import face_scene, other_scene, write_video

    plan = [face_scene(1.5), other_scene(1.5, "coffee"), *(face_scene(1.5, variant=v) for v in (1, 2, 3))]
    clip = str(write_video(work / "clip.mp4", plan, audio=True, threads=1).path)

    def contentgen(*args: str, ok: bool = True) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "contentgen", *args], env=env, cwd=work, capture_output=True, text=True
        )
        if (done.returncode == 0) != ok:
            raise SystemExit(f"contentgen {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}")

    def manifest(kind: str, name: str, spec: dict[str, object]) -> str:
        path = work / f"{name}-{len(list(work.glob('*.yaml')))}.yaml"
        doc = {"apiVersion": "contentgen.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
        path.write_text(yaml.safe_dump(doc))
        return str(path)

    run = ["run", "--store", STORE, "--catalog", str(catalog)]
    fox = {"owner": "alice", "prompt": "a red fox in the snow", "numImages": 2, "provider": "offline"}
    contentgen(*run, manifest("ImageGeneration", "fox", {**fox, "seed": 1}))
    contentgen(*run, manifest("ImageGeneration", "fox", {**fox, "seed": 2}))
    contentgen(*run, manifest("ImageGeneration", "fox", {**fox, "seed": 3, "provider": "fal"}), ok=False)
    talk = {"owner": "alice", "source": {"url": clip}, "provider": "offline"}
    contentgen(*run, manifest("Transcription", "talk", talk))
    avatar = {
        "owner": "alice",
        "source": {"url": clip},
        "triggerWord": "fxavatar",
        "provider": "offline",
        "dataset": {"maxFrames": 4, "minFrames": 4, "minSceneSeconds": 0.5},
        "training": {"steps": 100},
    }
    contentgen(*run, manifest("LoraTraining", "avatar", avatar))
    (work / "notes.mp4").write_text("this is not a video\n" * 50)
    contentgen(
        *run,
        manifest("LoraTraining", "avatar", {**avatar, "source": {"url": str(work / "notes.mp4")}}),
        ok=False,
    )
    contentgen(*run, manifest("ImageGeneration", "gone", {**fox, "prompt": "a lighthouse", "numImages": 1}))
    contentgen("assets", "delete", "default/gone", "--yes", "--store", STORE, "--catalog", str(catalog))

    # The operator's records (uids as Kubernetes makes them), and the image the second refers to.
    pending_uid, rerun_uid = "6f1c2a3e-5b7d-4c9e-8a1f-2d3e4f5a6b7c", "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
    key = f"data/generated-images/alice/{rerun_uid}/image_1.png"
    png = s3.get_object(Bucket=BUCKET, Key=_first_png(s3))["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=png, ContentType="image/png")
    import hashlib

    image = {"uri": f"s3://{BUCKET}/{key}", "width": 1024, "height": 768, "contentType": "image/png",
             "sizeBytes": len(png), "sha256": hashlib.sha256(png).hexdigest()}  # fmt: skip
    script = work / "operator_docs.py"
    script.write_text(OPERATOR_DOCS)
    done = subprocess.run(
        [sys.executable, str(script), str(catalog), pending_uid, rerun_uid, json.dumps(image)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(done.stderr)

    # Out: the catalog's files, the bucket's objects, the names' uids.
    for target in ("catalog", "store"):
        shutil.rmtree(HERE / target, ignore_errors=True)
    shutil.copytree(catalog, HERE / "catalog")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            path = HERE / "store" / item["Key"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
    server.stop()
    shutil.rmtree(work)


def _first_png(s3: object) -> str:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="data/generated-images/")  # type: ignore[attr-defined]
    return next(i["Key"] for i in listed["Contents"] if i["Key"].endswith("image_1.png"))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
