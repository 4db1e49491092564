"""The operator: kopf handlers (thin) over reconcile decisions (pure) over adapters
(Kubernetes, the catalog, the object store)."""
