"""An S3 server that enforces identities and policies: SeaweedFS's S3 gateway with IAM and STS,
built from its Go module.

`python -m localcluster.seaweed` (what `make sts-server` runs) builds SeaweedFS's one binary,
`weed`, into servers/bin, once: again only when servers/seaweedfs.txt (the module and version, the
build's one pin) changes, as a hash of that file is kept beside the binary. The module's go.mod
has replace directives, which `go install module@version` refuses: the module is downloaded into
Go's module cache and `./weed` built in its folder.

`SeaweedServer(root).start()` runs `weed mini` (master, volume server, filer, S3 gateway and its
admin server in one process; the smallest set that serves S3 with IAM and STS, and the one that
is ready soonest) on free ports of one address, its data under ROOT, with:
- one identity, the admin (its access key and secret), which owns every bucket;
- one bucket, made at start;
- STS on the S3 port (`AssumeRole` and the rest, signed with the admin's key) with one role, whose
  policy allows s3:* on that bucket and nothing else, and whose trust policy lets the admin assume
  it; an inline session policy (AssumeRole's `Policy`) then narrows a session to less;
- its access log (each request's operation, key, status and the access key that signed it) sent
  to a Fluentd receiver of ours (fluentlog.py) and kept as JSON lines: `requests()`.
It is ready, a first object written and deleted through S3 by the admin, in about 6 s.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import httpx

from . import build, processes
from .fluentlog import FluentReceiver
from .ports import free_port

SERVERS = Path(__file__).resolve().parent.parent / "servers"
PIN = SERVERS / "seaweedfs.txt"
BIN = SERVERS / "bin"
BINARY = BIN / "weed"
STAMP = BIN / ".weed.pins"
ACCOUNT = "000000000000"  # the account of every ARN the server names (its STS accountId)
# The ports `weed mini` listens on, each given (none left to its defaults: 8333, 9333, ...).
PORTS = ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc")
ADMIN_PORTS = ("admin", "admin.grpc")
# Unix sockets it makes beside its gRPC and HTTP ports, at fixed places, named by port.
SOCKETS = {
    "master.grpc": "master-grpc",
    "volume.grpc": "volume-grpc",
    "filer": "filer",
    "filer.grpc": "filer-grpc",
    "s3": "s3",
    "s3.grpc": "s3-grpc",
    "admin.grpc": "admin-grpc",
}


class SeaweedMissing(RuntimeError):
    pass


def module() -> str:
    """The `module/path@version` that servers/seaweedfs.txt pins."""
    return build.pinned_module(PIN)


def pins() -> str:
    return build.pin_digest(PIN)


def built() -> bool:
    return build.built_from(BINARY, STAMP, PIN)


def build_server() -> None:
    go = build.find_go()
    target = module()
    path, version = target.rsplit("@", 1)
    started = time.monotonic()
    print(f"localcluster: building {target} (./weed; 10 to 20 minutes on a cold cache)", flush=True)
    source = build.module_source(go, target)
    BIN.mkdir(parents=True, exist_ok=True)
    commit = version.rsplit("-", 1)[-1]  # a pseudo-version ends with the commit
    subprocess.run(  # noqa: S603 - the pinned module, with the Go found above
        [
            go,
            "build",
            "-trimpath",
            "-ldflags",
            f"-s -w -X {path}/weed/util/version.COMMIT={commit}",
            "-o",
            str(BINARY) + ".new",
            "./weed",
        ],
        cwd=source,
        env={**os.environ, "GOFLAGS": "-mod=readonly", "CGO_ENABLED": "0", "GOWORK": "off"},
        check=True,
    )
    Path(str(BINARY) + ".new").replace(BINARY)
    STAMP.write_text(pins())
    print(f"localcluster: built in {time.monotonic() - started:.0f} s", flush=True)


def binary() -> Path:
    if not built():
        raise SeaweedMissing(
            f"no SeaweedFS built from {module()}: run `make sts-server` (builds `weed` from its Go "
            "module into local-cluster/servers/bin)"
        )
    return BINARY


def version() -> str:
    out = subprocess.run(  # noqa: S603
        [str(binary()), "version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    match = re.search(r"version \S+ (\S+ \S+)", out)
    return match.group(1) if match else "?"


class Request(NamedTuple):
    """One request of the access log: ("REST.GET.OBJECT", "loras/a/1/v1/x", 403, "AccessDenied",
    "ASIA..."); the key is "" for a bucket's requests (a listing: "REST.GET.BUCKET"), the error ""
    when it succeeded, the access key "" when it was not signed. A session's access key is its
    own (AssumeRole's AccessKeyId), and `principal` its assumed-role ARN, which ends with the
    RoleSessionName."""

    operation: str
    key: str
    status: int
    error: str
    access_key: str
    principal: str


@dataclass
class SeaweedServer:
    """`weed mini` serving S3 with IAM and STS on HOST, its data under ROOT."""

    root: Path
    host: str = "127.0.0.1"
    access_key: str = "contentgen"
    secret_key: str = "contentgen-secret"  # noqa: S105 - a local test server's
    region: str = "us-east-1"
    bucket: str = "contentgen"
    role: str = "contentgen-run"
    admin: str = "contentgen-admin"  # the identity's name; its ARN is `admin_arn`
    # The longest session STS gives (a Go duration): a session's Expiration is cut to it whatever
    # DurationSeconds asked (900 to 43200 s, as AWS).
    max_session: str = "12h"
    log: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    audit: FluentReceiver | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.ports['s3']}"

    @property
    def env(self) -> dict[str, str]:
        """What an S3 client needs to reach it as the admin (boto3's environment variables)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/{self.role}"

    @property
    def admin_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:user/{self.admin}"

    def start(self, timeout: float = 120.0) -> SeaweedServer:
        weed = binary()
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root.parent / f"{self.root.name}.seaweed"
        conf.mkdir(exist_ok=True)
        self.audit = FluentReceiver(conf / "access.jsonl", self.host).start()
        self._write_configs(conf)
        for name in (*PORTS, *ADMIN_PORTS):
            self.ports[name] = self.ports.get(name) or free_port(self.host)
        log = (self.log or conf / "weed.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            [str(weed), "mini", *self._flags(conf)],
            cwd=conf,  # it reads security.toml and filer.toml from its working directory first
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            self._wait_ready(time.monotonic() + timeout, log.name)
        except BaseException:
            self.stop()
            raise
        return self

    def _flags(self, conf: Path) -> list[str]:
        ports = [f"-{_flag(name)}={self.ports[name]}" for name in (*PORTS, *ADMIN_PORTS)]
        return [
            f"-dir={self.root}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            *ports,
            "-admin.port.legacy=0",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",  # on by default: it would post to seaweedfs.com
            f"-bucket={self.bucket}",
            f"-s3.config={conf / 'identities.json'}",
            f"-s3.iam.config={conf / 'iam.json'}",
            f"-s3.auditLogConfig={conf / 'fluent.json'}",
        ]

    def _write_configs(self, conf: Path) -> None:
        assert self.audit is not None
        identities = {
            "identities": [
                {
                    "name": self.admin,
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin"],
                }
            ]
        }
        (conf / "identities.json").write_text(json.dumps(identities, indent=1))
        (conf / "iam.json").write_text(json.dumps(self._iam(), indent=1))
        (conf / "fluent.json").write_text(json.dumps(self.audit.config()))

    def _iam(self) -> dict[str, object]:
        bucket_policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:*"],
                    "Resource": [f"arn:aws:s3:::{self.bucket}", f"arn:aws:s3:::{self.bucket}/*"],
                }
            ],
        }
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": self.admin_arn}, "Action": ["sts:AssumeRole"]}
            ],
        }
        return {
            "sts": {
                "tokenDuration": "1h",
                "maxSessionLength": self.max_session,
                "issuer": "contentgen-tests-sts",
                "signingKey": base64.b64encode(secrets.token_bytes(32)).decode(),
                "accountId": ACCOUNT,
            },
            "policy": {"defaultEffect": "Deny"},
            "policies": [{"name": f"{self.role}-bucket", "document": bucket_policy}],
            "roles": [
                {
                    "roleName": self.role,
                    "roleArn": self.role_arn,
                    "trustPolicy": trust,
                    "attachedPolicies": [f"{self.role}-bucket"],
                }
            ],
        }

    def _wait_ready(self, deadline: float, log: str) -> None:
        """Until the admin writes and deletes an object: the S3 port answers a second or two
        before the first volume is allocated and the filer's lock ring formed (a write waits)."""
        probe = f"/{self.bucket}/.contentgen-ready"
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"weed mini exited with {self.process.returncode} on {self.host}; see {log}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"weed mini did not serve S3 on {self.endpoint} in time; see {log}")
            try:
                if self._signed("PUT", probe, b"ready").status_code == 200:
                    self._signed("DELETE", probe).raise_for_status()
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)

    def _signed(self, method: str, path: str, body: bytes = b"") -> httpx.Response:
        """One request signed as the admin (AWS Signature Version 4, in the Authorization header)."""
        headers = sigv4_headers(
            method,
            f"{self.host}:{self.ports['s3']}",
            path,
            (self.access_key, self.secret_key),
            self.region,
            body,
        )
        return httpx.request(method, self.endpoint + path, headers=headers, content=body, timeout=30)

    def requests(self) -> list[Request]:
        """Every request of the access log so far, oldest first. It is sent a moment after each
        answer: wait for the one looked for."""
        if self.audit is None:
            return []
        return [
            Request(
                str(record.get("operation", "")),
                str(record.get("key", "")),
                int(str(record.get("status", 0))),
                str(record.get("error_code", "")),
                str(record.get("access_key_id", "")),
                str(record.get("requester_arn", "")),
            )
            for record in self.audit.records()
        ]

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM (it stops in about 1.5 s), then SIGKILL after `grace` seconds; and the Unix
        sockets it leaves in /tmp removed (after a SIGKILL they stay)."""
        processes.stop(self.process, grace)
        for name, socket_name in SOCKETS.items():
            if port := self.ports.get(name):
                Path(f"/tmp/seaweedfs-{socket_name}-{port}.sock").unlink(missing_ok=True)  # noqa: S108
        if self.audit is not None:
            self.audit.stop()


def _flag(port: str) -> str:
    """weed mini's flag for a port: "filer.grpc" -> "filer.port.grpc", "s3" -> "s3.port"."""
    service, _, grpc = port.partition(".")
    return f"{service}.port{'.' + grpc if grpc else ''}"


def sigv4_headers(
    method: str, host: str, path: str, keys: tuple[str, str], region: str, body: bytes = b""
) -> dict[str, str]:
    """The headers that sign an S3 request without a query string (AWS Signature Version 4); PATH
    as sent, its characters those that need no escaping."""
    access, secret = keys
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": stamp}
    names = ";".join(sorted(headers))
    canonical = "\n".join(
        [method, path, "", *(f"{name}:{headers[name]}" for name in sorted(headers)), "", names, payload]
    )
    scope = f"{stamp[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret}".encode()
    for part in (stamp[:8], region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={names}, Signature={signature}"
    )
    return headers


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.seaweed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--force", action="store_true", help="build even when the binary is current")
    args = parser.parse_args()
    if args.force or not built():
        build_server()
    print(f"  weed (SeaweedFS)  {version()}  ({BINARY})")


if __name__ == "__main__":
    main()
