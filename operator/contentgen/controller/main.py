"""Starting the operator: kopf's command line, built from the settings."""

from __future__ import annotations

from .settings import OperatorSettings

MODULE = "contentgen.controller.handlers"


def kopf_args(settings: OperatorSettings) -> list[str]:
    """`kopf run` arguments for these settings (what `contentgen operator` runs)."""
    args = ["run", "-m", MODULE, f"--log-format={settings.log_format}"]
    if settings.health_port:
        # kopf's probe endpoint: 200 once the operator runs (the chart's liveness and readiness).
        args.append(f"--liveness=http://0.0.0.0:{settings.health_port}/healthz")
    if settings.watch_namespaces:
        args += [f"--namespace={ns}" for ns in settings.watch_namespaces]
    else:
        args.append("--all-namespaces")
    return args
