"""A cluster in a box for laptops, demos and end-to-end tests: a local Kubernetes control plane
that follows a real API server's rules (TLS, RBAC, admission, the contentgen CRDs and the
chart's RBAC), its controllers, a local node that runs every Job's pod as a `contentgen worker`
process, and the real operator under its own ServiceAccount. The store and the catalog live in
DIR. Once all of it is ready it writes DIR/kubeconfig; then use the real kubectl:

    export KUBECONFIG=DIR/kubeconfig
    kubectl apply -f examples/ && kubectl get contentgen -w

It is not a Kubernetes distribution: no container runtime, no scheduler, one local node, no
images pulled (pods run this installation's `contentgen`). See README, "Try the operator
without a cluster". Stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", type=Path, required=True, help="where the cluster keeps its state, store and catalog"
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="run every Job with the offline provider (no paid API, no keys)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="the API server's port on 127.0.0.1 (default: any free)"
    )
    parser.add_argument(
        "--max-running-jobs",
        type=int,
        default=4,
        help="Jobs running at once per namespace (the operator's setting)",
    )
    parser.add_argument(
        "--audit-log", type=Path, help="write every authorization decision to this file (JSON lines)"
    )


def run(args: argparse.Namespace) -> int:
    import logging

    from contentgen.cli.main import CommandError
    from contentgen.cluster.local import LocalCluster, Options

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.dir.exists() and not args.dir.is_dir():
        raise CommandError(f"--dir {args.dir}: not a directory")
    if args.max_running_jobs < 1:
        raise CommandError("--max-running-jobs must be at least 1")
    options = Options(
        directory=args.dir,
        offline=args.offline,
        port=args.port,
        max_running_jobs_per_namespace=args.max_running_jobs,
        audit_log=args.audit_log,
    )
    (args.dir / "kubeconfig").unlink(missing_ok=True)  # it appears again once everything is ready
    cluster = LocalCluster(options)
    try:
        cluster.start()
    except (OSError, RuntimeError) as exc:
        cluster.stop()
        raise CommandError(str(exc)) from None
    mode = "offline provider (placeholders, no paid API)" if args.offline else "the providers in each spec"
    print(f"contentgen local-cluster: API server {cluster.control.url}, {mode}", flush=True)
    print(f"  export KUBECONFIG={(args.dir / 'kubeconfig').resolve()}", flush=True)
    print(f"  store {(args.dir / 'store').resolve()}, catalog {(args.dir / 'catalog').resolve()}", flush=True)
    print(f"  operator log {cluster.operator_log}; Ctrl-C stops everything", flush=True)
    try:
        cluster.run()
    finally:
        cluster.stop()
        (args.dir / "kubeconfig").unlink(missing_ok=True)
    return 0
