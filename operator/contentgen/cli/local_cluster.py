"""A real Kubernetes cluster on this machine: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler (built from their Go modules by `make kube`), and one node: Kubernetes' kubelet and
kube-proxy with containerd and runc, the CNI plugins and CoreDNS. contentgen is installed as the
chart installs it (its CRDs, RBAC, ConfigMap and the operator's Deployment), and the operator and
the workers run the project's images (the archives `make images` wrote). The store is a bucket of
a real S3 server (versitygw, `make s3-server`) on the cluster's host address, its account the
chart's Secret; the catalog is FerretDB (`make mongo-server`) there too. Once the operator is
Ready it writes DIR/kubeconfig and DIR/examples/ (the examples with their sources pointing at the
sample media, which it serves on the host address). Then, with the real kubectl and
KUBECONFIG=DIR/kubeconfig: `kubectl apply -f DIR/examples/`, and `kubectl wait
--for=condition=Ready loratrainings,imagegenerations,transcriptions,loraevaluations --all` until
every example is Ready. Images are not pulled: they are imported into the node's containerd. Needs
root, the `local-cluster` extra (pip install ./local-cluster) and `make kube s3-server
mongo-server node images`. Stop it with Ctrl-C (docs/local-cluster.md).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from localcluster import LocalCluster, mongowire
    from localcluster.s3server import S3Server

INSTALL = Path(__file__).with_name("chart-install.yaml")
NAMESPACE = "contentgen"
OPERATOR = "contentgen-operator"
BUCKET = "contentgen"
# The controllers platform teams run beside Kubernetes, built from their Go modules by `make kube`
# and run as the cluster's processes (`--controllers`): by default JobSet, and Kueue with
# waitForPodsReady on (a gang whose pods are not all ready within 5 minutes is evicted whole and
# queued again); Kubeflow Trainer (its runtimes make JobSets: with jobset), KEDA's operator and its
# metrics apiserver (keda-adapter: with keda) where asked
CONTROLLERS = ("jobset", "kueue")
KNOWN_CONTROLLERS = ("jobset", "kueue", "trainer", "keda", "keda-adapter")
NEEDS = {"trainer": "jobset", "keda-adapter": "keda"}
CONTROLLER_CONFIG: dict[str, dict[str, Any]] = {"kueue": {"waitForPodsReady": {"timeout": "5m"}}}
# a training's backend (gpu.training.backends) that each controller runs
BACKENDS = {"jobset": "jobset", "trainer": "trainjob"}
S3_SECRET = "contentgen-s3"  # noqa: S105 - a Secret's name (the chart's s3.existingSecret)


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
        help="GPUs the node advertises (nvidia.com/gpu, an extended resource), for provider cluster's "
        "Jobs: the scheduler runs as many at once, in the GPU worker image when `make images` built it "
        "(else the worker image stands in, and says so); their containers run on this machine's CPU "
        "(default: none)",
    )
    parser.add_argument("--port", type=int, default=0, help="the API server's port (default: any free)")
    parser.add_argument(
        "--max-running-jobs",
        type=int,
        default=4,
        help="Jobs running at once per namespace (the operator's setting)",
    )
    parser.add_argument(
        "--controllers",
        type=controller_list,
        default=CONTROLLERS,
        metavar="NAMES",
        help=f"the controllers run beside Kubernetes, comma-separated, of {', '.join(KNOWN_CONTROLLERS)} "
        "(trainer needs jobset, keda-adapter keda); the operator's gpu.training.backends are job and "
        f"those run (jobset, trainjob) (default: {','.join(CONTROLLERS)})",
    )
    parser.add_argument(
        "--node",
        choices=("real",),
        default="real",
        help="the node: Kubernetes' kubelet with containerd and runc (the only one; the option is "
        "kept for scripts that name it)",
    )
    parser.add_argument(
        "--images",
        type=Path,
        default=None,
        help="where `make images` left the operator's and the worker's archives (default: the "
        "repository's .images, or $IMAGE_CACHE_DIR, built there first when missing or older than the "
        "sources)",
    )
    parser.add_argument(
        "--audit-log", type=Path, help="the API server's audit log (every request, JSON lines)"
    )
    parser.add_argument(
        "--examples",
        type=Path,
        default=None,
        help="example manifests to copy into DIR/examples with their sources served from "
        "EXAMPLES/media (default: the repository's examples)",
    )


def controller_list(text: str) -> tuple[str, ...]:
    """`--controllers`' value: known names, each with what it needs (argparse says the error)."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in KNOWN_CONTROLLERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown)}: use some of {', '.join(KNOWN_CONTROLLERS)}")
    for name, needed in NEEDS.items():
        if name in names and needed not in names:
            raise argparse.ArgumentTypeError(f"{name} needs {needed}: add it")
    return names


def training_backends(controllers: tuple[str, ...]) -> str:
    """CONTENTGEN_GPU_TRAINING (the chart's gpu.training) with the backends `controllers` run."""
    training = json.loads(chart_setting("CONTENTGEN_GPU_TRAINING"))
    training["backends"] = ["job", *(BACKENDS[c] for c in controllers if c in BACKENDS)]
    return json.dumps(training, sort_keys=True)


def settings(
    directory: Path, offline: bool, max_running_jobs: int, store: S3Server | None = None
) -> dict[str, str]:
    """The operator's ConfigMap entries local-cluster sets over the chart's defaults; CONTENTGEN_*
    variables in local-cluster's own environment come last (e.g. CONTENTGEN_FAL_KEY_SECRET__NAME).
    The store: the bucket of `store` (started; its account the Secret S3_SECRET), else DIR/store
    (for an operator run in a test's own process)."""
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
                "CONTENTGEN_S3_SECRET": S3_SECRET,  # the chart's s3.existingSecret
                # the operator's own store client, as the chart sets it with store.endpointUrl
                "AWS_ENDPOINT_URL": store.endpoint,
                "AWS_REGION": store.region,
            }
        )
    values.update({k: v for k, v in os.environ.items() if k.startswith("CONTENTGEN_")})
    return values


def manifests(
    directory: Path,
    config: dict[str, str],
    catalog: str = "",
    secrets: dict[str, dict[str, str]] | None = None,
    install: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The CRDs from the API models, then the chart's install (local-cluster's, or `install`) with
    local-cluster's settings and a catalog Secret (the chart reads the catalog's URI from one:
    `catalog`, else DIR/catalog), and `secrets` (name -> data) in contentgen's namespace: the
    store's, which the operator copies where Jobs run (the chart's s3.copyToNamespaces)."""
    from contentgen.api.crd import crds

    docs: list[dict[str, Any]] = list(crds().values())
    for doc in install or install_documents():
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == OPERATOR:
            doc["data"].update(config)
        docs.append(doc)
        if doc["kind"] == "Namespace":
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "contentgen-mongodb", "namespace": NAMESPACE},
                    "stringData": {"uri": catalog or (directory / "catalog").as_uri()},
                }
            )
            for name, data in (secrets or {}).items():
                docs.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": name, "namespace": NAMESPACE},
                        "stringData": data,
                    }
                )
    return docs


# A local cluster's node has this machine's CPUs (2 here), and a LoraTraining's Job asks for 2:
# each kind asks for at most this much, so the scheduler places the examples (their limits, the
# memory the kernel enforces, stay the chart's).
REAL_NODE_CPU_REQUEST = "500m"


def fitted_kinds(kinds: str) -> str:
    """CONTENTGEN_KINDS (JSON, per kind) with every CPU request at most REAL_NODE_CPU_REQUEST."""
    parsed = json.loads(kinds)
    cap = cpu_millis(REAL_NODE_CPU_REQUEST)
    for job in parsed.values():
        requests = (job.get("resources") or {}).get("requests") or {}
        if "cpu" in requests and cpu_millis(str(requests["cpu"])) > cap:
            requests["cpu"] = REAL_NODE_CPU_REQUEST
    return json.dumps(parsed, sort_keys=True)


def cpu_millis(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


IMAGES = ("contentgen", "contentgen-worker")  # the operator's and the worker's
GPU_IMAGE = "contentgen-worker-gpu"  # provider cluster's (8.5 GB: built by `make images`, not here)


def archive_in(directory: Path, name: str) -> Path | None:
    """The archive of image `name` that `make images` listed in DIRECTORY/index.json, if there."""
    try:
        entries = json.loads((directory / "index.json").read_text()).get("images") or {}
    except (OSError, ValueError):
        entries = {}
    archive = directory / str((entries.get(name) or {}).get("archive") or f"{name}.tar")
    return archive if archive.is_file() else None


def image_archives(directory: Path) -> list[Path]:
    """The operator's and the worker's archives that `make images` listed in DIRECTORY/index.json;
    ValueError (one line) when they are not there."""
    archives = []
    for name in IMAGES:
        archive = archive_in(directory, name)
        if archive is None:
            raise ValueError(
                f"--images {directory}: no archive of the {name} image; run `make images` in the "
                "repository (or give --images the folder it wrote)"
            )
        archives.append(archive)
    return archives


def repository(start: Path | None = None) -> Path | None:
    """The checkout contentgen runs from: where its own package lies (an editable install, as `make
    install` makes), else the current folder or one above it; a folder with the project's
    pyproject.toml, scripts/images.py and examples/. None outside one."""
    here = (start or Path.cwd()).resolve()
    for candidate in (Path(__file__).resolve().parents[3], here, *here.parents):
        if all((candidate / p).exists() for p in ("pyproject.toml", "scripts/images.py", "examples")):
            return candidate
    return None


def repository_images(root: Path, say: Any = print) -> Path:
    """The repository's archives of IMAGES (`scripts/images.py`'s folder: .images, or
    $IMAGE_CACHE_DIR), built first where one is missing or older than the sources, which is said;
    the folder. ValueError (one line) when they cannot be built."""
    import subprocess
    import sys

    def images_py(*args: str, capture: bool = True) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(root / "scripts" / "images.py"), *args]
        return subprocess.run(command, cwd=root, capture_output=capture, text=True, check=False)  # noqa: S603

    found = {name: images_py("archive", name) for name in IMAGES}
    stale = [  # images.py's words ("contentgen is not built: run `make images`"), the doing ours
        done.stderr.strip().removeprefix("images.py archive: ").removesuffix(": run `make images`")
        or f"{name} is not built"
        for name, done in found.items()
        if done.returncode != 0
    ]
    if not stale:
        return Path(found[IMAGES[0]].stdout.strip()).parent
    listed = " ".join(IMAGES)
    say(
        f"contentgen local-cluster: {'; '.join(stale)}: building them now "
        f"(python scripts/images.py build {listed}: minutes the first time)",
        flush=True,
    )
    built = images_py("build", *IMAGES, capture=False)
    if built.returncode != 0:
        raise ValueError(
            f"the images could not be built (`python scripts/images.py build {listed}` in {root} "
            f"exited {built.returncode}: its output is above)"
        )
    # where images.py keeps them (its cache_dir); just built from the sources as they were then
    return Path(os.environ.get("IMAGE_CACHE_DIR") or root / ".images")


def gpu_archive(directory: Path) -> Path | None:
    """The GPU worker image's archive beside the others, if `make images` built it."""
    return archive_in(directory, GPU_IMAGE)


def gpu_line(gpus: int, archive: Path | None, directory: Path) -> str:
    """What --gpus runs, in one line: the GPU worker image, or the worker image in its place and
    how to get the GPU one."""
    if archive is not None:
        return f"  GPUs: {gpus} nvidia.com/gpu; provider cluster's Jobs run the GPU worker image ({archive})"
    return (
        f"  GPUs: {gpus} nvidia.com/gpu; no GPU worker image in {directory}, so the worker image stands in "
        "for it: GPU Jobs are placed as on GPU nodes, and cannot draw, train or transcribe (no torch, "
        "diffusers or faster-whisper in it). `make images` builds the GPU one (8.5 GB, about 20 minutes)"
    )


class CatalogServer:
    """FerretDB (MongoDB's wire; `make mongo-server`) on the cluster's host address, where the
    node's pods reach it: the catalog, its files in DIR/ferretdb."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve() / "ferretdb"
        self.server: mongowire.Server | None = None

    @property
    def uri(self) -> str:
        assert self.server is not None
        return f"{self.server.url}contentgen"

    def start(self, host: str) -> None:
        from localcluster import mongowire

        self.server = mongowire.start(self.directory, host=host)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def install_documents() -> list[dict[str, Any]]:
    """The chart's install (chart-install.yaml) as Kubernetes reads its YAML, parsed once a
    process; each call a copy of its own to change."""
    return copy.deepcopy(_install_documents())


@functools.cache
def _install_documents() -> list[dict[str, Any]]:
    from contentgen.api.manifests import parse

    return [read.content for read in parse(INSTALL.read_text(), str(INSTALL)) if read.content]


def chart_setting(name: str) -> str:
    """An entry of the chart install's operator ConfigMap."""
    for doc in _install_documents():
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == OPERATOR:
            return str(doc["data"][name])
    raise LookupError(name)


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


def write_examples(examples: Path, target: Path, media_url: str, gpus: int = 0) -> list[Path]:
    """Copies of the example manifests whose source URLs name the served sample media: a file of
    the URL's name when there is one in EXAMPLES/media, else the first video there. On a cluster
    without GPUs (`gpus` 0), an example of the cluster's own GPUs runs with the offline provider,
    which simulates that trainer: a Job asking for a GPU no node has would wait for ever."""
    from contentgen.api.providers import OFFLINE, provider_entry

    media = sorted(p.name for p in (examples / "media").glob("*") if p.is_file())
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(examples.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for doc in docs:
            spec = doc.get("spec") or {}
            if not gpus and provider_entry(str(spec.get("provider") or "")).own_gpus:
                spec["provider"] = OFFLINE.name
            source = spec.get("source")
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
    archives: list[Path],
    store: S3Server,
    catalog: CatalogServer,
    *,
    offline: bool = False,
    port: int = 0,
    max_running_jobs: int = 4,
    audit_log: Path | None = None,
    gpus: int = 0,
    gpu_archive: Path | None = None,
    controllers: tuple[str, ...] = CONTROLLERS,
    timeout: float = 300.0,  # a hang guard per stage (localcluster.cluster.START_HANG_GUARD_S)
) -> LocalCluster:
    """Start the cluster with `archives` (the operator's and the worker's images) and wait for the
    operator. With `gpus`, the GPU worker image's `gpu_archive` is imported too, or where there is
    none the worker image is tagged as the GPU worker image (it stands in). The store is the bucket
    of `store` (`store_server()`), its account the chart's Secret, started on the host address once
    the node's network is there, before contentgen is installed; the catalog is `catalog`, FerretDB
    started beside it (the images cannot reach DIR/catalog). The caller stops both, and writes
    DIR/kubeconfig once its own parts are ready."""
    import boto3

    from localcluster import LocalCluster, Options

    directory = directory.resolve()
    imported = [*archives, *([gpu_archive] if gpus and gpu_archive is not None else [])]
    options = Options(directory, image_archives=imported, port=port, audit_log=audit_log, gpus=gpus)
    options.controllers, options.controller_config = controllers, CONTROLLER_CONFIG
    cluster = LocalCluster(options)
    cluster.start(timeout, announce=False)
    try:
        if gpus and gpu_archive is None:  # the worker image answers to the GPU worker image's name
            worker, gpu = (
                os.environ.get(name) or chart_setting(name)
                for name in ("CONTENTGEN_WORKER_IMAGE", "CONTENTGEN_GPU_WORKER_IMAGE")
            )
            cluster.real.tag(worker, gpu)
        deadline = time.monotonic() + timeout
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
        account = {"AWS_ACCESS_KEY_ID": store.access_key, "AWS_SECRET_ACCESS_KEY": store.secret_key}
        catalog.start(cluster.host_ip)
        config = settings(directory, offline, max_running_jobs, store)
        config["CONTENTGEN_KINDS"] = fitted_kinds(chart_setting("CONTENTGEN_KINDS"))
        if "CONTENTGEN_GPU_TRAINING" not in os.environ:  # local-cluster's own environment comes last
            config["CONTENTGEN_GPU_TRAINING"] = training_backends(controllers)
        cluster.install(manifests(directory, config, catalog.uri, {S3_SECRET: account}))
        cluster.wait_available(NAMESPACE, OPERATOR, deadline)
    except BaseException:
        cluster.stop()
        store.stop()
        catalog.stop()
        raise
    return cluster


def node_refusal(message: str) -> str:
    """NodeUnavailable's line in the command's words, with the repository's one command for what
    it says to install."""
    if "apt-get install" in message:
        return f"{message} (from the repository: `make node`)"
    return message


def store_environment(store: S3Server, catalog: str) -> str:
    """DIR/store.env: what `contentgen assets` (the store and the catalog) or any S3 client needs."""
    values = {**store.env, "CONTENTGEN_STORE": f"s3://{BUCKET}", "CONTENTGEN_CATALOG": catalog}
    return "".join(f"export {k}={v}\n" for k, v in values.items())


def run(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    archives = _checked(args)
    images = archives[0].parent
    gpu = gpu_archive(images) if args.gpus else None
    catalog, store = CatalogServer(args.dir), store_server(args.dir)
    cluster = _started(args, archives, store, catalog, gpu)
    media = None
    if args.examples is not None and (args.examples / "media").is_dir():
        media = MediaServer(args.examples / "media", cluster.host_ip)
        write_examples(args.examples, cluster.dir / "examples", media.url, args.gpus)
    (cluster.dir / "store.env").write_text(store_environment(store, catalog.uri))
    cluster.write_kubeconfig(cluster.kubeconfig)  # last: its appearance says everything is ready
    _announce(args, cluster, store, catalog, media, gpu_line(args.gpus, gpu, images) if args.gpus else "")
    try:
        _wait_for_ctrl_c(cluster)
    finally:
        started = time.monotonic()
        if media is not None:
            media.stop()
        cluster.stop()
        store.stop()
        catalog.stop()
        (cluster.dir / "store.env").unlink(missing_ok=True)
        logging.getLogger("contentgen.local-cluster").info("stopped in %.1f s", time.monotonic() - started)
    return 0


def _checked(args: argparse.Namespace) -> list[Path]:
    """The arguments checked, the package there; the image archives to run."""
    from contentgen.cli.main import CommandError

    try:
        import localcluster  # noqa: F401
    except ImportError:
        raise CommandError(
            "needs the local-cluster extra: pip install ./local-cluster (from the repository), "
            "then `make kube s3-server mongo-server node images`"
        ) from None
    if args.dir.exists() and not args.dir.is_dir():
        raise CommandError(f"--dir {args.dir}: not a directory")
    if args.max_running_jobs < 1:
        raise CommandError("--max-running-jobs must be at least 1")
    if not 0 <= args.gpus <= 64:
        raise CommandError("--gpus: a number of GPUs from 0 to 64")
    root = repository()
    if args.examples is None and root is not None:
        args.examples = root / "examples"
    if args.examples is not None and not args.examples.is_dir():
        raise CommandError(f"--examples {args.examples}: not a directory")
    try:
        if args.images is not None:
            return image_archives(args.images)
        if root is None:
            raise ValueError(
                "no images to run: run contentgen local-cluster from a checkout of the repository "
                "(pip install -e . there: it builds them), or give --images the folder `make images` wrote"
            )
        return image_archives(repository_images(root))
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _started(
    args: argparse.Namespace,
    archives: list[Path],
    store: S3Server,
    catalog: CatalogServer,
    gpu_archive: Path | None = None,
) -> LocalCluster:
    """`start` with the command's arguments; what stops it said in one line."""
    from contentgen.cli.main import CommandError
    from localcluster import NodeUnavailable
    from localcluster.binaries import BinariesMissing

    try:
        return start(
            args.dir,
            archives,
            store,
            catalog,
            offline=args.offline,
            port=args.port,
            max_running_jobs=args.max_running_jobs,
            audit_log=args.audit_log,
            gpus=args.gpus,
            gpu_archive=gpu_archive,
            controllers=args.controllers,
        )
    except NodeUnavailable as exc:
        raise CommandError(node_refusal(str(exc))) from None
    except (BinariesMissing, OSError, RuntimeError) as exc:
        raise CommandError(str(exc)) from None


def _announce(
    args: argparse.Namespace,
    cluster: LocalCluster,
    store: S3Server,
    catalog: CatalogServer,
    media: MediaServer | None,
    gpus: str = "",
) -> None:
    """What is where, and what to do next."""
    assert cluster.control is not None
    mode = "offline provider (placeholders, no paid API)" if args.offline else "the providers in each spec"
    lines = [
        f"contentgen local-cluster: Kubernetes {cluster.version} at {cluster.control.url}, {mode}; the real "
        f"node (kubelet, containerd, runc; the project's images), each pod in its own network on "
        f"{cluster.host_ip}",
        f"  export KUBECONFIG={cluster.kubeconfig}",
    ]
    if gpus:
        lines.append(gpus)
    if media is not None:
        lines.append(f"  kubectl apply -f {cluster.dir / 'examples'}/  (their sources: {media.url})")
    lines += [
        f"  store s3://{BUCKET} at {store.endpoint} (its files in {store.root}), catalog {catalog.uri}",
        f"  source {cluster.dir / 'store.env'}  (both, for contentgen assets or any S3 client)",
        f"  operator's log: kubectl logs -n {NAMESPACE} deploy/{OPERATOR}",
        f"  control plane's logs: {cluster.dir}/control-plane/logs; Ctrl-C stops everything",
    ]
    print("\n".join(lines), flush=True)


def _wait_for_ctrl_c(cluster: LocalCluster) -> None:
    """Until SIGINT or SIGTERM; a control plane process that exits meanwhile is an error."""
    from contentgen.cli.main import CommandError

    assert cluster.control is not None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        if failed := cluster.control.check():
            raise CommandError(f"{', '.join(failed)} exited; see {cluster.control.logs}")
