"""A failed test on the real control plane reports what the cluster and the operator were doing
(harness.Cluster.describe): a timeout alone says only what did not happen."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import SHARED_CLUSTER
from tests.harness.kube import served_media

from .harness import Cluster, stop_shared


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome: Any = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    clusters = [v for v in getattr(item, "funcargs", {}).values() if isinstance(v, Cluster)]
    for cluster in clusters:
        report.sections.append(("cluster state and operator log", cluster.describe()))


@pytest.fixture(scope="module")
def media() -> Iterator[str]:
    """The face clip (tests/harness/kube.py: face_clip), and a text file posing as a video, served
    over HTTP; yields the base URL."""
    with served_media() as base:
        yield base


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """The shared cluster (harness.unoperated) runs while this worker's tests are SHARED_CLUSTER's
    modules, and stops when the next is not (after the module's own fixtures end)."""
    yield
    if nextitem is None or nextitem.nodeid.split("::", 1)[0] not in SHARED_CLUSTER:
        stop_shared()
