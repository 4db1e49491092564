"""`python -m localcluster.mongowire` (what `make mongo-server` runs): a MongoDB-wire server for
the catalog tests, FerretDB 1.x with its SQLite backend, built from its Go module and reused.

FerretDB speaks MongoDB's wire protocol and refuses what a MongoDB server refuses (a document over
16 MiB, a duplicate _id), so the catalog suite meets a real server. It is not a concurrency
reference: FerretDB 1.x checks an update's filter on a read and then writes by _id, so two
conditional replaces of one document can both succeed (tests/README.md).

The module zip lacks build/version/version.txt (git describe writes it in FerretDB's own
builds), so the source is copied to a writable folder, the file written, and
`go build ./cmd/ferretdb` run there: no build tags (a release build: not ferretdb_debug; the
SQLite backend is always compiled in). The binary goes into servers/bin, with a stamp naming the
version; it is built again only when FERRETDB_VERSION changes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import processes
from .build import find_go, module_source
from .ports import free_port

MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = "v1.24.2"  # the last 1.x the Go proxy serves; 2.x needs PostgreSQL with DocumentDB
SERVERS = Path(__file__).resolve().parent.parent / "servers"
BIN = SERVERS / "bin"
FERRETDB = BIN / "ferretdb"
STAMP = BIN / ".ferretdb-version"
START_DEADLINE_S = 60.0  # a loaded 2-core machine; it starts in well under a second on a quiet one


def built() -> bool:
    return FERRETDB.exists() and STAMP.exists() and STAMP.read_text().strip() == FERRETDB_VERSION


def build() -> Path:
    go = find_go()
    started = time.monotonic()
    print(
        f"mongowire: building FerretDB {FERRETDB_VERSION} from its Go module (minutes on a cold cache)",
        flush=True,
    )
    source = module_source(go, f"{MODULE}@{FERRETDB_VERSION}")
    BIN.mkdir(parents=True, exist_ok=True)
    work = SERVERS / "build" / f"ferretdb-{FERRETDB_VERSION}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, work)
    for folder, _, files in os.walk(work):  # the module cache is read-only
        os.chmod(folder, 0o700)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o600)
    version = work / "build" / "version"
    (version / "version.txt").write_text(FERRETDB_VERSION + "\n")
    (version / "package.txt").write_text("contentgen-tests\n")
    subprocess.run(  # noqa: S603
        [go, "build", "-trimpath", "-o", str(FERRETDB) + ".new", "./cmd/ferretdb"],
        cwd=work,
        env={**os.environ, "GOFLAGS": "-mod=readonly"},
        check=True,
    )
    Path(str(FERRETDB) + ".new").replace(FERRETDB)
    STAMP.write_text(FERRETDB_VERSION + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"mongowire: built {FERRETDB} in {time.monotonic() - started:.0f} s", flush=True)
    return FERRETDB


def ensure() -> Path:
    """The FerretDB binary, built when missing or of another version."""
    return FERRETDB if built() else build()


@dataclass
class Server:
    """A running FerretDB on host:port, its SQLite files in `data`."""

    process: subprocess.Popen[bytes]
    port: int
    data: Path
    log: Path
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"mongodb://{self.host}:{self.port}/"

    def stop(self) -> None:
        processes.stop(self.process, 30)


def start(data: Path, binary: Path | None = None, host: str = "127.0.0.1") -> Server:
    """Start FerretDB on a free port of `host` (a local cluster's host IP, where its pods reach
    it) with its SQLite files (and log) in `data`; return once it accepts connections (SystemExit
    with its log's tail when it does not, or exits)."""
    binary = binary or ensure()
    data.mkdir(parents=True, exist_ok=True)
    port = free_port(host)
    log = data / "ferretdb.log"
    command = [
        str(binary),
        "--handler=sqlite",
        f"--sqlite-url=file:{data}/",
        f"--state-dir={data}",
        f"--listen-addr={host}:{port}",
        "--debug-addr=-",
        "--telemetry=disable",
        "--log-level=warn",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    server = Server(process, port, data, log, host)
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            socket.create_connection((host, port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    tail = log.read_text(errors="replace")[-2000:]
    raise SystemExit(f"mongowire: FerretDB did not accept connections on port {port}:\n{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.mongowire", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--force", action="store_true", help="build even when the binary is current")
    args = parser.parse_args()
    binary = build() if args.force else ensure()
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    first = (version.stdout or version.stderr).strip().splitlines()
    print(f"  ferretdb {FERRETDB_VERSION}  ({binary})  {first[0] if first else ''}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
