"""Each run's own store credentials (controller/run_credentials.py, store/scopes.py) on the real
STS of SeaweedFS (tests/seaweed.py): the operator's minter asks for owner B's run's session with the
session policy of its scope, writes the Secret its pod mounts, and the worker's S3Store, reading
its credentials from that file (store/s3.py), may do what the run needs (its own version's keys,
its resource's earlier versions, owner A's LoRA shared with B for use, exactly) and nothing else
(A's dataset beside it, A's folders: read, write, list, delete; the bucket's root), each refusal
the store's; renewed credentials are read again from the file as they near their end."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contentgen.api import SpecSnapshot
from contentgen.controller.run_credentials import FILE, RunCredentials, run_name, secret_name, sts_minter
from contentgen.controller.settings import OperatorSettings
from contentgen.store.base import ObjectNotFound
from contentgen.store.s3 import CREDENTIALS_ENV, S3Store
from localcluster.seaweed import SeaweedServer
from tests.seaweed import admin
from tests.waiting import wait_for


class Secrets:
    """The operator's Kube as the credentials see it: the Secrets written, by name."""

    def __init__(self) -> None:
        self.written: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []

    async def request(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        name = path.rsplit("/", 1)[1]
        if method == "POST":
            self.written[body["metadata"]["name"]] = body
        elif method == "PUT":
            self.written[name] = body
        elif method == "DELETE":
            self.deleted.append(name)
        return {}


def document(secret: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(base64.b64decode(secret["data"][FILE]))
    return found


@pytest.fixture
def operator_env(sts_server: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> OperatorSettings:
    for name, value in sts_server.env.items():  # the operator's own identity: the bucket-wide key
        monkeypatch.setenv(name, value)
    return OperatorSettings(
        store=f"s3://{sts_server.bucket}",
        s3_endpoint_url=sts_server.endpoint,
        store_access="per-run",
        sts_role_arn=sts_server.role_arn,
        sts_window_seconds=900,
    )


def test_a_runs_credentials_reach_its_scope_and_nothing_else(
    sts_server: SeaweedServer,
    operator_env: OperatorSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket, a, b = sts_server.bucket, uuid.uuid4().hex, uuid.uuid4().hex
    theirs = f"loras/owner-a/{a}/v1/model.safetensors"
    root = admin(sts_server)
    for key in (
        theirs,
        f"datasets/owner-a/{a}/v1/dataset.zip",
        f"generated-images/owner-b/{b}/v1/image_1.png",
    ):
        root.put_object(Bucket=bucket, Key=key, Body=b"made earlier")
    snap = SpecSnapshot(
        kind="ImageGeneration",
        name="portrait",
        namespace="studio-b",
        uid=b,
        version=2,
        spec={"owner": "owner-b", "prompt": "p", "model": "flux-lora", "loras": [{"loraRef": {"name": "x"}}]},
        loras=[{"uri": f"s3://{bucket}/{theirs}", "uid": a, "version": 1}],
    )
    kube = Secrets()
    keeper = RunCredentials(kube, operator_env, S3Store(bucket).place(), sts_minter(operator_env))  # type: ignore[arg-type]
    asyncio.run(keeper.issue(snap, "portrait-ig-0000-g2"))
    secret = kube.written[secret_name("portrait-ig-0000-g2")]
    assert secret["metadata"]["ownerReferences"][0]["uid"] == b
    assert set(document(secret)) == {
        "Version",
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
    }

    # the worker's store, as its pod has it: no key of its own, the run's credentials in a file
    path = tmp_path / FILE
    path.write_text(json.dumps(document(secret)))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(CREDENTIALS_ENV, str(path))
    store = S3Store(bucket)
    own = f"generated-images/owner-b/{b}/v2/"
    store.put_once_bytes(f"{own}image_1.png", b"pixels", "image/png")
    assert store.get_bytes(f"{own}image_1.png") == b"pixels"
    assert store.get_bytes(f"generated-images/owner-b/{b}/v1/image_1.png") == b"made earlier"
    assert [o.key for o in store.list(own)] == [f"{own}image_1.png"]
    store.put_bytes(f"temp/{b}/checkpoints/x.json", b"{}", "application/json")
    assert store.delete(f"temp/{b}/checkpoints/x.json")
    assert store.get_bytes(theirs) == b"made earlier"  # shared with B for use: exactly that key

    refused = [
        lambda: store.get_bytes(f"datasets/owner-a/{a}/v1/dataset.zip"),
        lambda: store.put_bytes(f"loras/owner-a/{a}/v1/evil.safetensors", b"x", "application/octet-stream"),
        lambda: store.put_bytes(
            f"generated-images/owner-b/{b}/v1/image_2.png", b"x", "image/png"
        ),  # an older version
        lambda: list(store.list(f"loras/owner-a/{a}/")),
        lambda: list(store.list("")),
        lambda: store.delete(theirs),
        lambda: store.get_bytes(f"temp/{a}/checkpoints/lora.json"),
    ]
    for n, call in enumerate(refused):
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the store's refusal, whatever its class
            call()
        assert not isinstance(caught.value, ObjectNotFound), f"call {n} was not refused: {caught.value!r}"
        assert "denied" in str(caught.value).lower() or "403" in str(caught.value), (
            f"call {n}: {caught.value}"
        )
    assert root.get_object(Bucket=bucket, Key=theirs)["Body"].read() == b"made earlier"

    def refusals() -> list[Any]:
        run = document(secret)["AccessKeyId"]
        return [r for r in sts_server.requests() if r.status == 403 and r.access_key == run]

    wait_for(lambda: len(refusals()) >= len(refused), 30, lambda: f"the run's refusals logged: {refusals()}")
    assert not [r for r in refusals() if r.key.startswith(f"generated-images/owner-b/{b}/v2/")]


def test_renewed_credentials_are_read_again_as_they_near_their_end(
    sts_server: SeaweedServer, operator_env: OperatorSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator renews a run's credentials at half their window and rewrites its Secret (the
    kubelet then its file): the worker's client reads the file again once they near their end."""
    bucket, uid = sts_server.bucket, uuid.uuid4().hex
    snap = SpecSnapshot(
        kind="Transcription",
        name="talk",
        namespace="studio-b",
        uid=uid,
        version=1,
        spec={"owner": "owner-b", "source": {"url": "https://example.com/a.mp3"}},
    )
    kube = Secrets()
    keeper = RunCredentials(kube, operator_env, S3Store(bucket).place(), sts_minter(operator_env))  # type: ignore[arg-type]
    job = run_name(snap)
    asyncio.run(keeper.issue(snap, job))
    first = document(kube.written[secret_name(job)])
    # near its end (as the client sees it): every call reads the file again
    path = tmp_path / FILE
    path.write_text(json.dumps({**first, "Expiration": _at(timedelta(seconds=30))}))
    monkeypatch.setenv(CREDENTIALS_ENV, str(path))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    store = S3Store(bucket)
    store.put_bytes(f"temp/{uid}/a.json", b"{}", "application/json")
    # a renewal: the keeper's pass finds the run due (this process's clock moved on half a window)
    keeper.clock = lambda: datetime.now(UTC) + timedelta(seconds=600)
    asyncio.run(keeper.renew([("studio-b", job, False, snap.model_dump_json())]))
    second = document(kube.written[secret_name(job)])
    assert second["AccessKeyId"] != first["AccessKeyId"]
    path.write_text(json.dumps({**second, "Expiration": _at(timedelta(seconds=30))}))
    store.put_bytes(f"temp/{uid}/b.json", b"{}", "application/json")

    def signed_by() -> dict[str, str]:
        return {r.key: r.access_key for r in sts_server.requests() if r.key.startswith(f"temp/{uid}/")}

    wait_for(lambda: len(signed_by()) == 2, 30, lambda: f"the log: {signed_by()}")
    assert signed_by() == {
        f"temp/{uid}/a.json": first["AccessKeyId"],
        f"temp/{uid}/b.json": second["AccessKeyId"],
    }
    # the run ends: its Secret goes
    asyncio.run(keeper.renew([("studio-b", job, True, snap.model_dump_json())]))
    assert kube.deleted == [secret_name(job)] and not keeper.until


def _at(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")
