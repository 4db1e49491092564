"""A run's credentials on an S3 server that enforces policies: SeaweedFS's S3 gateway with IAM and
STS (tests/seaweed.py). The operator's long-lived key asks STS for a role session narrowed by an
inline session policy (tests/seaweed.py `run_policy`: the inputs' exact keys, the run's own
prefixes); the worker signs with the temporary credentials. What the server grants and refuses
such a session, and what its access log records of it, are proved here; the same of the
project's S3 adapter in test_sts_store.py."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.config import Config

from localcluster.seaweed import SeaweedServer
from tests.seaweed import Session, admin, error_code, run_policy, session, sts_server
from tests.waiting import wait_for

PART = 5 * 1024 * 1024  # S3's smallest part but the last


@pytest.fixture
def owners(sts_server: SeaweedServer) -> dict[str, str]:
    """Owner A's outputs (a LoRA and a picture beside it) made by the admin, and the prefixes of
    one run of owner B, unique to the test."""
    a, b = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    keys = {
        "lora": f"loras/owner-a/{a}/v1/model.safetensors",
        "picture": f"loras/owner-a/{a}/v1/likeness.png",
        "own": f"generated-images/owner-b/{b}/v1/",
        "temp": f"temp/{b}/",
        "a": f"loras/owner-a/{a}/",
    }
    s3 = admin(sts_server)
    s3.put_object(Bucket=sts_server.bucket, Key=keys["lora"], Body=b"owner A's weights")
    s3.put_object(Bucket=sts_server.bucket, Key=keys["picture"], Body=b"owner A's picture")
    return keys


def run_session(server: SeaweedServer, keys: dict[str, str], inputs: list[str] | None = None) -> Session:
    policy = run_policy(server.bucket, inputs or [], [keys["own"], keys["temp"]])
    return session(server, policy, f"run-{keys['own'].split('/')[2]}")


def test_a_session_reads_writes_lists_and_deletes_under_its_own_prefixes(
    sts_server: SeaweedServer, owners: dict[str, str]
) -> None:
    s3, bucket = run_session(sts_server, owners).client, sts_server.bucket
    for prefix in (owners["own"], owners["temp"]):
        s3.put_object(Bucket=bucket, Key=f"{prefix}image_1.png", Body=b"pixels")
        assert s3.get_object(Bucket=bucket, Key=f"{prefix}image_1.png")["Body"].read() == b"pixels"
        assert s3.head_object(Bucket=bucket, Key=f"{prefix}image_1.png")["ContentLength"] == 6
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        assert [item["Key"] for item in listed["Contents"]] == [f"{prefix}image_1.png"]
        s3.delete_object(Bucket=bucket, Key=f"{prefix}image_1.png")
        assert s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["KeyCount"] == 0


def test_a_session_is_refused_another_owners_keys_and_the_log_says_so(
    sts_server: SeaweedServer, owners: dict[str, str]
) -> None:
    run = run_session(sts_server, owners)
    s3, bucket, lora = run.client, sts_server.bucket, owners["lora"]
    refusals = {
        "read": lambda: s3.get_object(Bucket=bucket, Key=lora),
        "write": lambda: s3.put_object(Bucket=bucket, Key=lora, Body=b"replaced"),
        "write beside": lambda: s3.put_object(Bucket=bucket, Key=f"{owners['a']}v2/x", Body=b"x"),
        "delete": lambda: s3.delete_object(Bucket=bucket, Key=lora),
        "list": lambda: s3.list_objects_v2(Bucket=bucket, Prefix=owners["a"]),
        "list the bucket": lambda: s3.list_objects_v2(Bucket=bucket),
        "list a parent": lambda: s3.list_objects_v2(
            Bucket=bucket, Prefix=owners["own"].rsplit("/", 3)[0] + "/"
        ),
        "copy into its own": lambda: s3.copy_object(
            Bucket=bucket, Key=f"{owners['own']}copy", CopySource={"Bucket": bucket, "Key": lora}
        ),
        "start an upload": lambda: s3.create_multipart_upload(Bucket=bucket, Key=lora),
        "make a bucket": lambda: s3.create_bucket(Bucket=f"b-{uuid.uuid4().hex[:8]}"),
    }
    assert {what: error_code(call) for what, call in refusals.items()} == dict.fromkeys(
        refusals, "AccessDenied"
    )
    assert error_code(lambda: s3.head_object(Bucket=bucket, Key=lora)) == "403"  # a HEAD has no body
    # A batch delete answers 200 with each key's refusal inside; the object stays.
    batch = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": lora}]})
    assert [(e["Key"], e["Code"]) for e in batch["Errors"]] == [(lora, "AccessDenied")]
    assert admin(sts_server).get_object(Bucket=bucket, Key=lora)["Body"].read() == b"owner A's weights"

    def by_run_on_a() -> list[tuple[str, int, str]]:
        return [
            (r.operation, r.status, r.error)
            for r in sts_server.requests()
            if r.access_key == run.access_key and r.key.startswith(owners["a"])
        ]

    # The log names the session's own access key (AssumeRole's) and its role session's ARN.
    wait_for(lambda: len(by_run_on_a()) >= 6, 30, lambda: f"the run's requests in the log: {by_run_on_a()}")
    assert {status for _, status, _ in by_run_on_a()} == {403}
    assert ("REST.GET.OBJECT", 403, "AccessDenied") in by_run_on_a()
    assert {r.principal for r in sts_server.requests() if r.access_key == run.access_key} == {run.arn}


def test_only_the_inputs_exact_keys_are_readable(sts_server: SeaweedServer, owners: dict[str, str]) -> None:
    s3, bucket = run_session(sts_server, owners, inputs=[owners["lora"]]).client, sts_server.bucket
    admin(sts_server).put_object(Bucket=bucket, Key=owners["lora"] + ".bak", Body=b"a longer key")
    assert s3.get_object(Bucket=bucket, Key=owners["lora"])["Body"].read() == b"owner A's weights"
    beside = [owners["lora"] + ".bak", owners["picture"]]
    assert [error_code(lambda key=key: s3.get_object(Bucket=bucket, Key=key)) for key in beside] == [
        "AccessDenied",
        "AccessDenied",
    ]
    assert error_code(lambda: s3.list_objects_v2(Bucket=bucket, Prefix=owners["lora"])) == "AccessDenied"
    assert error_code(lambda: s3.put_object(Bucket=bucket, Key=owners["lora"], Body=b"x")) == "AccessDenied"


def test_a_multipart_upload_within_the_prefix_and_none_outside(
    sts_server: SeaweedServer, owners: dict[str, str]
) -> None:
    s3, bucket, key = run_session(sts_server, owners).client, sts_server.bucket, f"{owners['own']}model.bin"

    def upload(if_absent: bool) -> str:
        started = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        tags = [
            s3.upload_part(Bucket=bucket, Key=key, UploadId=started, PartNumber=n, Body=body)["ETag"]
            for n, body in ((1, b"a" * PART), (2, b"b"))
        ]
        listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=started)["Parts"]
        assert [part["PartNumber"] for part in listed] == [1, 2]
        parts = [{"PartNumber": n, "ETag": tag} for n, tag in enumerate(tags, 1)]
        return error_code(
            lambda: s3.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=started,
                MultipartUpload={"Parts": parts},
                **({"IfNoneMatch": "*"} if if_absent else {}),
            )
        )

    assert upload(if_absent=True) == ""
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == PART + 1
    assert upload(if_absent=True) == "PreconditionFailed"  # the object is written once
    aborted = s3.create_multipart_upload(Bucket=bucket, Key=f"{owners['temp']}part")["UploadId"]
    s3.abort_multipart_upload(Bucket=bucket, Key=f"{owners['temp']}part", UploadId=aborted)
    theirs = admin(sts_server).create_multipart_upload(Bucket=bucket, Key=owners["lora"])["UploadId"]
    refused = {
        "list its parts": lambda: s3.list_parts(Bucket=bucket, Key=owners["lora"], UploadId=theirs),
        "abort it": lambda: s3.abort_multipart_upload(Bucket=bucket, Key=owners["lora"], UploadId=theirs),
        "add a part": lambda: s3.upload_part(
            Bucket=bucket, Key=owners["lora"], UploadId=theirs, PartNumber=1, Body=b"x"
        ),
        "list uploads": lambda: s3.list_multipart_uploads(Bucket=bucket, Prefix=owners["own"]),
    }
    assert {what: error_code(call) for what, call in refused.items()} == dict.fromkeys(
        refused, "AccessDenied"
    )


def test_presigned_links_made_with_session_credentials_obey_its_policy(
    sts_server: SeaweedServer, owners: dict[str, str]
) -> None:
    s3, bucket, own = run_session(sts_server, owners).client, sts_server.bucket, f"{owners['own']}x.png"

    def link(method: str, key: str) -> str:
        return str(s3.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600))

    assert httpx.put(link("put_object", own), content=b"pixels").status_code == 200
    assert httpx.get(link("get_object", own)).content == b"pixels"
    for method, key in (("get_object", owners["lora"]), ("put_object", owners["picture"])):
        answer = httpx.request("GET" if method == "get_object" else "PUT", link(method, key), content=b"x")
        assert answer.status_code == 403 and "<Code>AccessDenied</Code>" in answer.text, answer.text
    assert (
        admin(sts_server).get_object(Bucket=bucket, Key=owners["picture"])["Body"].read()
        == b"owner A's picture"
    )


def test_a_time_condition_on_aws_current_time_grants_nothing_here(
    sts_server: SeaweedServer, owners: dict[str, str]
) -> None:
    """SeaweedFS does not put aws:CurrentTime (nor aws:EpochTime) in the context its IAM policies
    are evaluated in: a Date condition on it is never met, so a statement carrying one grants
    nothing, even inside its window (it fails closed). A session's end is its Expiration here."""
    s3, bucket = admin(sts_server), sts_server.bucket
    s3.put_object(Bucket=bucket, Key=f"{owners['own']}x", Body=b"x")
    hour = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = {
        "none": None,
        "DateLessThan in an hour": {"DateLessThan": {"aws:CurrentTime": hour}},
        "DateGreaterThan 2020": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
    }
    answers = {}
    for name, condition in conditions.items():
        policy = run_policy(bucket, [], [owners["own"]], condition)
        client = session(sts_server, policy, "run-window").client
        answers[name] = error_code(lambda c=client: c.get_object(Bucket=bucket, Key=f"{owners['own']}x"))
    assert answers == {
        "none": "",
        "DateLessThan in an hour": "AccessDenied",
        "DateGreaterThan 2020": "AccessDenied",
    }


def test_assume_role_takes_what_aws_takes_and_refuses_the_rest(
    sts_server: SeaweedServer, owners: dict[str, str]
) -> None:
    sts = admin(sts_server, "sts")
    raw = _sts_unvalidated(sts_server)  # boto3 itself refuses what these send
    role, name = sts_server.role_arn, "run-params"
    answer = sts.assume_role(
        RoleArn=role,
        RoleSessionName=name,
        DurationSeconds=900,
        Policy=json.dumps(run_policy(sts_server.bucket, [], [owners["own"]])),
    )
    assert (
        answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::000000000000:assumed-role/{sts_server.role}/{name}"
    )
    assert answer["Credentials"]["AccessKeyId"].startswith("ASIA")
    left = answer["Credentials"]["Expiration"] - datetime.now(UTC)
    assert timedelta(seconds=850) < left <= timedelta(seconds=900)
    errors = {
        "899 s": lambda: raw.assume_role(RoleArn=role, RoleSessionName=name, DurationSeconds=899),
        "43201 s": lambda: raw.assume_role(RoleArn=role, RoleSessionName=name, DurationSeconds=43201),
        "a role that trusts not the caller": lambda: sts.assume_role(
            RoleArn="arn:aws:iam::000000000000:role/another", RoleSessionName=name
        ),
        "a policy over 2048 characters": lambda: sts.assume_role(
            RoleArn=role,
            RoleSessionName=name,
            Policy=json.dumps(run_policy(sts_server.bucket, ["k" * 2100], [])),
        ),
        "a policy that is no JSON": lambda: sts.assume_role(RoleArn=role, RoleSessionName=name, Policy="{no"),
        "a session name of one character": lambda: raw.assume_role(RoleArn=role, RoleSessionName="x"),
    }
    assert {what: error_code(call) for what, call in errors.items()} == {
        "899 s": "InvalidParameterValue",
        "43201 s": "InvalidParameterValue",
        "a role that trusts not the caller": "AccessDenied",
        "a policy over 2048 characters": "MalformedPolicyDocument",
        "a policy that is no JSON": "MalformedPolicyDocument",
        "a session name of one character": "InvalidParameterValue",
    }
    # Without a session policy a session holds the role's own: the whole bucket, and no other.
    whole = session(sts_server, None, "run-whole").client
    assert (
        whole.get_object(Bucket=sts_server.bucket, Key=owners["lora"])["Body"].read() == b"owner A's weights"
    )
    other = f"other-{uuid.uuid4().hex[:8]}"
    admin(sts_server).create_bucket(Bucket=other)
    admin(sts_server).put_object(Bucket=other, Key="x", Body=b"x")
    assert error_code(lambda: whole.get_object(Bucket=other, Key="x")) == "AccessDenied"
    assert error_code(lambda: whole.put_object(Bucket=other, Key="y", Body=b"y")) == "AccessDenied"
    assert [found["Name"] for found in whole.list_buckets()["Buckets"]] == [sts_server.bucket]


def _sts_unvalidated(server: SeaweedServer) -> Any:
    import boto3

    return boto3.client(
        "sts",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )


def test_a_session_stops_working_at_its_expiration(tmp_path: Path) -> None:
    """A server whose STS gives sessions of 3 s at most (its sts.maxSessionLength; AssumeRole's
    DurationSeconds is 900 s at least): the Expiration it answers is cut to that, and past it the
    session's signed requests and presigned links are refused (InvalidAccessKeyId)."""
    with sts_server(tmp_path / "root", max_session="3s") as server:
        key = "generated-images/owner-b/1/v1/x.png"
        admin(server).put_object(Bucket=server.bucket, Key=key, Body=b"pixels")
        run = session(server, run_policy(server.bucket, [], ["generated-images/owner-b/1/"]), "run-brief")
        expiration = run.credentials["Expiration"]
        assert expiration <= datetime.now(UTC) + timedelta(seconds=4)
        link = run.client.generate_presigned_url(
            "get_object", Params={"Bucket": server.bucket, "Key": key}, ExpiresIn=600
        )
        assert run.client.get_object(Bucket=server.bucket, Key=key)["Body"].read() == b"pixels"
        wait_for(
            lambda: datetime.now(UTC) > expiration + timedelta(seconds=1), 30, "the session's expiration"
        )
        assert (
            error_code(lambda: run.client.get_object(Bucket=server.bucket, Key=key)) == "InvalidAccessKeyId"
        )
        answer = httpx.get(link)
        assert answer.status_code == 403 and "<Code>InvalidAccessKeyId</Code>" in answer.text, answer.text
