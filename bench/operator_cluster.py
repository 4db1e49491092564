"""The control plane for bench/operator.py, in its own process: `contentgen local-cluster`'s API
server (TLS, RBAC, admission) with the CRDs, the chart's RBAC and the controllers a Job's
lifecycle needs besides a node (garbage collection, namespaces, ServiceAccounts). There is no
Job controller and no kubelet: the benchmark finishes the Jobs itself, as a Job controller
would, so what is measured is the operator (and the API server it shares the machine with).

    python -m bench.operator_cluster DIR [--flapping]

With --flapping the API server misbehaves like a flapping one: every second or two some
requests of the operator's kinds fail with 500, and every few seconds all watches are dropped.

writes DIR/kubeconfig (admin), DIR/operator.kubeconfig (the operator's ServiceAccount) and,
every half second, DIR/requests.json: requests per (user, verb, resource).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import yaml

from contentgen.api.crd import rendered_crds
from contentgen.cluster.gc import GarbageCollector
from contentgen.cluster.local import CHART_RBAC, OPERATOR_ACCOUNT, OPERATOR_NAMESPACE
from contentgen.cluster.namespaces import NamespaceController, ServiceAccountController
from contentgen.cluster.server import LocalControlPlane

FAULTS = [
    ("create", "jobs"),
    ("patch", "imagegenerations/status"),
    ("create", "events"),
    ("patch", "imagegenerations"),
    ("list", "imagegenerations"),
    ("watch", "jobs"),
    ("watch", "imagegenerations"),
]


def flap(plane: object, stats: dict[str, int]) -> None:
    import random
    import threading

    rng = random.Random(7)

    def run() -> None:
        while True:
            time.sleep(rng.uniform(0.5, 2.0))
            verb_resource = rng.choice(FAULTS)
            count = rng.randint(1, 3)
            # a burst of failures, not a backlog: the next `count` such requests fail
            plane.faults[verb_resource] = max(plane.faults.get(verb_resource, 0), count)  # type: ignore[attr-defined]
            stats["faults"] += count
            if rng.random() < 0.3:
                plane.watch_epoch += 1  # type: ignore[attr-defined]
                stats["watch_drops"] += 1

    threading.Thread(target=run, daemon=True).start()


def main(directory: str, flapping: bool = False) -> None:
    root = Path(directory)
    control = LocalControlPlane(root / "control-plane").start()
    control.plane.record_decisions = False  # the benchmark counts requests, not decisions
    for controller in (
        NamespaceController(control.plane),
        ServiceAccountController(control.plane),
        GarbageCollector(control.plane),
    ):
        controller.start()
    for text in rendered_crds().values():
        control.apply(yaml.safe_load(text))
    for doc in yaml.safe_load_all(CHART_RBAC.read_text()):
        if doc:
            control.apply(doc)
    token = control.token_for(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    control.write_kubeconfig(root / "operator.kubeconfig", token=token, user=OPERATOR_ACCOUNT)
    control.write_kubeconfig(root / "kubeconfig")
    stats = {"faults": 0, "watch_drops": 0}
    if flapping:
        flap(control.plane, stats)
    while True:
        counts = [[*key, n] for key, n in list(control.plane.request_counts.items())]
        temporary = root / "requests.tmp"
        temporary.write_text(json.dumps(counts))
        temporary.replace(root / "requests.json")
        (root / "flapping.json").write_text(json.dumps(stats))
        time.sleep(0.5)


if __name__ == "__main__":
    main(sys.argv[1], "--flapping" in sys.argv[2:])
