"""A real S3 server on this machine: versitygw with its POSIX backend, built from its Go module.

`python -m localcluster.s3server` (what `make s3-server` runs) builds it into servers/bin, once:
again only when servers/versitygw.txt (the module and version, the build's one pin) changes, as a
hash of that file is kept beside the binary. `S3Server(root).start()` runs it on a free port of one
address with one root account; each directory under ROOT is a bucket, each file below it an object
(its metadata in extended attributes). It starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import build, processes
from .ports import free_port

SERVERS = Path(__file__).resolve().parent.parent / "servers"
PIN = SERVERS / "versitygw.txt"
BIN = SERVERS / "bin"
BINARY = BIN / "versitygw"
STAMP = BIN / ".versitygw.pins"


class S3ServerMissing(RuntimeError):
    pass


def module() -> str:
    """The `module/path@version` that servers/versitygw.txt pins."""
    return build.pinned_module(PIN)


def pins() -> str:
    return build.pin_digest(PIN)


def built() -> bool:
    return build.built_from(BINARY, STAMP, PIN)


def build_server() -> None:
    go = build.find_go()
    target = module()
    staging = BIN / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"localcluster: building {target} (minutes on a cold cache)", flush=True)
    subprocess.run(  # noqa: S603 - the pinned module, with the Go found above
        [go, "install", "-trimpath", "-ldflags", f"-s -w -X main.Version={target.rsplit('@', 1)[1]}", target],
        env={**os.environ, "GOBIN": str(staging), "GOFLAGS": "-mod=readonly"},
        check=True,
    )
    (staging / "versitygw").replace(BINARY)
    staging.rmdir()
    STAMP.write_text(pins())
    print(f"localcluster: built in {time.monotonic() - started:.0f} s", flush=True)


def binary() -> Path:
    if not built():
        raise S3ServerMissing(
            f"no S3 server built from {module()}: run `make s3-server` (builds versitygw from its "
            "Go module into local-cluster/servers/bin)"
        )
    return BINARY


def version() -> str:
    out = subprocess.run(  # noqa: S603
        [str(binary()), "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    match = re.search(r"Version\s*:\s*(\S+)", out)
    return match.group(1) if match else "?"


# An access log line: owner, bucket, [time], remote, requester, request id, s3_OPERATION, key, URI,
# status, ...
_ACCESS = re.compile(r"^\S+ \S+ \[[^\]]*\] \S+ \S+ \S+ s3_(\w+) (\S+) \S+ (\d{3}) ", re.MULTILINE)


@dataclass
class S3Server:
    """versitygw serving ROOT on HOST:PORT (a free one when 0) for one account."""

    root: Path
    host: str = "127.0.0.1"
    port: int = 0
    access_key: str = "contentgen"
    secret_key: str = "contentgen-secret"  # noqa: S105 - a local test server's
    region: str = "us-east-1"
    log: Path | None = None
    access_log: Path | None = None  # S3 server access logging: one line per request, with its status
    # More accounts (access key -> secret), each with versitygw's role "user": what a bucket policy
    # naming it as Principal grants, action by action, and nothing else (its internal IAM, kept
    # in ROOT.iam/users.json). The root account is the buckets' owner and is never refused.
    users: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """What an S3 client needs to reach it (boto3's environment variables)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def start(self, timeout: float = 60.0) -> S3Server:
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.host)
        log = (self.log or self.root.parent / f"{self.root.name}.versitygw.log").open("ab")
        iam = self._write_users()
        self.process = subprocess.Popen(  # noqa: S603
            [
                str(binary()),
                "--port",
                f"{self.host}:{self.port}",
                "--quiet",
                *(["--access-log", str(self.access_log)] if self.access_log else []),
                *(["--iam-dir", str(iam)] if iam else []),
                "posix",
                str(self.root),
            ],
            env={
                **os.environ,
                "ROOT_ACCESS_KEY": self.access_key,
                "ROOT_SECRET_KEY": self.secret_key,
                "VGW_REGION": self.region,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self._listening():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"versitygw exited with {self.process.returncode} on {self.host}:{self.port}; "
                    f"see {log.name}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"versitygw did not listen on {self.host}:{self.port} in {timeout:.0f} s")
            time.sleep(0.05)
        return self

    def _write_users(self) -> Path | None:
        if not self.users:
            return None
        iam = self.root.parent / f"{self.root.name}.iam"
        iam.mkdir(parents=True, exist_ok=True)
        accounts = {
            access: {
                "access": access,
                "secret": secret,
                "role": "user",
                "userID": 0,
                "groupID": 0,
                "projectID": 0,
            }
            for access, secret in self.users.items()
        }
        (iam / "users.json").write_text(json.dumps({"accessAccounts": accounts}))
        return iam

    def requests(self) -> list[tuple[str, str, int]]:
        """(operation, key, HTTP status) of every request in the access log so far, oldest first:
        ("PutObject", "k/x.txt", 200); the key is "-" where there is none."""
        if self.access_log is None or not self.access_log.exists():
            return []
        return [
            (m.group(1), m.group(2), int(m.group(3)))
            for m in _ACCESS.finditer(self.access_log.read_text(errors="replace"))
        ]

    def _listening(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds: versitygw waits for its clients' idle
        keep-alive connections to close (ten seconds) before it exits."""
        processes.stop(self.process, grace)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.s3server", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--force", action="store_true", help="build even when the binary is current")
    args = parser.parse_args()
    if args.force or not built():
        build_server()
    print(f"  versitygw  {version()}  ({BINARY})")


if __name__ == "__main__":
    main()
