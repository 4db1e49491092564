"""Starting the operator: one leader (a Lease), then kopf's command line, built from the settings."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, cast

from contentgen.signals import on_sigterm

from .settings import OperatorSettings

MODULE = "contentgen.controller.handlers"
log = logging.getLogger("contentgen.operator")


def kopf_args(settings: OperatorSettings, liveness: str | None = None) -> list[str]:
    """`kopf run` arguments for these settings. `liveness`: where kopf serves its own liveness
    endpoint; `contentgen operator` puts it on loopback behind the operator's probes (health.py),
    in-process tests on the health port itself."""
    args = ["run", "--standalone", "-m", MODULE, f"--log-format={settings.log_format}"]
    if os.environ.get("CONTENTGEN_KOPF_VERBOSE") == "true":  # debugging: kopf's own debug log
        args.append("--verbose")
    if liveness is None and settings.health_port:
        liveness = f"http://0.0.0.0:{settings.health_port}/healthz"
    if liveness:
        args.append(f"--liveness={liveness}")
    if settings.watch_namespaces:
        args += [f"--namespace={ns}" for ns in settings.watch_namespaces]
    else:
        args.append("--all-namespaces")
    return args


def lease_namespace(settings: OperatorSettings) -> str:
    if settings.leader_election_namespace:
        return settings.leader_election_namespace
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    return os.environ.get("POD_NAMESPACE") or "contentgen"


def replica_identity(settings: OperatorSettings) -> str:
    """This replica's name: in the Lease, and as kopf's own id (POD_ID)."""
    import socket

    return settings.leader_identity or os.environ.get("HOSTNAME") or socket.gethostname()


def elector(settings: OperatorSettings, observer: Any = None) -> Any:
    """A LeaderElector on the settings' Lease, with a client of its own: every request bounded by
    the timing's request_timeout and never retried inside the client (urllib3 retries a timed-out
    request three times by default, which hid minutes in one renew)."""
    import kubernetes

    from .kube import client_configuration
    from .runtime.leader import LeaderElector, Timing

    timing = Timing()
    config = client_configuration()
    config.retries = False  # one try per request: the elector decides when to try again
    api = kubernetes.client.CoordinationV1Api(kubernetes.client.ApiClient(config))
    namespace, name = lease_namespace(settings), settings.leader_election_lease
    timeout = timing.request_timeout

    def read() -> dict[str, Any] | None:
        try:
            lease: dict[str, Any] = api.api_client.sanitize_for_serialization(
                api.read_namespaced_lease(name, namespace, _request_timeout=timeout)
            )
            return lease
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def write(body: dict[str, Any], create: bool) -> dict[str, Any]:
        lease = cast(Any, body)  # the client serializes a dict as it is (its stubs ask for a V1Lease)
        if create:
            result = api.create_namespaced_lease(namespace, lease, _request_timeout=timeout)
        else:
            result = api.replace_namespaced_lease(name, namespace, lease, _request_timeout=timeout)
        written: dict[str, Any] = api.api_client.sanitize_for_serialization(result)
        return written

    identity = replica_identity(settings)
    if observer is None:
        return LeaderElector(identity, read, write, name=name, namespace=namespace, timing=timing)
    return LeaderElector(
        identity, read, write, name=name, namespace=namespace, timing=timing, observer=observer
    )


def _loopback_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_operator(settings: OperatorSettings) -> int:
    """Serve the probes (health.py), hold the Lease (when leader election is on), then run kopf
    until it stops. From the moment this process cannot prove its lease its writes are refused
    (leader.may_act) and the process exits, before another replica may take over."""
    import kopf.cli

    from .health import Health, HealthServer
    from .runtime import leader as election

    stop = threading.Event()
    health = Health()
    server = HealthServer(settings.health_port, health).start() if settings.health_port else None
    liveness = f"http://127.0.0.1:{_loopback_port()}/healthz"
    health.kopf_liveness = liveness
    leader, keeper = None, None
    if settings.leader_election:
        leader = elector(settings, observer=health.attempted)
        health.stale_after = max(60.0, 3 * leader.timing.lease_duration)
        log.info("waiting to lead (lease %s/%s) as %s", leader.namespace, leader.name, leader.identity)
        with on_sigterm(lambda *_: stop.set()):
            acquired = leader.acquire(stop)
        if not acquired:
            health.role = "stopping"
            return 0

        def lost() -> None:
            log.error("leadership lost: exiting so that only the new leader acts")
            os._exit(1)

        election.current = leader  # every write asks it first (leader.may_act)
        keeper = threading.Thread(target=leader.keep, args=(stop, lost), name="lease", daemon=True)
        keeper.start()
    health.role = "leader"
    # kopf names itself from POD_ID, else from getpass.getuser(), which fails for a uid without a
    # passwd entry (an arbitrary uid): it gets this replica's name, as the Lease has it.
    os.environ.setdefault("POD_ID", replica_identity(settings))
    try:
        kopf.cli.main(args=kopf_args(settings, liveness=liveness), standalone_mode=False)
    finally:
        health.role = "stopping"
        stop.set()
        if keeper is not None and leader is not None:
            # The keeper releases the Lease after its last renew (a release from here could be
            # undone by a renew still in flight); release() below does nothing if it did.
            keeper.join(3 * leader.timing.request_timeout)
        if leader is not None:
            leader.release()
        if server is not None:
            server.stop()
    return 0
