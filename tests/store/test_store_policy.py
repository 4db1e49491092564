"""The store's permissions as docs/install.md states them, enforced by a real S3 server: versitygw
with an account per part of contentgen (the operator, the workers, the API), each given its
document's statements, as they are written in the docs, in the bucket's policy (versitygw has no
identity policies; it evaluates a bucket policy's statements action by action for an account
that is not the bucket's owner). Each part's calls pass under its own document and a call outside
it is refused; and the housekeeping on unfinished multipart uploads is best effort: a store that
refuses it (AccessDenied, a policy without it; NotImplemented, a store without it) is said once
and never stands between a run, a paid run resumed least of all, and its outputs."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import httpx
import pytest
from botocore.config import Config

from contentgen.catalog import open_catalog, pruning
from contentgen.cli.main import main
from contentgen.errors import PermanentError
from contentgen.store import keys
from contentgen.store.base import UploadsRefused
from contentgen.store.results import read_result
from contentgen.store.s3 import MULTIPART_THRESHOLD, S3Store
from localcluster.s3server import S3Server
from tests.conftest import EXAMPLES, ROOT
from tests.providers.fake_fal import FAL_KEY, FakeFal
from tests.providers.fakes import mocked, unslept_retries
from tests.s3server import follow_environment

IMAGES = str(EXAMPLES / "imagegeneration.yaml")  # flux-dev, 2 images, provider fal
BUCKET, PREFIX = "assets", "cg"
PARTS = ("operator", "workers", "api")
HOUSEKEEPING = ("s3:ListBucketMultipartUploads", "s3:AbortMultipartUpload")


def documented_policies() -> dict[str, dict[str, Any]]:
    """docs/install.md's policy documents (its ```json blocks with an Id), by part."""
    text = (ROOT / "docs" / "install.md").read_text()
    found = {}
    for block in re.findall(r"^```json\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        document = json.loads(block)
        if str(document.get("Id", "")).startswith("contentgen-"):
            found[document["Id"].removeprefix("contentgen-")] = document
    assert set(found) == set(PARTS), found.keys()
    return found


def bucket_policy(documents: dict[str, dict[str, Any]], without: tuple[str, ...] = ()) -> str:
    """One bucket policy: each part's statements with its account as Principal, the placeholders
    the docs name filled in, the actions `without` left out."""
    statements = []
    for part, document in documents.items():
        for statement in document["Statement"]:
            actions = [a for a in statement["Action"] if a not in without]
            if not actions:
                continue
            resource = statement["Resource"].replace("BUCKET", BUCKET).replace("PREFIX", PREFIX)
            statements.append(
                {**statement, "Sid": f"{part}{statement['Sid']}", "Principal": part, "Action": actions}
                | {"Resource": resource}
            )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def client(server: S3Server, access: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )


class Policed:
    """The server, its root account (the bucket's owner), and an account per part."""

    def __init__(self, server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
        self.server, self.monkeypatch = server, monkeypatch
        self.root = client(server, server.access_key, server.secret_key)

    def secret(self, part: str) -> str:
        return self.server.users[part]

    def policy(self, text: str) -> None:
        self.root.put_bucket_policy(Bucket=BUCKET, Policy=text)

    def act_as(self, part: str) -> None:
        """This process's S3 clients (the store's, `contentgen run`'s) are `part`'s from now on."""
        self.monkeypatch.setenv("AWS_ACCESS_KEY_ID", part)
        self.monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", self.secret(part))
        follow_environment()

    def store(self, part: str) -> S3Store:
        self.act_as(part)
        return S3Store(BUCKET, PREFIX)


@pytest.fixture
def policed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Policed]:
    """versitygw with the three parts' accounts and the bucket under the docs' policy; `contentgen
    run` in an empty directory (its catalog there) with the store s3://BUCKET/PREFIX."""
    users = {part: os.urandom(12).hex() for part in PARTS}
    server = S3Server(tmp_path / "s3", secret_key=os.urandom(12).hex(), users=users).start()
    try:
        made = Policed(server, monkeypatch)
        made.root.create_bucket(Bucket=BUCKET)
        made.policy(bucket_policy(documented_policies()))
        monkeypatch.chdir(tmp_path)
        for variable in ("CONTENTGEN_CATALOG", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            monkeypatch.delenv(variable, raising=False)
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
        monkeypatch.setenv("AWS_DEFAULT_REGION", server.region)
        monkeypatch.setenv("CONTENTGEN_STORE", f"s3://{BUCKET}/{PREFIX}")
        monkeypatch.setattr("contentgen.store.base._SAID", set())  # "said once" is a process's
        yield made
    finally:
        server.stop(grace=1.0)


def refused(action: Any) -> str:
    """The reason of the error `action()` raises: what a refused call becomes."""
    with pytest.raises(PermanentError) as failed:
        action()
    return failed.value.reason


def offline_run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["run", "--offline", *args, IMAGES])
    return code, capsys.readouterr().err


def test_each_part_works_under_its_documented_policy_and_no_further(
    policed: Policed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the workers: a run (outputs created once, its result listing every object), a multipart
    # upload, an earlier attempt's upload aborted, working state removed under temp/
    policed.act_as("workers")
    code, err = offline_run(capsys, "--result", "r.json")
    assert code == 0, err
    assert "refuses" not in err  # the housekeeping was allowed
    result = json.loads((tmp_path / "r.json").read_text())
    uid, owner = result["uid"], result["owner"]
    root = keys.version_roots("image-generation", owner, uid, 1)[0]
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(MULTIPART_THRESHOLD + 1024))
    workers = policed.store("workers")
    workers.put_once_file(f"{root}extra.bin", big, "application/octet-stream")  # in parts
    workers.client.create_multipart_upload(Bucket=BUCKET, Key=f"{PREFIX}/{root}cut-short.bin")
    assert workers.abort_uploads(root) == 1
    state = keys.checkpoint(uid, "request")
    workers.put_bytes(state, b"{}", "application/json")
    assert workers.delete(state)
    assert refused(lambda: workers.delete(f"{root}extra.bin")) == "StoreAccessDenied"  # outputs stay
    assert refused(lambda: S3Store(BUCKET, "elsewhere").put_bytes("x", b"x", "text/plain")) == (
        "StoreAccessDenied"
    )

    # the operator: a result read (and a missing one is absent, not refused), a stopped run's
    # checkpoint rewritten under temp/, the sweep, a deleted resource's objects removed
    operator = policed.store("operator")
    stored = read_result(operator, keys.result_key("image-generation", owner, uid, 1))
    assert stored is not None and stored.uid == uid
    assert read_result(operator, keys.result_key("image-generation", owner, uid, 2)) is None
    operator.put_bytes(keys.checkpoint(uid, "request"), b"{}", "application/json")
    assert refused(lambda: operator.put_once_bytes(f"{root}forged.json", b"{}", "application/json")) == (
        "StoreAccessDenied"
    )
    assert operator.abort_uploads("", older_than=3600) == 0

    # the API: a file uploaded for a create (in parts), a download link signed with its
    # credentials, a version deleted
    api = policed.store("api")
    uploaded = api.put_once_file(keys.upload("demo-user", "u1", "clip.mp4"), big, "video/mp4")
    assert api.exists(api.key_of(uploaded.uri))
    image = next(a["uri"] for a in result["artifacts"] if a["uri"].endswith(".png"))
    link = api.presign(api.key_of(image), 60)
    assert httpx.get(link).status_code == 200
    assert (
        refused(lambda: api.put_bytes(f"{root}more.json", b"{}", "application/json")) == "StoreAccessDenied"
    )
    catalog = open_catalog()
    doc = catalog.get(uid)
    assert doc is not None
    assert pruning.erase(api, pruning.plan_versions(catalog, api, doc, [1])) >= 3
    assert not api.exists(keys.result_key("image-generation", owner, uid, 1))

    # the operator's cleanup of a deleted resource (deletionPolicy: Delete)
    operator = policed.store("operator")
    removed = sum(operator.delete_prefix(p) for p in keys.resource_roots("image-generation", owner, uid))
    assert removed >= 1  # the temp/ state and what the API left
    assert list(operator.list(keys.temp_root(uid))) == []


def test_a_policy_without_the_housekeeping_is_said_once_and_runs_go_on(
    policed: Policed, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Without s3:ListBucketMultipartUploads and s3:AbortMultipartUpload, the workers' runs store
    their outputs; one line says what is not done and what to grant, not one a run or a prefix."""
    policed.policy(bucket_policy(documented_policies(), without=HOUSEKEEPING))
    policed.act_as("workers")
    with caplog.at_level(logging.WARNING):
        assert offline_run(capsys)[0] == 0
        assert offline_run(capsys)[0] == 0  # its version 2, in the same process
    said = [r.getMessage() for r in caplog.records if "refuses" in r.getMessage()]
    assert len(said) == 1, said
    assert "s3:ListBucketMultipartUploads (AccessDenied)" in said[0] and "lifecycle rule" in said[0]
    # the operator's sweep: refused, said once by whoever catches it, the count 0
    operator = policed.store("operator")
    with pytest.raises(UploadsRefused) as sweep:
        operator.abort_uploads("", older_than=3600)
    assert (sweep.value.code, sweep.value.action) == ("AccessDenied", "s3:ListBucketMultipartUploads")


def test_a_policy_that_lists_uploads_but_may_not_abort_them(policed: Policed) -> None:
    """Listing allowed, aborting refused: refused at once (UploadsRefused), not tried for a minute."""
    policed.policy(bucket_policy(documented_policies(), without=("s3:AbortMultipartUpload",)))
    root = keys.version_roots("image-generation", "alice", "u1", 1)[0]
    policed.root.create_multipart_upload(Bucket=BUCKET, Key=f"{PREFIX}/{root}cut-short.bin")
    with pytest.raises(UploadsRefused) as abort:
        policed.store("workers").abort_uploads(root)
    assert abort.value.action == "s3:AbortMultipartUpload"


# --- the held-out failure: a paid run resumed against a store that refuses the housekeeping ------


def not_implemented(store_client: Any) -> None:
    """The store double of an S3-compatible store without multipart listings: its answer to
    ListMultipartUploads is 501 NotImplemented, everything else the server's."""

    def answer(**_: Any) -> None:
        raise botocore.exceptions.ClientError(
            {
                "Error": {
                    "Code": "NotImplemented",
                    "Message": "A header you provided implies functionality that is not implemented",
                },
                "ResponseMetadata": {"HTTPStatusCode": 501},
            },
            "ListMultipartUploads",
        )

    store_client.meta.events.register("before-call.s3.ListMultipartUploads", answer)


@pytest.mark.parametrize("store_answers", ["AccessDenied", "NotImplemented"])
def test_a_paid_run_resumed_against_a_store_that_refuses_the_housekeeping_stores_its_output(
    policed: Policed,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    store_answers: str,
) -> None:
    """The first run pays fal and cannot store the images (the policy lets the workers write their
    working state, not yet their outputs): they are kept in the provider's checkpoint. Its resume
    meets a store that answers the listing of unfinished uploads with AccessDenied (the docs'
    policy without the housekeeping) or NotImplemented: it stores what was paid for, paying
    nothing again."""
    from contentgen.store import s3 as s3_module

    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    unslept_retries(monkeypatch)
    documents = documented_policies()
    temp_only = json.loads(json.dumps(documents))
    for statement in temp_only["workers"]["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != "s3:PutObject"]
    temp_only["workers"]["Statement"].append(
        {
            "Sid": "StateOnly",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": "arn:aws:s3:::BUCKET/PREFIX/temp/*",
        }
    )
    policed.policy(bucket_policy(temp_only))
    policed.act_as("workers")
    fal = FakeFal()
    with mocked(fal):
        code = main(["run", IMAGES])
    err = capsys.readouterr().err
    assert code == 1 and "StoreAccessDenied" in err and "kept in the provider's checkpoint" in err
    assert (fal.accepted, fal.billed) == (1, 1)

    if store_answers == "AccessDenied":
        policed.policy(bucket_policy(documents, without=HOUSEKEEPING))
    else:
        policed.policy(bucket_policy(documents))
        make = s3_module.s3_client

        def doubled(*args: Any) -> Any:
            made = make(*args)
            not_implemented(made)
            return made

        monkeypatch.setattr(s3_module, "s3_client", doubled)
    with mocked(fal), caplog.at_level(logging.WARNING):
        code = main(["run", "--result", "r.json", IMAGES])
    err = capsys.readouterr().err
    assert code == 0, err
    assert (fal.accepted, fal.billed) == (1, 1)  # stored what was paid for; nothing paid twice
    said = [r.getMessage() for r in caplog.records if "refuses" in r.getMessage()]
    assert len(said) == 1 and f"s3:ListBucketMultipartUploads ({store_answers})" in said[0], said
    result = json.loads((tmp_path / "r.json").read_text())
    images = [
        a["uri"] for a in result["artifacts"] if a["uri"].endswith(".png") and "/thumbs/" not in a["uri"]
    ]
    assert [u.rsplit("/", 1)[1] for u in images] == ["image_1.png", "image_2.png"]
    owner_store = policed.store("operator")
    assert all(owner_store.exists(owner_store.key_of(u)) for u in images)
