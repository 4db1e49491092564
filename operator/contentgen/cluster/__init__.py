"""A local Kubernetes control plane that follows a real API server's rules.

It serves the Kubernetes API over TLS for the real kubectl, kopf and the kubernetes client:
CRD admission as apiextensions does it, custom resources with defaulting, pruning, schema and CEL
validation, the status subresource, optimistic concurrency, merge/JSON patches and server-side
apply, watches with bookmarks and 410 Gone, finalizers and garbage collection, RBAC
authorization (with OwnerReferencesPermissionEnforcement), discovery, OpenAPI v2/v3 and Table
output; with a Job controller and a local pod runner it is `contentgen local-cluster`.
What it does not do is listed in tests/README.md.
"""
