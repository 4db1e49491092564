"""Prometheus metrics of the operator (served on settings.metrics_port at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS_CREATED = Counter("contentgen_jobs_created_total", "Jobs the operator created.", ["kind"])
TRANSITIONS = Counter(
    "contentgen_phase_transitions_total",
    "Resources entering a phase (with its reason).",
    ["kind", "phase", "reason"],
)
RECONCILE_SECONDS = Histogram("contentgen_reconcile_seconds", "Time to reconcile one resource.", ["kind"])
ERRORS = Counter("contentgen_reconcile_errors_total", "Reconciles that raised.", ["kind", "error"])
QUEUE_LENGTH = Gauge("contentgen_queue_length", "Resources waiting for a free Job slot.")
WORK_QUEUE = Gauge("contentgen_workqueue_depth", "Resources waiting for a worker to reconcile them.")
CATALOG_BEHIND = Gauge(
    "contentgen_catalog_pending_writes", "Catalog writes waiting for MongoDB to come back."
)
CATALOG_WRITES = Counter("contentgen_catalog_writes_total", "Catalog documents written, by why.", ["reason"])
CLEANUPS = Counter("contentgen_cleanups_total", "Deletions cleaned up, by outcome.", ["kind", "outcome"])
WATCHED = Gauge(
    "contentgen_watched_objects", "The operator's Jobs and pods its watches hold, by resource.", ["resource"]
)
WATCH_LISTS = Counter(
    "contentgen_watch_lists_total",
    "Listings of Jobs and pods: the first, then one after each 410 Gone (a watch resumed too late).",
    ["resource"],
)
FOUND_DELETED = Counter(
    "contentgen_resources_found_deleted_total",
    "Custom resources deleted while kopf's watch was away (no DELETED event), found missing from a "
    "listing after it listed again, and forgotten.",
    ["kind"],
)
WEBHOOK_ATTEMPTS = Counter(
    "contentgen_webhook_attempts_total",
    "Webhook delivery attempts (notifier.py), by what came of them: delivered, retry (no 2xx: it "
    "waits for its next attempt or, after the last, failed) or disabled (410 Gone).",
    ["outcome"],
)
WEBHOOK_PENDING = Gauge("contentgen_webhook_deliveries_due", "Webhook deliveries due at the last round.")
