"""The control plane for bench/operator.py, in its own process: `contentgen local-cluster`'s API
server (TLS, RBAC, admission) with the CRDs, the chart's RBAC and the controllers a Job's
lifecycle needs besides a node (garbage collection, namespaces, ServiceAccounts). There is no
Job controller and no kubelet: the benchmark finishes the Jobs itself, as a Job controller
would, so what is measured is the operator (and the API server it shares the machine with).

    python -m bench.operator_cluster DIR

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


def main(directory: str) -> None:
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
    while True:
        counts = [[*key, n] for key, n in list(control.plane.request_counts.items())]
        temporary = root / "requests.tmp"
        temporary.write_text(json.dumps(counts))
        temporary.replace(root / "requests.json")
        time.sleep(0.5)


if __name__ == "__main__":
    main(sys.argv[1])
