"""One real API server (etcd and kube-apiserver, as envtest runs them; no controllers, no node) for
the whole test session, started on first use: the reference for admission (tests/admission.py),
for the API's concurrency rules (optimistic locking of Leases), and for the HTTP API's calls
(TokenReview, creates; its audit log, `audit_log()`, says what the authorizers decided). Tests keep
to namespaces of their own."""

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

__all__ = ["ApiError", "admin", "admin_kubeconfig", "audit_log", "fresh_namespace", "server"]

_names = itertools.count(1)


@cache
def _control_plane() -> ControlPlane:
    root = Path(tempfile.mkdtemp(prefix="apiserver-"))
    control = ControlPlane(root, binaries.find(), audit_log=root / "audit.jsonl")
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


def audit_log() -> Path:
    """Every request the server answered (JSON lines, metadata level; tests/rbac/record.py reads it)."""
    path = _control_plane().audit_log
    assert path is not None
    return path


def admin_kubeconfig() -> Path:
    """A kubeconfig of a cluster admin (for the real kubectl)."""
    return _control_plane().admin_kubeconfig


def server() -> tuple[str, str]:
    """(the server's URL, its CA certificate in PEM)."""
    control = _control_plane()
    return control.url, control.ca.pem.decode() if isinstance(control.ca.pem, bytes) else str(control.ca.pem)
