"""CR → Job: the Job the operator creates for one resource generation. A pure function, also
behind `contentgen render-job`.

The Job carries the spec snapshot it runs (env CONTENTGEN_SPEC), so editing the resource never
changes a Job already made. Pods are hardened (Pod Security Standard "restricted"), write only
to their emptyDir volumes, and get provider keys and store credentials through secretKeyRef
only; the worker never sees MongoDB.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contentgen.api import API_VERSION, KINDS, SpecSnapshot
from contentgen.api.providers import OFFLINE, provider_entry

from .denoising import ANNOTATION_DENOISING, LABEL_POOL, denoising
from .job_defaults import GpuJob, KindDefaults, Resources
from .jobsets import NODE, across_nodes
from .kinds import controller_kind
from .naming import ANNOTATION_GPUS, ANNOTATION_INPUTS, ANNOTATION_PROVIDER, LABEL_QUEUE, job_name, labels
from .placement import TRAINJOB, Placement, Refused, asked, placement
from .run_credentials import ENV as CREDENTIALS_ENV
from .run_credentials import FILE as CREDENTIALS_FILE
from .run_credentials import MOUNT as CREDENTIALS_MOUNT
from .run_credentials import secret_name
from .settings import OperatorSettings
from .supersede import inputs_digest

WORKER_UID = 10001
WORK_DIR = "/work"
# `contentgen worker` exits with this on permanent failures (bad input, refused keys): the Job
# fails at once instead of spending its backoff limit on retries that cannot succeed.
EXIT_PERMANENT = 2

# What the worker of provider cluster reads (providers/cluster): the models' root, and, with a
# store prefix, where the models are copied from and the node's cache they are copied into.
MODELS_DIR, MODELS_CACHE = "/models", "/models-cache"


def missing_credentials(provider: str, settings: OperatorSettings) -> str:
    """The provider key the operator cannot hand to workers (no Secret configured), or ""."""
    secret = settings.key_secret(provider)
    return (
        provider_entry(provider).key
        if secret is not None and not secret.name and not settings.offline
        else ""
    )


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def worker_env(snapshot: SpecSnapshot, settings: OperatorSettings, job: str) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "CONTENTGEN_SPEC", "value": snapshot.model_dump_json(by_alias=True, exclude_none=True)},
        {"name": "CONTENTGEN_JOB_NAME", "value": job},
        {"name": "CONTENTGEN_STORE", "value": settings.store},
        {"name": "CONTENTGEN_WORK_DIR", "value": WORK_DIR},
        {"name": "CONTENTGEN_MAX_DOWNLOAD_BYTES", "value": str(settings.max_download_bytes)},
        {"name": "CONTENTGEN_MAX_VIDEO_SECONDS", "value": str(settings.max_video_seconds)},
        {"name": "CONTENTGEN_ALLOW_PRIVATE_SOURCES", "value": str(settings.allow_private_sources).lower()},
        {"name": "HOME", "value": "/tmp"},  # noqa: S108 - an emptyDir of its own
    ]
    provider, entry = snapshot.provider, provider_entry(snapshot.provider)
    # The provider settings and the price table the operator was given, for the worker's own
    # reading (providers/settings.py; pricing: prices the worker cannot read from the provider).
    env += [{"name": name, "value": value} for name, value in settings.environment(provider).items()]
    if entry.key or entry.own_gpus:
        env.append({"name": "CONTENTGEN_PRICES", "value": settings.prices.model_dump_json(by_alias=True)})
    if entry.own_gpus:
        where = denoising(snapshot, settings)
        if where is not None and where.pool is not None:  # the pool holds the GPU and the models
            env.append({"name": "CONTENTGEN_CLUSTER_POOL_URL", "value": where.pool.url})
        else:
            gpu, placed = run_gpus(snapshot, settings)
            env += gpu_env(gpu, settings, placed, job)
    secret = settings.key_secret(provider)
    if secret is not None and secret.name:
        env.append(_secret_env(entry.key, secret.name, secret.key))
    if settings.store.startswith("s3://"):  # a file:// store needs no keys
        env += store_access(settings)
    if settings.s3_endpoint_url:
        env.append({"name": "AWS_ENDPOINT_URL", "value": settings.s3_endpoint_url})
    if settings.s3_region:
        env.append({"name": "AWS_REGION", "value": settings.s3_region})
    if settings.store_public_endpoint_url:
        env.append(
            {"name": "CONTENTGEN_STORE_PUBLIC_ENDPOINT_URL", "value": settings.store_public_endpoint_url}
        )
    return env


def store_access(settings: OperatorSettings) -> list[dict[str, Any]]:
    """How the worker reaches the store (docs/security.md): its run's own credentials, mounted from
    the run's Secret (run_credentials.py); the namespace's Secret with the whole bucket's key; or
    nothing (its ServiceAccount's workload identity)."""
    if settings.store_access == "per-run":
        return [{"name": CREDENTIALS_ENV, "value": f"{CREDENTIALS_MOUNT}/{CREDENTIALS_FILE}"}]
    if settings.store_access == "secret" and settings.s3_secret:
        return [
            _secret_env("AWS_ACCESS_KEY_ID", settings.s3_secret, "AWS_ACCESS_KEY_ID"),
            _secret_env("AWS_SECRET_ACCESS_KEY", settings.s3_secret, "AWS_SECRET_ACCESS_KEY"),
        ]
    return []


def credentials_volume(job: str, settings: OperatorSettings) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The run's own credentials' volume and mount (per-run), None otherwise."""
    if settings.store_access != "per-run" or not settings.store.startswith("s3://"):
        return None
    volume = {"name": "store-credentials", "secret": {"secretName": secret_name(job), "defaultMode": 0o440}}
    return volume, {"name": "store-credentials", "mountPath": CREDENTIALS_MOUNT, "readOnly": True}


def scheduling(settings: OperatorSettings, gpu: GpuJob | None = None) -> dict[str, Any]:
    """Where worker pods may run: the pod spec's scheduling fields, those that are set. A GPU
    worker's (`gpu`) add the GPU nodes' selector and tolerations to the workers' own, and take the
    GPU priority class where one is set."""
    fields: dict[str, Any] = {
        "nodeSelector": settings.worker_node_selector,
        "tolerations": settings.worker_tolerations,
        "affinity": settings.worker_affinity,
        "priorityClassName": settings.worker_priority_class_name,
    }
    if gpu is not None:
        fields["nodeSelector"] = {**fields["nodeSelector"], **settings.gpu_node_selector, **gpu.node_selector}
        extra = [t for t in settings.gpu_tolerations if t not in fields["tolerations"]]
        fields["tolerations"] = [*fields["tolerations"], *extra]
        fields["priorityClassName"] = settings.gpu_priority_class_name or fields["priorityClassName"]
    return {key: value for key, value in fields.items() if value}


def gpu_job(kind: str, settings: OperatorSettings) -> GpuJob:
    """How `kind`'s Jobs of provider cluster run: the settings' (gpu.jobs), else the kind's own
    declaration (controller/kinds/); UnknownKind, in one line, for a kind none declares."""
    return settings.gpu_jobs.get(kind) or controller_kind(kind).gpu_job


def run_gpus(snapshot: SpecSnapshot, settings: OperatorSettings) -> tuple[GpuJob, Placement]:
    """A GPU run's pod GPUs (its kind's, with the count its spec.resources asks on each node) and
    where it goes; one pod of its kind's count where the chart cannot give what it asks (the
    operator waits on that before it renders: placement.Refused)."""
    gpu = gpu_job(snapshot.kind, settings)
    if "resources" not in KINDS[snapshot.kind].spec.model_fields:  # one process, whatever its GPUs
        return gpu, Placement(gpu.count, processes_per_gpu=False)
    placed = placement(snapshot.spec, gpu, settings)
    if isinstance(placed, Refused):
        placed = Placement(gpu.count)
    return gpu.model_copy(update={"count": placed.gpus}), placed


def refused(kind: str, spec: Mapping[str, Any], provider: str, settings: OperatorSettings) -> Refused | None:
    """Why the cluster's chart says no node, or no controller it runs, can give what a run of
    `provider` asking `spec.resources` wants (TooManyGpus, BackendUnavailable: placement.py); None
    where it can, or where the run holds no GPU of its own. What the operator waits on before it
    renders (reconciler.py), and what `contentgen render-job` prints instead of an object."""
    if not provider_entry(provider).own_gpus or not asked(spec):
        return None
    found = placement(spec, gpu_job(kind, settings), settings)
    return found if isinstance(found, Refused) else None


def gpu_resources(gpu: GpuJob) -> dict[str, dict[str, str]]:
    """The GPU worker's resources: its kind's, with its GPUs (an extended resource: its request,
    when given, must equal its limit)."""
    count = {gpu.resource_name: str(gpu.count)}
    resources = Resources(
        requests={**gpu.resources.requests, **count}, limits={**gpu.resources.limits, **count}
    )
    return resources.model_dump()


def gpu_env(
    gpu: GpuJob, settings: OperatorSettings, placed: Placement | None = None, name: str = ""
) -> list[dict[str, Any]]:
    """The cluster provider's variables: the GPUs the run holds (for GPU-seconds: every node's),
    where the models are; with more than one GPU, torchrun's (processes on each node, nodes, and
    across nodes this pod's rank, from its completion index, and the first pod's stable name)."""
    placed = placed or Placement(gpu.count)
    models = settings.cluster_models
    env: dict[str, Any] = {
        "CONTENTGEN_GPU_COUNT": str(placed.total),
        "CONTENTGEN_CLUSTER_MODELS_DIR": MODELS_DIR,
    }
    if models.store_prefix:
        env["CONTENTGEN_CLUSTER_MODELS_DIR"] = MODELS_CACHE
        env["CONTENTGEN_CLUSTER_MODELS_STORE"] = models.store_prefix
    if placed.processes and placed.backend != TRAINJOB:  # Kubeflow Trainer sets a TrainJob's own
        env["PET_NPROC_PER_NODE"], env["PET_NNODES"] = str(placed.gpus), str(placed.nodes)
    if placed.nodes > 1 and placed.backend != TRAINJOB:
        index = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        env["PET_NODE_RANK"] = {"fieldRef": {"fieldPath": index}}
        env["PET_MASTER_ADDR"] = f"{name}-{NODE}-0-0.{name}"  # JobSet's stable name of its first pod
        env["PET_MASTER_PORT"] = str(settings.gpu_training.port)
    return [
        {"name": key, "valueFrom": value} if isinstance(value, dict) else {"name": key, "value": value}
        for key, value in env.items()
    ]


def models_volume(settings: OperatorSettings) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The models' volume of a GPU worker and its mount: read-only where the models are staged,
    writable where the worker copies them into a cache; None when nothing is configured (the
    worker then reports ModelNotFound, naming the path it looked in)."""
    models = settings.cluster_models
    if models.persistent_volume_claim:
        source: dict[str, Any] = {
            "persistentVolumeClaim": {"claimName": models.persistent_volume_claim, "readOnly": True}
        }
    elif models.host_path:
        source = {"hostPath": {"path": models.host_path, "type": "Directory"}}
    elif models.store_prefix and models.cache_host_path:
        source = {"hostPath": {"path": models.cache_host_path, "type": "DirectoryOrCreate"}}
    elif models.store_prefix:
        source = {"emptyDir": {"sizeLimit": models.cache_size}}
    else:
        return None
    cached = bool(models.store_prefix)
    mount = {"name": "models", "mountPath": MODELS_CACHE if cached else MODELS_DIR, "readOnly": not cached}
    return {"name": "models", **source}, mount


def queue_name(snapshot: SpecSnapshot, namespace_queue: str, settings: OperatorSettings) -> str:
    """The Kueue LocalQueue of a Job: the spec's `queueName`, whatever the provider (asked for);
    else, for a GPU Job, its namespace's (the `queueNameLabel` label), else the operator's default
    (the platform's queues are for GPU work); "" for none."""
    if asked := str(snapshot.spec.get("queueName") or ""):
        return asked
    if not provider_entry(snapshot.provider).own_gpus:
        return ""
    where = denoising(snapshot, settings)
    if where is not None and where.pool is not None:
        return ""  # it holds no GPU: the pool's pods do, in their own queue (pools.items[].queueName)
    return namespace_queue or settings.queue_name


def render_job(
    snapshot: SpecSnapshot, settings: OperatorSettings, *, namespace_queue: str = ""
) -> dict[str, Any]:
    """The Job of `snapshot`; `namespace_queue`: the Kueue LocalQueue its namespace names, if any."""
    inputs = inputs_digest(snapshot.spec)  # of the resource's spec, as a later generation compares it
    snapshot = as_run(snapshot, settings)
    kind = KINDS[snapshot.kind]
    defaults = settings.kinds.get(kind.kind) or controller_kind(kind.kind).job
    where = denoising(snapshot, settings)
    pooled = where is not None and where.pool is not None  # no GPU, no models: the pool's
    gpu = (
        run_gpus(snapshot, settings)[0] if provider_entry(snapshot.provider).own_gpus and not pooled else None
    )
    name = job_name(kind, snapshot.name, snapshot.uid, snapshot.generation)
    job_labels = labels(
        kind, snapshot.name, snapshot.owner, snapshot.uid, snapshot.generation, snapshot.version
    )
    annotations = {ANNOTATION_INPUTS: inputs, ANNOTATION_PROVIDER: snapshot.provider}
    pod_labels = dict(job_labels)
    if where is not None:
        annotations[ANNOTATION_DENOISING] = where.describe()
        if where.pool is not None:
            pod_labels[LABEL_POOL] = where.pool.name  # counted by the pool's autoscaler
    if gpu is not None:
        annotations[ANNOTATION_GPUS] = f"{gpu.count} {gpu.resource_name}"
    job_metadata_labels = dict(job_labels)
    if queue := queue_name(snapshot, namespace_queue, settings):
        job_metadata_labels[LABEL_QUEUE] = queue  # Kueue suspends the Job until it admits it
    volumes, mounts = storage(defaults, gpu, settings)
    if (credentials := credentials_volume(name, settings)) is not None:
        volumes.append(credentials[0])
        mounts.append(credentials[1])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": snapshot.namespace,
            "labels": job_metadata_labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(kind.kind, snapshot)],
        },
        "spec": {
            "backoffLimit": defaults.backoff_limit,
            "activeDeadlineSeconds": defaults.active_deadline_seconds,
            "ttlSecondsAfterFinished": defaults.ttl_seconds_after_finished,
            "podFailurePolicy": failure_policy(),
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": pod_spec(
                    worker_container(snapshot, settings, name, defaults, gpu, mounts), volumes, settings, gpu
                ),
            },
        },
    }


def render_run(
    snapshot: SpecSnapshot, settings: OperatorSettings, *, namespace_queue: str = ""
) -> dict[str, Any]:
    """What runs `snapshot`: its Job, or across nodes (spec.resources) the JobSet or TrainJob of its
    nodes, each node's pod the Job's (jobsets.py)."""
    job = render_job(snapshot, settings, namespace_queue=namespace_queue)
    if not provider_entry(snapshot.provider).own_gpus or not asked(snapshot.spec):
        return job
    _, placed = run_gpus(as_run(snapshot, settings), settings)
    return across_nodes(job, placed, settings)


def as_run(snapshot: SpecSnapshot, settings: OperatorSettings) -> SpecSnapshot:
    """The snapshot the Job runs: with the operator offline, a paid provider's run is the offline
    provider's (recorded as such); the cluster's own GPUs cost no provider anything and run as asked."""
    if settings.offline and provider_entry(snapshot.provider).key:
        return snapshot.model_copy(update={"spec": {**snapshot.spec, "provider": OFFLINE.name}})
    return snapshot


def storage(
    defaults: KindDefaults, gpu: GpuJob | None, settings: OperatorSettings
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The worker's volumes and their mounts: its work folder, its /tmp, and a GPU Job's models."""
    volumes: list[dict[str, Any]] = [
        {"name": "work", "emptyDir": {"sizeLimit": defaults.work_volume_size}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "work", "mountPath": WORK_DIR},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir of its own
    ]
    if gpu is not None and (models := models_volume(settings)) is not None:
        volumes.append(models[0])
        mounts.append(models[1])
    return volumes, mounts


def owner_reference(kind: str, snapshot: SpecSnapshot) -> dict[str, Any]:
    """The resource as the Job's controller: deleting it deletes the Job (foreground waits)."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": snapshot.name,
        "uid": snapshot.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def failure_policy() -> dict[str, Any]:
    """A worker's permanent failure ends the Job at once; a pod disrupted (evicted, preempted, its
    node drained) is retried without counting against backoffLimit."""
    return {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": "worker", "operator": "In", "values": [EXIT_PERMANENT]},
            },
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]
    }


def restricted() -> dict[str, Any]:
    """The Pod Security Standards' restricted profile for a container, its root read-only."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def worker_container(
    snapshot: SpecSnapshot,
    settings: OperatorSettings,
    name: str,
    defaults: KindDefaults,
    gpu: GpuJob | None,
    mounts: list[dict[str, Any]],
) -> dict[str, Any]:
    """The worker's container: its image, environment, resources and hardening."""
    return {
        "name": "worker",
        # a pooled worker only asks the pool and stores its pictures: the plain image has all it imports
        "image": settings.gpu_worker_image if gpu is not None else settings.worker_image,
        "imagePullPolicy": settings.worker_image_pull_policy,
        "args": ["worker"],
        "env": worker_env(snapshot, settings, name),
        "resources": gpu_resources(gpu) if gpu is not None else defaults.resources.model_dump(),
        "securityContext": restricted(),
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": mounts,
    }


def pod_spec(
    container: dict[str, Any], volumes: list[dict[str, Any]], settings: OperatorSettings, gpu: GpuJob | None
) -> dict[str, Any]:
    """The worker's pod: never restarted in place (the Job retries), its account, its user."""
    return {
        "restartPolicy": "Never",
        # SIGTERM stops the worker at once (cli/worker.py); SIGKILL after this
        "terminationGracePeriodSeconds": settings.worker_termination_grace_period_seconds,
        "serviceAccountName": settings.worker_service_account,
        "imagePullSecrets": [{"name": secret} for secret in settings.worker_image_pull_secrets],
        "automountServiceAccountToken": True,  # the progress channel needs it
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": WORKER_UID,
            "runAsGroup": WORKER_UID,
            "fsGroup": WORKER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
        **scheduling(settings, gpu),
    }
