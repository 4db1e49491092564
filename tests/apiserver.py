"""One real API server (etcd and kube-apiserver, as envtest runs them; no controllers, no node) for
the whole test session, started on first use: the reference for admission (tests/admission.py)
and for the API's concurrency rules (optimistic locking of Leases). Tests keep to namespaces of
their own."""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile
from functools import cache
from pathlib import Path

from localcluster import binaries
from localcluster.client import ApiError, Client
from localcluster.controlplane import ControlPlane

__all__ = ["ApiError", "admin", "fresh_namespace"]

_names = itertools.count(1)


@cache
def _control_plane() -> ControlPlane:
    root = Path(tempfile.mkdtemp(prefix="apiserver-"))
    control = ControlPlane(root, binaries.find())
    control.start(controllers=False)

    def stop() -> None:
        control.stop()
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    return control


@cache
def admin() -> Client:
    return _control_plane().client()


def fresh_namespace(prefix: str = "t") -> str:
    name = f"{prefix}-{next(_names)}"
    admin().create(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    return name
