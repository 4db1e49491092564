"""The GPUs a worker holds (CONTENTGEN_GPU_COUNT, set by the chart to the Job's GPU request) and
how long it holds them: provider cluster's cost is GPU time, seconds held × GPUs
(`pricing.cluster_usage`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from contentgen.providers.settings import ClusterWorkerSettings, from_environment


def gpu_count(env: Mapping[str, str] | None = None) -> int:
    """How many GPUs the worker's pod requested: 1 unless CONTENTGEN_GPU_COUNT says otherwise."""
    return from_environment(ClusterWorkerSettings, env).gpu_count


class GpuClock:
    """GPU-seconds since it was made: wall-clock seconds (monotonic) × the GPUs held."""

    def __init__(self, gpus: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._gpus, self._clock = gpus, clock
        self._start = clock()

    def gpu_seconds(self) -> float:
        return max(0.0, self._clock() - self._start) * self._gpus
