"""`pods/log`: a container's log as the API server relays it from the kubelet (what `kubectl
logs` reads, also `kubectl logs job/NAME`), from the local node's log files.

Query parameters as `PodLogOptions`: `container` (required when the pod has more than one),
`follow`, `tailLines`, `limitBytes`, `previous`. The errors are the real server's: 404 for a pod
that does not exist, 400 naming the containers to choose from, a container that is not valid,
one still waiting to start, or a previous instance (containers here never restart). Not done:
`sinceSeconds`, `sinceTime` and `timestamps` (the node does not time-stamp lines).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import pods
from .errors import ApiError, bad_request
from .pods import PODS

if TYPE_CHECKING:
    from .apiserver import ControlPlane, Request

FINISHED = ("Succeeded", "Failed")
LogSource = Callable[[str, str, str], "Path | None"]  # (namespace, pod, container) -> its log file


@dataclass
class PodLog:
    """A container's log, served all at once or followed until the container ends."""

    path: Path
    follow: bool
    tail_lines: int | None
    limit_bytes: int | None
    running: Callable[[], bool]  # whether the container may still write
    poll: float = 0.2

    def chunks(self, stop: Callable[[], bool]) -> Iterator[bytes]:
        left = self.limit_bytes
        data, offset = self._read(0)
        if self.tail_lines is not None:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[len(lines) - self.tail_lines :]) if self.tail_lines else b""
        while True:
            if left is not None:
                data, left = data[:left], left - len(data[:left])
            if data:
                yield data
            if not self.follow or left == 0 or stop():
                return
            still = self.running()  # asked before reading, so nothing written last is missed
            data, offset = self._read(offset)
            if not data:
                if not still:
                    return
                time.sleep(self.poll)

    def _read(self, offset: int) -> tuple[bytes, int]:
        try:
            with self.path.open("rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return b"", offset
        return data, offset + len(data)


def _number(req: Request, name: str, least: int) -> int | None:
    value = req.query.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"invalid value for {name}: {value!r}") from None
    if number < least:
        raise ApiError(
            422, "Invalid", f'PodLogOptions "{req.name}" is invalid: {name}: must be at least {least}'
        )
    return number


def pod_log(plane: ControlPlane, req: Request) -> PodLog:
    with plane.store.lock:
        pod = pods.named_pod(plane, req)
        names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        statuses = {s["name"]: s for s in (pod.get("status") or {}).get("containerStatuses") or []}
        uid = pod["metadata"]["uid"]
    container = req.query.get("container") or ""
    if not container:
        if len(names) != 1:
            raise bad_request(
                f"a container name must be specified for pod {req.name}, choose one of: [{' '.join(names)}]"
            )
        container = names[0]
    if container not in names:
        raise bad_request(f"container {container} is not valid for pod {req.name}")
    if req.query.get("previous") in ("true", "1"):
        raise bad_request(f'previous terminated container "{container}" in pod "{req.name}" not found')
    tail_lines, limit_bytes = _number(req, "tailLines", 0), _number(req, "limitBytes", 1)
    source: LogSource | None = plane.pod_logs
    path = source(req.namespace, req.name, container) if source is not None else None
    if path is None:
        waiting = (statuses.get(container) or {}).get("state", {}).get("waiting") or {}
        reason = waiting.get("reason") or "ContainerCreating"
        raise bad_request(f'container "{container}" in pod "{req.name}" is waiting to start: {reason}')

    def running() -> bool:
        current = plane.store.peek(PODS, req.namespace, req.name)
        return (
            current is not None
            and current["metadata"]["uid"] == uid
            and (current.get("status") or {}).get("phase") not in FINISHED
        )

    return PodLog(path, req.query.get("follow") in ("true", "1"), tail_lines, limit_bytes, running)
