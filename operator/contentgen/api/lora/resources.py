"""LoraTraining's spec.resources: the GPUs a training of provider cluster runs on, on one node or
several, and what runs its pods (docs/cluster-training.md#several-gpus)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ..base import ApiModel
from ..providers import OWN_GPUS, PICTURES_DEFAULT
from ..rules import AtDefault, Differs, GeneratedRule, Is, Rule, SpecField, Unset, generate

MAX_GPUS_PER_NODE = 16
MAX_NODES = 64
Backend = Literal["auto", "job", "jobset", "trainjob"]

NODES = SpecField("nodes", "integer", 1)
BACKEND = SpecField("backend", "string", "auto")
# several nodes need pods that find each other: a JobSet's, or a TrainJob's (a JobSet behind it)
SEVERAL_NODES_RULE = generate(
    Rule(
        NODES,
        "resources.nodes above 1 needs backend jobset or trainjob (or auto, the cluster's choice): a Job's "
        "pods do not find each other",
        # each read behind has(): the API server checks the CRD's default ({}) against it too
        (AtDefault(NODES), Unset(BACKEND), Differs(BACKEND, "job")),
    )
)


class ResourcesSpec(ApiModel):
    cel_rules = (SEVERAL_NODES_RULE.cel,)

    gpus: (
        Annotated[
            int,
            Field(
                ge=1,
                le=MAX_GPUS_PER_NODE,
                description="GPUs on each node, one training process on each (torchrun, DDP); unset: the "
                "cluster's count (gpu.jobs.LoraTraining.count). More than the cluster's GPU nodes hold is "
                "refused before the run (TooManyGpus).",
            ),
        ]
        | None
    ) = None
    nodes: Annotated[
        int,
        Field(
            ge=1,
            le=MAX_NODES,
            description="Nodes the training runs on, `gpus` on each: above 1, the pods of a JobSet (or a "
            "TrainJob) that start together and restart together.",
        ),
    ] = 1
    backend: Annotated[
        Backend,
        Field(
            description="What runs the pods: job (one pod, one node), jobset (JobSet: a pod per node, "
            "stable names, restarted as a group), trainjob (Kubeflow Trainer's torch-distributed runtime), "
            "or auto: a Job on one node, the cluster's choice (gpu.training.backend) on several.",
        ),
    ] = "auto"


PROVIDER = SpecField("provider", "string", PICTURES_DEFAULT)


def _for_cluster(field: SpecField, left: AtDefault | Unset) -> GeneratedRule:
    return generate(
        Rule(
            field,
            f"{field.name} is for provider cluster (fal and offline choose their own machines): leave it "
            "out, or use provider cluster",
            (left, Is(PROVIDER, OWN_GPUS)),
        )
    )


GPUS = SpecField("resources.gpus", "integer")
CLUSTER_RESOURCES_RULES = (
    _for_cluster(GPUS, Unset(GPUS)),
    _for_cluster(
        SpecField("resources.nodes", "integer", 1), AtDefault(SpecField("resources.nodes", "integer", 1))
    ),
    _for_cluster(
        SpecField("resources.backend", "string", "auto"),
        AtDefault(SpecField("resources.backend", "string", "auto")),
    ),
)

ResourcesField = Annotated[
    ResourcesSpec,
    Field(
        default_factory=ResourcesSpec,
        description="provider cluster: the GPUs and nodes the training runs on, and what runs its pods "
        "(docs/cluster-training.md#several-gpus). Left out: one pod with the cluster's GPUs.",
    ),
]
