"""The controllers `contentgen local-cluster` runs, started and stopped together (what
kube-controller-manager is to a cluster); the local node is started next to them."""

from __future__ import annotations

from typing import Any

from .gc import GarbageCollector
from .jobs import JobController
from .loop import Controller
from .namespaces import NamespaceController, RootCAPublisher, ServiceAccountController
from .ttl import TTLAfterFinishedController


class ControllerManager:
    def __init__(
        self,
        cp: Any,
        *,
        ca_pem: str = "",
        backoff_base: float = 10.0,
        backoff_cap: float = 600.0,
        user: Any = None,
    ) -> None:
        self.jobs = JobController(cp, user, backoff_base=backoff_base, backoff_cap=backoff_cap)
        self.controllers: list[Controller] = [
            NamespaceController(cp, user),  # first: the system namespaces exist when start() returns
            ServiceAccountController(cp, user),
            GarbageCollector(cp, user),
            self.jobs,
            TTLAfterFinishedController(cp, user),
        ]
        if ca_pem:
            self.controllers.append(RootCAPublisher(cp, ca_pem, user))

    def start(self) -> ControllerManager:
        for controller in self.controllers:
            controller.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        for controller in reversed(self.controllers):
            controller.stop(timeout)

    @property
    def errors(self) -> dict[str, list[str]]:
        """Sync failures other than conflicts, by controller (empty when all is well)."""
        return {c.name: list(c.errors) for c in self.controllers if c.errors}
