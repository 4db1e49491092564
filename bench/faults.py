"""Faults (`make bench-faults`, issue 48): the operator, installed by its chart with two replicas
(a Deployment, Lease-elected), keeps every run converging while the store, the API server, the
catalog or a webhook receiver is away, one fault at a time, with runs in flight.

The cluster is the local cluster (the real kube-apiserver, controller-manager and scheduler, and
the real node: the operator's and the worker's images, each with a test layer that relays fal's
hosts to the fake, under a kubelet, containerd and runc, with pod networking); the store is versitygw (its
access log read for every write), the catalog FerretDB (MongoDB's wire), both on the cluster's
host address where pods reach them; fal is its fake (tests/providers/fake_fal.py, fal's documented
protocol, counting the requests it bills) behind tests/kube/fal_relay.py, as the operator's tests
run it; a webhook receiver on the host records each delivery by its event id.

Each scenario has its own namespace and owner, and these runs in flight: offline
ImageGenerations, paid ImageGenerations on the fal fake, and a paid VideoGeneration whose video
(720p noise, about 30 MB) is stored in a multipart upload. Then one fault:

- s3-away: versitygw stopped for 60 s once a worker runs (longer than a Job's pods retry), then
  started again on its port;
- s3-killed: versitygw SIGKILLed once the video's multipart upload has begun, back after 20 s;
- apiserver: kube-apiserver stopped for 30 s once a worker runs;
- catalog: FerretDB stopped for 90 s once a worker runs, one resource deleted and another edited
  (a new seed: a new generation) meanwhile;
- webhook: the receiver of a Notification down for 3 minutes while the runs finish.

Then, from the fault's end, it waits for every run to converge: Succeeded, or Failed with a reason
and a one-line message, its catalog record saying the same (a deleted resource's record marked
deleted, an edited one's at the new generation) and, for the webhook, every event delivered. It
counts: outputs lost (a Succeeded run's image or video missing from the store), objects written
twice (more than one successful PutObject or CompleteMultipartUpload of a key), fal requests paid
twice (more than one billed request for a run's prompt), paid runs whose actual cost is missing
from the status or the catalog, multipart uploads left open, tracebacks in both operator pods'
logs, webhook events delivered twice, and the events' delay after the receiver is back. The
benchmark fails (exit 1) when a run does not converge within its scenario's bound, or any of those
counts is not 0. Results go to bench/out/faults.json; `--docs` writes the table into
docs/performance.md.

    .venv/bin/python -m bench.faults [--scenarios s3-away,...] [--offline 3] [--paid 2] [--large 1] [--docs]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "faults.json"
DOCS = ROOT / "docs" / "performance.md"
OPERATOR_NS = "contentgen"
BUCKET = "contentgen-faults"
API = "/apis/contentgen.io/v1alpha1"

# Seconds after the fault's end within which every run of the scenario must have converged (and,
# for the webhook, every event been delivered). The webhook's: a retry drawn while the receiver was
# down waits up to its step (5 min after the second attempt), unless a delivery to the receiver
# succeeds first and brings it forward.
BOUNDS: dict[str, float] = {
    "s3-away": 120.0,
    "s3-killed": 120.0,
    "apiserver": 120.0,
    "catalog": 120.0,
    "webhook": 330.0,
}
SCENARIOS = tuple(BOUNDS)
WHAT = {
    "s3-away": "S3 stopped 60 s during uploads",
    "s3-killed": "S3 SIGKILLed mid-multipart, back after 20 s",
    "apiserver": "kube-apiserver stopped 30 s",
    "catalog": "catalog down 90 s, a delete and an edit meanwhile",
    "webhook": "webhook receiver down 3 min",
}
S3_AWAY_S, S3_KILLED_S, APISERVER_S, CATALOG_S, RECEIVER_S = 60.0, 20.0, 30.0, 90.0, 180.0
WRITES = ("PutObject", "CompleteMultipartUpload")


# --- decisions (pure) -----------------------------------------------------------------------------


def ready_condition(status: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})


def converged(obj: dict[str, Any]) -> bool:
    """Succeeded at its current generation, or Failed there with a reason and a one-line message."""
    status = obj.get("status") or {}
    if int(status.get("observedGeneration") or 0) != int(obj["metadata"].get("generation") or 0):
        return False
    phase = status.get("phase")
    if phase == "Succeeded":
        return True
    if phase != "Failed":
        return False
    ready = ready_condition(status)
    message = str(ready.get("message") or status.get("message") or "")
    return bool(ready.get("reason")) and bool(message.strip()) and "\n" not in message.strip()


def record_agrees(obj: dict[str, Any] | None, record: dict[str, Any] | None) -> bool:
    """The catalog's record says what the resource says: a deleted resource (obj None) marked
    deleted; otherwise its latest run at the resource's generation and phase."""
    if record is None:
        return False
    if obj is None:
        return bool(record.get("deleted"))
    run = record.get("latestRun") or {}
    status = obj.get("status") or {}
    return int(run.get("generation") or 0) == int(obj["metadata"].get("generation") or 0) and run.get(
        "phase"
    ) == status.get("phase")


def written_twice(requests: Iterable[tuple[str, str, int]]) -> dict[str, int]:
    """Keys with more than one successful write (PutObject, CompleteMultipartUpload) in the S3
    server's access log: a conditional create refused (412) is no write. A run's working state
    under the store's temp/ (the provider checkpoint: the intent to submit, then the request id,
    then the paid outputs' URLs) is rewritten by design, and is no output."""
    writes = Counter(
        key for op, key, code in requests if op in WRITES and 200 <= code < 300 and "/temp/" not in f"/{key}"
    )
    return {key: n for key, n in writes.items() if n > 1}


def paid_twice(billed_prompts: Iterable[str]) -> dict[str, int]:
    """Prompts (one per run) that fal billed more than once."""
    return {p: n for p, n in Counter(billed_prompts).items() if n > 1}


def output_uris(obj: dict[str, Any]) -> list[str]:
    """The stored outputs a Succeeded resource's status names (its images, its video)."""
    status = obj.get("status") or {}
    uris = [str(i.get("uri")) for i in status.get("images") or [] if i.get("uri")]
    video = status.get("video") or {}
    if isinstance(video, dict) and video.get("uri"):
        uris.append(str(video["uri"]))
    return uris


def cost_recorded(obj: dict[str, Any], record: dict[str, Any] | None) -> bool:
    """A paid run that succeeded has its estimate and its actual cost in the status, its actual
    cost in the catalog's record, and the run its version and start (a status that never got its
    start's write has none of them)."""
    status = obj.get("status") or {}
    cost = status.get("cost") or {}
    in_record = ((record or {}).get("cost") or {}).get("actualUsd")
    return (
        float(cost.get("actualUsd") or 0) > 0
        and float(cost.get("estimatedUsd") or 0) > 0
        and in_record is not None
        and float(in_record) > 0
        and int(status.get("runVersion") or 0) > 0
        and bool(status.get("startedAt"))
    )


def problems(result: dict[str, Any]) -> list[str]:
    """Why a scenario's result fails the benchmark (none: it passes)."""
    found = []
    if result["unconverged"]:
        found.append(
            f"{len(result['unconverged'])} runs did not converge: {', '.join(result['unconverged'])}"
        )
    if result["lag_s"] > result["bound_s"]:
        found.append(
            f"a run converged {result['lag_s']:.0f} s after the later of the fault's end and its Job's "
            f"end, over the bound {result['bound_s']:.0f} s"
        )
    delay = result.get("event_delay_s")
    if delay is not None and delay > result["bound_s"]:
        found.append(f"events delivered {delay:.0f} s after the receiver was back, over its bound")
    for count in COUNTS:
        if result[count]:
            found.append(f"{count.replace('_', ' ')}: {result[count]}")
    return found


COUNTS = (
    "lost_outputs",
    "written_twice",
    "paid_twice",
    "costs_missing",
    "open_uploads",
    "tracebacks",
    "events_delivered_twice",
    "events_missing",
)


def job_ends(jobs: dict[str, Any] | None) -> dict[str, str]:
    """When each run's newest Job ended (its completionTime, or its Failed condition's time: as the
    operator reads it), by the uid of the resource it runs."""
    from contentgen.controller.observe import job_state

    states = [state for job in (jobs or {}).get("items") or [] if (state := job_state(job)) is not None]
    newest = {state.uid: state for state in sorted(states, key=lambda state: state.generation)}
    return {uid: state.finished_at for uid, state in newest.items() if state.finished_at}


def timeline(
    objs: dict[str, dict[str, Any] | None], ends: dict[str, str], done_at: dict[str, float], ended: float
) -> dict[str, dict[str, float | None]]:
    """Per run, seconds after the fault's end (negative: before it) at which its Job started
    (status.startedAt) and ended (the Job's own completion or failure time), and the run converged;
    and the operator's lag: how long after the later of the fault's end and the Job's end the run
    converged. A Job that was held up by the fault (its pod could not be created nor report while
    the API server was away) still runs its own course after it: that time is the worker's, not
    the operator's, and grows with the machine's load."""
    wall_end = time.time() - (time.monotonic() - ended)

    def since(stamp: object) -> float | None:
        from contentgen.api import parse_timestamp

        when = parse_timestamp(stamp)
        return None if when is None else round(when.timestamp() - wall_end, 1)

    lines: dict[str, dict[str, float | None]] = {}
    for name, obj in objs.items():
        uid = ((obj or {}).get("metadata") or {}).get("uid", "")
        job_end = since(ends.get(uid))
        converged = round(done_at[name] - ended, 1) if name in done_at else None
        lag = None if converged is None else round(converged - max(0.0, job_end or 0.0), 1)
        lines[name] = {
            "started": since(((obj or {}).get("status") or {}).get("startedAt")),
            "job_ended": job_end,
            "converged": converged,
            "lag": lag,
        }
    return lines


def markdown(results: list[dict[str, Any]], load: str, when: str) -> str:
    """The docs' table: one row per scenario."""
    head = (
        "| fault | runs (ok / failed) | converged after the fault's end | after the fault and the run's Job "
        "| bound | not converged | lost "
        "| written twice | paid twice | costs missing | open uploads | tracebacks | events twice "
        "| event delay |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    rows = []
    for r in results:
        failed = ", ".join(f"{n} {reason}" for reason, n in sorted(r["failed_reasons"].items()))
        delay = f"{r['event_delay_s']:.0f} s" if r.get("event_delay_s") is not None else ""
        deleted = f", {len(r['deleted'])} deleted" if r.get("deleted") else ""
        runs = f"{r['runs']} ({r['succeeded']} / {r['failed']}{': ' + failed if failed else ''}{deleted})"
        rows.append(
            f"| {WHAT[r['scenario']]} | {runs} "
            f"| {r['converged_s']:.0f} s | {r['lag_s']:.0f} s | {r['bound_s']:.0f} s "
            f"| {len(r['unconverged'])} "
            f"| {r['lost_outputs']} | {r['written_twice']} "
            f"| {r['paid_twice']} | {r['costs_missing']} | {r['open_uploads']} | {r['tracebacks']} "
            f"| {r['events_delivered_twice']} | {delay} |"
        )
    verdict = "passed" if all(not r["problems"] for r in results) else "FAILED"
    return f"{when}, {WHERE}, load average {load}: {verdict}.\n\n" + head + "\n".join(rows) + "\n"


WHERE = "on the real node (the images under a kubelet, containerd and runc, pod networking)"
MARK_START, MARK_END = "<!-- faults:start -->", "<!-- faults:end -->"


def with_table(page: str, table: str) -> str:
    """docs/performance.md with the table between its markers (the section made when missing)."""
    block = f"{MARK_START}\n{table}{MARK_END}"
    if MARK_START in page and MARK_END in page:
        return re.sub(re.escape(MARK_START) + r".*?" + re.escape(MARK_END), lambda _: block, page, flags=re.S)
    return (
        page.rstrip("\n")
        + "\n\n## Faults (issue 48)\n\n`make bench-faults` (bench/faults.py).\n\n"
        + block
        + "\n"
    )


# --- the world: the cluster, the store, the catalog, fal, a receiver ----------------------------------


@dataclass
class Receiver:
    """A webhook receiver on HOST:PORT that records each delivery (its webhook-id, when) and
    answers 204; it can be stopped and started again on the same port."""

    host: str
    port: int = 0
    deliveries: list[tuple[str, float]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.deliveries.append((self.headers.get("webhook-id", ""), time.monotonic()))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@dataclass
class Catalog:
    """FerretDB on HOST:PORT with its files in DATA; stopped and started again on the same port."""

    data: Path
    host: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/contentgen"

    def start(self) -> Catalog:
        from localcluster import mongowire
        from localcluster.ports import free_port

        self.data.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.host)
        with (self.data / "ferretdb.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(mongowire.ensure()),
                    "--handler=sqlite",
                    f"--sqlite-url=file:{self.data}/",
                    f"--state-dir={self.data}",
                    f"--listen-addr={self.host}:{self.port}",
                    "--debug-addr=-",
                    "--telemetry=disable",
                    "--log-level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait(lambda: listening(self.host, self.port), 60, "FerretDB")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


def listening(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait(check: Callable[[], Any], seconds: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if value := check():
                return value
        except Exception:
            pass
        time.sleep(every)
    raise TimeoutError(f"{what} not within {seconds:.0f} s")


def noise_video(frames: int, fps: int, width: int, height: int, seed: int) -> bytes:
    """A real H.264 MP4 of noise (incompressible: about 1 MB a 720p frame)."""
    import av
    import numpy as np

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "video.mp4"
        with av.open(str(path), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"preset": "ultrafast", "crf": "18"}
            for _ in range(frames):
                image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return path.read_bytes()


def large_video_fal() -> Any:
    """The fal fake whose video apps deliver noise: a video too large for one PutObject."""
    from tests.providers import fake_fal_video as video
    from tests.providers.fake_fal import VIDEO_APPS, FakeFal

    class LargeVideoFal(FakeFal):
        def _output(self, job: Any) -> dict[str, Any]:
            if job.app not in VIDEO_APPS:
                return super()._output(job)
            frames, fps, width, height = video.shape(job.app, job.arguments, self.variant.video.sizes)
            url = f"https://v3.fal.media/files/out/{job.request_id}/output.mp4"
            data = noise_video(frames, fps, width, height, int(job.arguments.get("seed", self.seed)))
            self.files.setdefault(url, data)
            file = {
                "url": url,
                "content_type": "video/mp4",
                "file_name": "output.mp4",
                "file_size": len(data),
            }
            return {
                "video": file,
                "prompt": job.arguments["prompt"],
                "seed": job.arguments.get("seed", self.seed),
            }

    return LargeVideoFal()


@dataclass
class World:
    root: Path
    cluster: Any = None
    s3: Any = None
    catalog: Catalog | None = None
    receiver: Receiver | None = None
    fal: Any = None
    relay: Any = None
    kubectl: Any = None
    client: Any = None
    s3_client: Any = None
    mongo: Any = None
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> data, in every namespace
    log_seen: dict[str, int] = field(default_factory=dict)  # pod -> tracebacks already counted

    def api(self, path: str) -> dict[str, Any] | None:
        if self.client is None:
            self.client = self.cluster.client(timeout=5.0)
        return self.client.get_or_none(path)  # type: ignore[no-any-return]

    def helm(self, *args: str) -> str:
        done = subprocess.run(
            [str(ROOT / ".tools" / "bin" / "helm"), *args],
            capture_output=True,
            text=True,
            env=self.kubectl.env(),
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"helm {args[0]}: {done.stderr.strip()}")
        return done.stdout


@contextmanager
def world(root: Path) -> Iterator[World]:
    """The cluster, versitygw, FerretDB, the fal fake and a receiver, all on the cluster's host
    address; the chart installed with two operator replicas."""
    import boto3
    import pymongo

    from localcluster import LocalCluster, Options
    from localcluster.s3server import S3Server
    from tests.kube import fal_relay
    from tests.kubectl import Kubectl
    from tests.providers.fake_fal import FAL_KEY

    w = World(root)
    # The images as they ship, each with fal's hosts relayed to the fake (tests/kube/fal_relay.py:
    # a test layer over the product image), imported into the node's containerd.
    names = ["contentgen", "contentgen-worker"]
    relayed = fal_relay.images(names, OPERATOR_NS, ROOT / ".images" / "relay")
    options = Options(root / "cluster", image_archives=[a for _, a in relayed.values()])
    cluster = LocalCluster(options).start()
    w.cluster = cluster
    try:
        host = cluster.host_ip
        w.fal = large_video_fal()
        relay_context = fal_relay.serve(w.fal, host=host)
        w.relay = relay_context.__enter__()
        access = {"AWS_ACCESS_KEY_ID": "faults", "AWS_SECRET_ACCESS_KEY": secrets.token_hex(16)}
        w.s3 = S3Server(
            root / "s3",
            host=host,
            access_key=access["AWS_ACCESS_KEY_ID"],
            secret_key=access["AWS_SECRET_ACCESS_KEY"],
            access_log=root / "s3-access.log",
        ).start()
        w.s3_client = boto3.client(
            "s3",
            endpoint_url=w.s3.endpoint,
            region_name="us-east-1",
            aws_access_key_id=access["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=access["AWS_SECRET_ACCESS_KEY"],
        )
        w.s3_client.create_bucket(Bucket=BUCKET)
        w.catalog = Catalog(root / "catalog", host).start()
        w.mongo = pymongo.MongoClient(w.catalog.uri, serverSelectionTimeoutMS=3000)["contentgen"]["jobs"]
        w.receiver = Receiver(host).start()
        w.kubectl = Kubectl(cluster.kubeconfig, root / "home")
        w.kubectl.run("create", "namespace", OPERATOR_NS)
        for doc in fal_relay.service_to(w.relay, host, OPERATOR_NS):
            w.kubectl.run("apply", "-f", "-", stdin=json.dumps(doc))
        w.secrets = {
            "contentgen-s3": access,
            "contentgen-fal": {"FAL_KEY": FAL_KEY},
            "contentgen-mongodb": {"uri": w.catalog.uri},
        }
        apply_secrets(w, OPERATOR_NS)
        values = {
            "replicaCount": 2,
            "store": {"url": f"s3://{BUCKET}/assets", "endpointUrl": w.s3.endpoint, "region": "us-east-1"},
            "s3": {"existingSecret": "contentgen-s3"},
            "mongodb": {"existingSecret": "contentgen-mongodb"},
            "fal": {"existingSecret": "contentgen-fal"},
            "allowPrivateSources": True,
            "logFormat": "plain",
            "reconcileIntervalSeconds": 2,
            "maxRunningJobsPerNamespace": 8,
        }
        for key, name in (("image", "contentgen"), ("worker", "contentgen-worker")):
            repository, tag = relayed[name][0].rsplit(":", 1)
            image = {"repository": repository, "tag": tag, "pullPolicy": "Never"}
            values[key] = {"image": image} if key == "worker" else image
        (root / "values.yaml").write_text(json.dumps(values))
        chart = str(ROOT / "charts" / "contentgen")
        w.helm(
            "install",
            "contentgen",
            chart,
            "-n",
            OPERATOR_NS,
            "--wait",
            "--timeout=5m",
            "-f",
            str(root / "values.yaml"),
        )
        wait(lambda: leader(w), 180, "a leader among the operator's replicas")
        yield w
    finally:
        stops: list[Callable[[], object]] = [cluster.stop]
        if w.relay is not None:
            stops.insert(0, lambda: relay_context.__exit__(None, None, None))
        stops[:0] = [s.stop for s in (w.receiver, w.catalog, w.s3) if s is not None]
        for stop in stops:
            try:
                stop()
            except Exception as exc:
                print(f"bench.faults: stopping: {exc}", file=sys.stderr)


def apply_secrets(w: World, namespace: str) -> None:
    for name, data in w.secrets.items():
        doc = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": data,
        }
        w.kubectl.run("apply", "-f", "-", stdin=json.dumps(doc))


def leader(w: World) -> str:
    lease = w.api(f"/apis/coordination.k8s.io/v1/namespaces/{OPERATOR_NS}/leases/contentgen-operator") or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def operator_pods(w: World) -> list[str]:
    pods = (
        w.api(f"/api/v1/namespaces/{OPERATOR_NS}/pods?labelSelector=app.kubernetes.io/component%3Doperator")
        or {}
    )
    return [
        p["metadata"]["name"] for p in pods.get("items") or [] if not p["metadata"].get("deletionTimestamp")
    ]


def tracebacks(w: World) -> int:
    """New 'Traceback' lines in the operator pods' logs since the last look (their current and
    previous containers'); each new one is printed with what follows it."""
    new = 0
    for pod in operator_pods(w):
        for previous in (False, True):
            args = ["logs", "-n", OPERATOR_NS, pod, *(["--previous"] if previous else [])]
            text = w.kubectl.run(*args, check=False, timeout=60).stdout
            seen = f"{pod}{' (previous)' if previous else ''}"
            lines = text.splitlines()
            found = [i for i, line in enumerate(lines) if "Traceback" in line]
            for i in found[w.log_seen.get(seen, 0) :]:
                say = f"bench.faults: a traceback in {seen}:"
                print(say, *lines[i : i + 40], sep="\n  ", file=sys.stderr)
            new += max(0, len(found) - w.log_seen.get(seen, 0))
            w.log_seen[seen] = len(found)
    return new


# --- the runs ------------------------------------------------------------------------------------


@dataclass
class Run:
    kind: str  # imagegenerations | videogenerations
    name: str
    prompt: str
    paid: bool
    started: float = 0.0


def manifests(scenario: str, offline: int, paid: int, large: int) -> list[tuple[Run, dict[str, Any]]]:
    runs = []
    for i in range(offline):
        runs.append(image_run(scenario, f"offline-{i}", "offline", seed=i))
    for i in range(paid):
        runs.append(image_run(scenario, f"paid-{i}", "fal", seed=i))
    for i in range(large):
        prompt = f"{scenario} large video {i} {secrets.token_hex(3)}"
        doc = {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": "VideoGeneration",
            "metadata": {"name": f"large-{i}"},
            "spec": {
                "owner": scenario,
                "prompt": prompt,
                "model": "wan-2.2-t2v",
                "numFrames": 33,
                "fps": 16,
                "resolution": "720p",
                "aspectRatio": "16:9",
                "seed": 7 + i,
                "provider": "fal",
            },
        }
        runs.append((Run("videogenerations", f"large-{i}", prompt, True), doc))
    return runs


def image_run(scenario: str, name: str, provider: str, seed: int) -> tuple[Run, dict[str, Any]]:
    prompt = f"{scenario} {name} {secrets.token_hex(3)}: a lighthouse on a cliff"
    doc = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "ImageGeneration",
        "metadata": {"name": name},
        "spec": {
            "owner": scenario,
            "prompt": prompt,
            "model": "flux-dev",
            "numImages": 1,
            "imageSize": "landscape_4_3",
            "seed": seed,
            "provider": provider,
        },
    }
    return Run("imagegenerations", name, prompt, provider != "offline"), doc


@dataclass
class Scenario:
    name: str
    namespace: str
    runs: list[Run]
    deleted: set[str] = field(default_factory=set)
    began: float = 0.0  # the fault's start and end (monotonic)
    ended: float = 0.0
    log_from: int = 0  # the access log's length before the scenario
    expected_events: int = 0


def path(ns: str, run: Run) -> str:
    return f"{API}/namespaces/{ns}/{run.kind}/{run.name}"


def workers_running(w: World, ns: str) -> bool:
    pods = w.api(f"/api/v1/namespaces/{ns}/pods") or {}
    return any((p.get("status") or {}).get("phase") == "Running" for p in pods.get("items") or [])


def multipart_begun(w: World, s: Scenario) -> bool:
    return any(
        op == "CreateMultipartUpload" and f"/{s.name}/" in key for op, key, _ in w.s3.requests()[s.log_from :]
    )


def uploading(w: World, s: Scenario) -> bool:
    """A worker stores its first output (a key under the scenario's owner)."""
    return any(
        op in ("PutObject", "CreateMultipartUpload") and f"/{s.name}/" in key
        for op, key, _ in w.s3.requests()[s.log_from :]
    )


# --- the faults: each injects, waits, recovers, and sets began/ended ------------------------------


def s3_away(w: World, s: Scenario) -> None:
    wait(lambda: uploading(w, s), 600, "a worker's first upload", every=0.1)
    s.began = time.monotonic()
    w.s3.process.send_signal(signal.SIGTERM)  # stopped at once: its idle connections not waited for
    time.sleep(S3_AWAY_S)
    w.s3.process.kill()
    w.s3.process.wait()
    w.s3.start()
    s.ended = time.monotonic()


def s3_killed(w: World, s: Scenario) -> None:
    wait(lambda: multipart_begun(w, s), 600, "the video's multipart upload", every=0.1)
    s.began = time.monotonic()
    w.s3.process.kill()
    w.s3.process.wait()
    time.sleep(S3_KILLED_S)
    w.s3.start()
    s.ended = time.monotonic()


def apiserver(w: World, s: Scenario) -> None:
    wait(lambda: workers_running(w, s.namespace), 300, "a worker running")
    control = w.cluster.control
    s.began = time.monotonic()
    control.components["kube-apiserver"].stop(timeout=5.0)
    time.sleep(APISERVER_S)
    control.start_apiserver()
    s.ended = time.monotonic()


def catalog(w: World, s: Scenario) -> None:
    wait(lambda: workers_running(w, s.namespace), 300, "a worker running")
    assert w.catalog is not None
    s.began = time.monotonic()
    w.catalog.stop()
    doomed, edited = s.runs[0], s.runs[1]
    w.kubectl.run("delete", "-n", s.namespace, doomed.kind, doomed.name, "--wait=false")
    s.deleted.add(doomed.name)
    w.kubectl.run(
        "patch",
        "-n",
        s.namespace,
        edited.kind,
        edited.name,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"seed": 99}}),
    )
    time.sleep(CATALOG_S)
    w.catalog.start()
    s.ended = time.monotonic()


def webhook(w: World, s: Scenario) -> None:
    assert w.receiver is not None
    time.sleep(max(0.0, s.began + RECEIVER_S - time.monotonic()))  # began: stopped before the runs
    w.receiver.start()
    s.ended = time.monotonic()


FAULTS: dict[str, Callable[[World, Scenario], None]] = {
    "s3-away": s3_away,
    "s3-killed": s3_killed,
    "apiserver": apiserver,
    "catalog": catalog,
    "webhook": webhook,
}


def run_scenario(w: World, name: str, offline: int, paid: int, large: int) -> dict[str, Any]:
    ns = f"faults-{name}"
    if name == "catalog":
        offline = max(offline, 2)  # one to delete, one to edit
    planned = manifests(name, offline, paid, large)
    s = Scenario(name, ns, [r for r, _ in planned])
    w.kubectl.run("create", "namespace", ns)
    apply_secrets(w, ns)
    receiver = w.receiver
    assert receiver is not None
    delivered_before = len(receiver.deliveries)
    if name == "webhook":
        w.kubectl.run(
            "create",
            "secret",
            "generic",
            "contentgen-webhook",
            "-n",
            ns,
            f"--from-literal=secret=whsec_{__import__('base64').b64encode(os.urandom(32)).decode()}",
        )
        notification = {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": "Notification",
            "metadata": {"name": "receiver", "namespace": ns},
            "spec": {
                "url": receiver.url,
                "secretRef": {"name": "contentgen-webhook"},
                "events": ["succeeded", "failed"],
            },
        }
        w.kubectl.run("apply", "-f", "-", stdin=json.dumps(notification))
        receiver.stop()
        s.began = time.monotonic()
    s.log_from = len(w.s3.requests())
    billed_before = {job.request_id for job in w.fal.ours if job.billed}
    for run, doc in planned:
        doc["metadata"]["namespace"] = ns
        w.kubectl.run("apply", "-f", "-", stdin=json.dumps(doc))
        run.started = time.monotonic()
    print(
        f"bench.faults: {name}: {len(planned)} runs in {ns}; the fault: {WHAT[name]}",
        file=sys.stderr,
        flush=True,
    )
    FAULTS[name](w, s)
    bound = BOUNDS[name]
    print(
        f"bench.faults: {name}: the fault ended after {s.ended - s.began:.0f} s; waiting for convergence",
        file=sys.stderr,
        flush=True,
    )

    done_at: dict[str, float] = {}
    uids: set[str] = set()  # the runs' (a key of the store names its run's uid)
    events: dict[str, list[float]] = {}

    def look() -> bool:
        now = time.monotonic()
        for run in s.runs:
            obj = w.api(path(ns, run))
            if run.name in s.deleted and obj is not None:
                done_at.pop(run.name, None)
                continue
            if obj is not None:
                uids.add(obj["metadata"]["uid"])
            record = w.mongo.find_one({"_id": obj["metadata"]["uid"]}) if obj else None
            if obj is None:
                record = w.mongo.find_one({"namespace": ns, "name": run.name})
            ok = (obj is None or converged(obj)) and record_agrees(obj, record)
            if ok:
                done_at.setdefault(run.name, now)
            else:
                done_at.pop(run.name, None)
        if name == "webhook":
            events.clear()
            for event, when in receiver.deliveries[delivered_before:]:
                events.setdefault(event, []).append(when)
            s.expected_events = sum(1 for r in s.runs if r.name not in s.deleted)
            if len(events) < s.expected_events:
                return False
        return len(done_at) == len(s.runs)

    give_up = s.ended + bound + 300.0  # a Job held up by the fault still runs its course after it
    while time.monotonic() < give_up:
        try:
            if look():
                break
        except Exception as exc:
            print(f"bench.faults: {name}: a look failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        time.sleep(1.0)
    finished = time.monotonic()

    # What is left once every run converged (or the wait gave up).
    results: dict[str, dict[str, Any] | None] = {r.name: w.api(path(ns, r)) for r in s.runs}
    phases = Counter((o.get("status") or {}).get("phase") for o in results.values() if o)
    reasons = Counter(
        ready_condition(o.get("status") or {}).get("reason", "")
        for o in results.values()
        if o and (o.get("status") or {}).get("phase") == "Failed"
    )
    lost = 0
    for obj in results.values():
        if obj and (obj.get("status") or {}).get("phase") == "Succeeded":
            for uri in output_uris(obj):
                bucket, key = uri.removeprefix("s3://").split("/", 1)
                try:
                    w.s3_client.head_object(Bucket=bucket, Key=key)
                except Exception:
                    lost += 1
    costs_missing = 0
    for run in s.runs:
        obj = results[run.name]
        if run.paid and obj and (obj.get("status") or {}).get("phase") == "Succeeded":
            record = w.mongo.find_one({"_id": obj["metadata"]["uid"]})
            if not cost_recorded(obj, record):
                costs_missing += 1
                cost = (obj.get("status") or {}).get("cost")
                managers = [
                    (m.get("manager"), m.get("operation"), m.get("subresource"), m.get("time"))
                    for m in obj["metadata"].get("managedFields") or []
                ]
                print(
                    f"bench.faults: {name}: {run.name}'s actual cost is missing: status {cost}, "
                    f"catalog {(record or {}).get('cost')}; status {json.dumps(obj.get('status'))}; "
                    f"written by {managers}",
                    file=sys.stderr,
                )
    prompts = {r.prompt for r in s.runs}
    billed = [
        j.arguments.get("prompt", "") for j in w.fal.ours if j.billed and j.request_id not in billed_before
    ]
    twice_paid = paid_twice(p for p in billed if p in prompts)
    twice_written = written_twice(
        r for r in w.s3.requests()[s.log_from :] if any(uid in r[1] for uid in uids)
    )

    def open_uploads() -> int:
        answer = w.s3_client.list_multipart_uploads(Bucket=BUCKET)
        return len(answer.get("Uploads") or [])

    left_open = open_uploads()
    if left_open:  # the workers' and the operator's aborts are retried: given until the bound
        with suppress(TimeoutError):
            wait(
                lambda: open_uploads() == 0,
                max(10.0, s.ended + bound - time.monotonic()),
                "no open uploads",
                every=2.0,
            )
        left_open = open_uploads()
    converged_s = max((t - s.ended for t in done_at.values()), default=0.0)
    lines = timeline(results, job_ends(w.api(f"/apis/batch/v1/namespaces/{ns}/jobs")), done_at, s.ended)
    unconverged = sorted(r.name for r in s.runs if r.name not in done_at)
    result: dict[str, Any] = {
        "scenario": name,
        "namespace": ns,
        "fault": WHAT[name],
        "fault_s": round(s.ended - s.began, 1),
        "runs": len(s.runs),
        "offline": sum(1 for r in s.runs if not r.paid),
        "paid": sum(1 for r in s.runs if r.paid),
        "deleted": sorted(s.deleted),
        "succeeded": phases.get("Succeeded", 0),
        "failed": phases.get("Failed", 0),
        "failed_reasons": dict(reasons),
        "converged_s": round(max(0.0, converged_s), 1),
        "bound_s": bound,
        "unconverged": unconverged,
        "lost_outputs": lost,
        "written_twice": len(twice_written),
        "written_twice_keys": twice_written,
        "paid_twice": len(twice_paid),
        "fal_billed": len(billed),
        "costs_missing": costs_missing,
        "actual_cost_usd": round(
            sum(
                float(((o.get("status") or {}).get("cost") or {}).get("actualUsd") or 0)
                for o in results.values()
                if o
            ),
            4,
        ),
        "open_uploads": left_open,
        "tracebacks": tracebacks(w),
        "events_delivered_twice": sum(1 for whens in events.values() if len(whens) > 1),
        "events_missing": max(0, s.expected_events - len(events)) if name == "webhook" else 0,
        "event_delay_s": round(max((min(ws) - s.ended for ws in events.values()), default=0.0), 1)
        if name == "webhook"
        else None,
        "waited_s": round(finished - s.ended, 1),
        "timeline": lines,
        "lag_s": max((line["lag"] or 0.0 for line in lines.values()), default=0.0),
        "statuses": {
            n: {
                "phase": (o.get("status") or {}).get("phase"),
                "reason": ready_condition(o.get("status") or {}).get("reason"),
                "message": (o.get("status") or {}).get("message"),
            }
            for n, o in results.items()
            if o
        },
    }
    result["problems"] = problems(result)
    return result


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"a comma-separated subset of {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--offline", type=int, default=3, help="offline ImageGenerations per scenario")
    parser.add_argument("--paid", type=int, default=2, help="ImageGenerations on the fal fake per scenario")
    parser.add_argument(
        "--large", type=int, default=1, help="VideoGenerations on the fal fake with a multipart output"
    )
    parser.add_argument("--docs", action="store_true", help="write the table into docs/performance.md")
    args = parser.parse_args()
    chosen = [s for s in args.scenarios.split(",") if s]
    if unknown := [s for s in chosen if s not in SCENARIOS]:
        parser.error(f"--scenarios: unknown {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if "s3-killed" in chosen and args.large < 1:
        parser.error("--large: s3-killed needs at least 1 (the multipart upload it cuts)")
    keep = os.environ.get("BENCH_KEEP")  # a directory to keep the logs in
    began = time.monotonic()
    loads = [load_average()]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        root = Path(keep) if keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        with world(root) as w:
            for name in chosen:
                results.append(run_scenario(w, name, args.offline, args.paid, args.large))
                loads.append(load_average())
                print(
                    json.dumps({k: v for k, v in results[-1].items() if k != "statuses"}),
                    file=sys.stderr,
                    flush=True,
                )
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    firsts = sorted(float(x.split()[0]) for x in loads)  # the 1-minute averages
    load = f"{firsts[0]:.1f}-{firsts[-1]:.1f} (1-minute, at the start and after each scenario)"
    report = {
        "when": when,
        "load_average": loads,
        "seconds": round(time.monotonic() - began, 1),
        "node": "real",
        "results": results,
        "passed": all(not r["problems"] for r in results),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1) + "\n")
    table = markdown(results, load, when)
    print(table)
    for r in results:
        for problem in r["problems"]:
            print(f"FAIL {r['scenario']}: {problem}")
    if args.docs:
        DOCS.write_text(with_table(DOCS.read_text(), table))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
