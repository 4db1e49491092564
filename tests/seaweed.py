"""The S3 server of the tests that enforces identities and policies: SeaweedFS's S3 gateway with
IAM and STS (`make sts-server`; localcluster/seaweed.py), over HTTP on localhost. Its admin holds
the long-lived key; `session()` asks its STS for a role session narrowed by an inline session
policy and returns an S3 client that signs with the temporary credentials, as a worker would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from localcluster.seaweed import SeaweedServer

CONFIG = Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1})


@contextmanager
def sts_server(root: Path, **options: Any) -> Iterator[SeaweedServer]:
    """Start `weed mini` with IAM and STS on free ports of 127.0.0.1, its data under ROOT."""
    server = SeaweedServer(root, **options).start()
    try:
        yield server
    finally:
        server.stop()


def admin(server: SeaweedServer, service: str = "s3") -> Any:
    """A boto3 client (s3 or sts) signing with the admin's long-lived key."""
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=CONFIG,
    )


@dataclass
class Session:
    """A role session: its credentials (AssumeRole's answer) and an S3 client signing with them."""

    credentials: dict[str, Any]
    arn: str
    client: Any

    @property
    def access_key(self) -> str:
        return str(self.credentials["AccessKeyId"])


def session(server: SeaweedServer, policy: dict[str, Any] | None, name: str, seconds: int = 900) -> Session:
    """AssumeRole of the server's role as its admin, with `policy` as the inline session policy."""
    asked: dict[str, Any] = {"RoleArn": server.role_arn, "RoleSessionName": name, "DurationSeconds": seconds}
    if policy is not None:
        asked["Policy"] = json.dumps(policy)
    answer = admin(server, "sts").assume_role(**asked)
    credentials = answer["Credentials"]
    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=CONFIG,
    )
    return Session(credentials, answer["AssumedRoleUser"]["Arn"], client)


def run_policy(
    bucket: str, inputs: list[str], prefixes: list[str], condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A run's session policy: read its inputs' exact keys; read, write, delete and finish or abort
    uploads under its own prefixes (each ends with '/'); list only there. `condition`, where
    given, on every statement."""
    arn = f"arn:aws:s3:::{bucket}"
    statements: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": [f"{arn}/{prefix}*" for prefix in prefixes],
        },
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [arn],
            "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}},
        },
    ]
    if inputs:
        statements.insert(
            0,
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"{arn}/{key}" for key in inputs]},
        )
    for statement in statements:
        statement["Condition"] = {**statement.get("Condition", {}), **(condition or {})}
        if not statement["Condition"]:
            del statement["Condition"]
    return {"Version": "2012-10-17", "Statement": statements}


def error_code(call: Any) -> str:
    """The S3 error code `call()` is answered with ("" when it succeeds)."""
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as exc:
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""
