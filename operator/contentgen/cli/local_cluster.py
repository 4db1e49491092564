"""A real Kubernetes cluster on this machine, without containers: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler (built from their Go modules by `make kube`), one node
that runs pods as local processes, and contentgen installed as the chart installs it (its CRDs,
RBAC, ConfigMap and the operator's Deployment, whose pod runs this installation's `contentgen
operator`). The store is a bucket of a real S3 server (versitygw, built by `make s3-server`) on the
node's address, as a chart install would use S3 or MinIO; its files and the catalog live in DIR.
Once the operator is Ready it writes
DIR/kubeconfig and DIR/examples/ (the examples with their sources pointing at the sample media,
which it serves on the node's address). Then, with the real kubectl and
KUBECONFIG=DIR/kubeconfig: `kubectl apply -f DIR/examples/`, and `kubectl wait
--for=condition=Ready loratrainings,imagegenerations,transcriptions,loraevaluations --all` until
every example is Ready. Images are not pulled: the node runs `contentgen` for the images `.../contentgen` and
`.../contentgen-worker`. Needs the `local-cluster` extra (pip install ./local-cluster) and the
binaries (`make kube`, `make s3-server`). Stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from localcluster import Image, LocalCluster
    from localcluster.s3server import S3Server

INSTALL = Path(__file__).with_name("chart-install.yaml")
NAMESPACE = "contentgen"
OPERATOR = "contentgen-operator"
IMAGE_PATH = "/opt/contentgen/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUCKET = "contentgen"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", type=Path, required=True, help="where the cluster keeps its state, store and catalog"
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="run the Jobs of paid providers with the offline provider (no paid API, no keys)",
    )
    parser.add_argument(
        "--gpus",
        type=int,
        default=0,
        help="GPUs the node advertises (nvidia.com/gpu), for provider cluster's Jobs: the scheduler "
        "runs as many at once (their workers run on this machine; default: none)",
    )
    parser.add_argument("--port", type=int, default=0, help="the API server's port (default: any free)")
    parser.add_argument(
        "--max-running-jobs",
        type=int,
        default=4,
        help="Jobs running at once per namespace (the operator's setting)",
    )
    parser.add_argument(
        "--network",
        choices=("auto", "isolated", "host"),
        default="auto",
        help="isolated: each pod in its own network namespace (needs root); host: pods share the "
        "host's network; auto (default): isolated where possible",
    )
    parser.add_argument(
        "--audit-log", type=Path, help="the API server's audit log (every request, JSON lines)"
    )
    parser.add_argument(
        "--examples",
        type=Path,
        default=Path("examples"),
        help="example manifests to copy into DIR/examples with their sources served from "
        "EXAMPLES/media (default: %(default)s, when it exists)",
    )


def images(identity: dict[str, str] | None = None) -> dict[str, Image]:
    """The two images (Dockerfile, worker-image/Dockerfile) as entry points of this installation.
    `identity`: the store's credentials as every pod of the node has them, as a workload identity
    (IRSA) would give them, so that no namespace needs an S3 Secret."""
    from localcluster import Image

    bin_dir = str(Path(sys.executable).parent)
    common = {"PATH": IMAGE_PATH, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "HOME": "/tmp"}  # noqa: S108
    common.update(identity or {})
    path_map = {"/opt/contentgen/bin": bin_dir}
    worker = Image(
        entrypoint=["contentgen"],
        cmd=["worker"],
        env={**common, "CONTENTGEN_WORK_DIR": "/work"},
        workdir="/work",
        path_map=path_map,
        fallback_env={
            "CONTENTGEN_KUBE_API": "{api_url}",
            "CONTENTGEN_KUBE_TOKEN_FILE": "{token_file}",
            "CONTENTGEN_KUBE_CA_FILE": "{ca_file}",
            "CONTENTGEN_TERMINATION_LOG": "{termination_log}",
        },
    )
    return {
        "contentgen": Image(
            entrypoint=["contentgen"],
            cmd=["operator"],
            env=common,
            workdir="/tmp",  # noqa: S108 - the image's
            path_map=path_map,
            fallback_env={"KUBECONFIG": "{kubeconfig}"},
        ),
        "contentgen-worker": worker,
        # the GPU worker image (worker-image/gpu.Dockerfile): the same entry point, with this
        # installation's gpu extra, and as the image does, no model hub asked
        "contentgen-worker-gpu": dataclasses.replace(
            worker,
            env={
                **worker.env,
                "CONTENTGEN_CLUSTER_MODELS_DIR": "/models",
                "HF_HUB_OFFLINE": "1",
                "HF_HUB_DISABLE_TELEMETRY": "1",
            },
        ),
    }


def settings(
    directory: Path, offline: bool, max_running_jobs: int, store: S3Server | None = None
) -> dict[str, str]:
    """The operator's ConfigMap entries local-cluster sets over the chart's defaults; CONTENTGEN_*
    variables in local-cluster's own environment come last (e.g. CONTENTGEN_FAL_KEY_SECRET__NAME).
    The store: the bucket of `store` (started), else DIR/store."""
    values = {
        "CONTENTGEN_STORE": (directory / "store").as_uri(),
        "CONTENTGEN_LOG_FORMAT": "plain",
        "CONTENTGEN_ALLOW_PRIVATE_SOURCES": "true",  # sources served on this machine
        "CONTENTGEN_OFFLINE": "true" if offline else "false",
        "CONTENTGEN_MAX_RUNNING_JOBS_PER_NAMESPACE": str(max_running_jobs),
    }
    if store is not None:
        values.update(
            {
                "CONTENTGEN_STORE": f"s3://{BUCKET}",
                "CONTENTGEN_S3_ENDPOINT_URL": store.endpoint,
                "CONTENTGEN_S3_REGION": store.region,
                "CONTENTGEN_S3_SECRET": "",  # the node's identity (images()), no Secret
                # the operator's own store client, as the chart sets it with store.endpointUrl
                "AWS_ENDPOINT_URL": store.endpoint,
                "AWS_REGION": store.region,
            }
        )
    values.update({k: v for k, v in os.environ.items() if k.startswith("CONTENTGEN_")})
    return values


def manifests(directory: Path, config: dict[str, str]) -> list[dict[str, Any]]:
    """The CRDs from the API models, then the chart's install with local-cluster's settings and a
    catalog Secret (the chart reads the catalog's URI from one)."""
    from contentgen.api.crd import rendered_crds

    docs: list[dict[str, Any]] = [yaml.safe_load(text) for text in rendered_crds().values()]
    for doc in yaml.safe_load_all(INSTALL.read_text()):
        if not doc:
            continue
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == OPERATOR:
            doc["data"].update(config)
        docs.append(doc)
        if doc["kind"] == "Namespace":
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "contentgen-mongodb", "namespace": NAMESPACE},
                    "stringData": {"uri": (directory / "catalog").as_uri()},
                }
            )
    return docs


class MediaServer:
    """The sample media (EXAMPLES/media) over HTTP on the node's address, where pods reach it."""

    def __init__(self, root: Path, host: str) -> None:
        import functools
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), functools.partial(Handler, directory=str(root)))
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, name="sample-media", daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write_examples(examples: Path, target: Path, media_url: str) -> list[Path]:
    """Copies of the example manifests whose source URLs name the served sample media: a file of
    the URL's name when there is one in EXAMPLES/media, else the first video there."""
    media = sorted(p.name for p in (examples / "media").glob("*") if p.is_file())
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(examples.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for doc in docs:
            source = (doc.get("spec") or {}).get("source")
            if isinstance(source, dict) and source.get("url") and media:
                name = source["url"].rsplit("/", 1)[-1]
                source["url"] = f"{media_url}/{name if name in media else media[0]}"
        out = target / path.name
        out.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        written.append(out)
    return written


def store_server(directory: Path) -> S3Server:
    """The S3 server (not started) whose bucket is the store: its files in DIR/s3, an account of
    its own with a secret made for this cluster."""
    import secrets

    from localcluster.s3server import S3Server

    return S3Server(directory.resolve() / "s3", access_key="contentgen", secret_key=secrets.token_hex(16))


def start(
    directory: Path,
    *,
    offline: bool = False,
    port: int = 0,
    max_running_jobs: int = 4,
    network: str = "auto",
    audit_log: Path | None = None,
    backoff_base: float = 10.0,
    gpus: int = 0,
    operator: bool = True,
    timeout: float = 120.0,
    announce: bool = True,
    store: S3Server | None = None,
) -> LocalCluster:
    """Start the cluster and wait for the operator (unless operator=False: then no Deployment).
    With `store` (`store_server()`), the store is its bucket: it is started on the node's address
    once the node's network is there, before contentgen is installed; the caller stops it."""
    import boto3

    from localcluster import LocalCluster, Options

    directory = directory.resolve()
    identity = None
    if store is not None:
        identity = {"AWS_ACCESS_KEY_ID": store.access_key, "AWS_SECRET_ACCESS_KEY": store.secret_key}
    cluster = LocalCluster(
        Options(
            directory,
            images=images(identity),
            port=port,
            network=network,  # type: ignore[arg-type]
            audit_log=audit_log,
            backoff_base=backoff_base,
            gpus=gpus,
        )
    )
    cluster.start(timeout, announce=False)
    try:
        deadline = time.monotonic() + timeout
        if store is not None:
            store.host = cluster.host_ip
            store.start(timeout)
            client = boto3.client(
                "s3",
                endpoint_url=store.endpoint,
                region_name=store.region,
                aws_access_key_id=store.access_key,
                aws_secret_access_key=store.secret_key,
            )
            client.create_bucket(Bucket=BUCKET)
        docs = manifests(directory, settings(directory, offline, max_running_jobs, store))
        if not operator:
            docs = [d for d in docs if d["kind"] != "Deployment"]
        cluster.install(docs)
        if operator:
            cluster.wait_available(NAMESPACE, OPERATOR, deadline)
    except BaseException:
        cluster.stop()
        if store is not None:
            store.stop()
        raise
    if announce:
        cluster.write_kubeconfig(cluster.kubeconfig)
    return cluster


def store_environment(store: S3Server) -> str:
    """DIR/store.env: what `contentgen assets --store s3://contentgen` (or any S3 client) needs."""
    return "".join(f"export {k}={v}\n" for k, v in store.env.items())


def run(args: argparse.Namespace) -> int:
    import logging

    from contentgen.cli.main import CommandError

    try:
        from localcluster.binaries import BinariesMissing
    except ImportError:
        raise CommandError(
            "needs the local-cluster extra: pip install ./local-cluster (from the repository), "
            "then `make kube s3-server` for the Kubernetes binaries and the S3 server"
        ) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.dir.exists() and not args.dir.is_dir():
        raise CommandError(f"--dir {args.dir}: not a directory")
    if args.max_running_jobs < 1:
        raise CommandError("--max-running-jobs must be at least 1")
    if not 0 <= args.gpus <= 64:
        raise CommandError("--gpus: a number of GPUs from 0 to 64")
    store = store_server(args.dir)
    try:
        cluster = start(
            args.dir,
            offline=args.offline,
            port=args.port,
            max_running_jobs=args.max_running_jobs,
            network=args.network,
            audit_log=args.audit_log,
            gpus=args.gpus,
            announce=False,
            store=store,
        )
    except (BinariesMissing, OSError, RuntimeError) as exc:
        raise CommandError(str(exc)) from None
    assert cluster.control is not None
    media: MediaServer | None = None
    if (args.examples / "media").is_dir():
        media = MediaServer(args.examples / "media", cluster.host_ip)
        write_examples(args.examples, cluster.dir / "examples", media.url)
    (cluster.dir / "store.env").write_text(store_environment(store))
    cluster.write_kubeconfig(cluster.kubeconfig)  # last: its appearance says everything is ready
    mode = "offline provider (placeholders, no paid API)" if args.offline else "the providers in each spec"
    network = (
        f"each pod in its own network on {cluster.host_ip}"
        if cluster.isolated
        else "pods share the host's network"
    )
    print(
        f"contentgen local-cluster: Kubernetes {cluster.version} at {cluster.control.url}, {mode}; {network}",
        flush=True,
    )
    print(f"  export KUBECONFIG={cluster.kubeconfig}", flush=True)
    if media is not None:
        print(f"  kubectl apply -f {cluster.dir / 'examples'}/  (their sources: {media.url})", flush=True)
    print(
        f"  store s3://{BUCKET} at {store.endpoint} (its files in {store.root}; `source "
        f"{cluster.dir / 'store.env'}` for its account), catalog {cluster.dir / 'catalog'}",
        flush=True,
    )
    print(f"  operator's log: kubectl logs -n {NAMESPACE} deploy/{OPERATOR}", flush=True)
    print(f"  control plane's logs: {cluster.dir}/control-plane/logs; Ctrl-C stops everything", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            if failed := cluster.control.check():
                raise CommandError(f"{', '.join(failed)} exited; see {cluster.control.logs}")
    finally:
        started = time.monotonic()
        if media is not None:
            media.stop()
        cluster.stop()
        store.stop()
        (cluster.dir / "store.env").unlink(missing_ok=True)
        logging.getLogger("contentgen.local-cluster").info("stopped in %.1f s", time.monotonic() - started)
    return 0
