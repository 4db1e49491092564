"""Every reason a resource's conditions and Events carry: the CamelCase word a program switches on
(`status.conditions[].reason`, the Event's reason, the catalog's `latestRun.error.reason`) and what
it means. docs/reference/statuses.md is generated from this table, and tests/docs checks that every
reason the operator, the pipeline, the providers and the store can write is in it."""

from __future__ import annotations

from dataclasses import dataclass

# Where a reason appears: the phase it goes with (its Ready condition's reason), or only in Events.
PENDING, RUNNING, SUCCEEDED, FAILED, EVENT = "Pending", "Running", "Succeeded", "Failed", "Event"
# Reasons of a condition other than Ready, Reconciling and Stalled (the LoraTraining's LikenessPoor).
CONDITION = "Condition"


@dataclass(frozen=True)
class Reason:
    phase: str  # PENDING, RUNNING, SUCCEEDED, FAILED, EVENT or CONDITION
    meaning: str
    stalled: bool = False  # Stalled=True: it waits for a person (or, Failed, will not get over it)


REASONS: dict[str, Reason] = {
    # --- waiting to run ---------------------------------------------------------------------------
    "Queued": Reason(PENDING, "The namespace already runs its maximum of Jobs (`maxRunningJobsPerNamespace`); first come, first served. Or its Job is held suspended: by Kueue until the queue admits it (the message names the queue and says why in Kueue's words, read from the Job's Workload: no quota left, the queue stopped, evicted, admitted and about to resume), or by hand. No deadline runs while it waits; the operator never resumes it."),
    "LoraNotReady": Reason(PENDING, "A `loraRef` names a LoraTraining that has no trained version yet; rechecked with backoff."),
    "JobCreated": Reason(PENDING, "The Job exists and its pod is starting."),
    "PodNotCreated": Reason(PENDING, "The Job's pod cannot be created (a quota, a LimitRange, a missing ServiceAccount); the message has the cluster's words. The Job keeps trying."),
    "PodNotScheduled": Reason(PENDING, "The pod cannot be scheduled (no node fits its requests, selectors or tolerations); the message has the scheduler's words. A GPU Job's says when no node has a GPU free (all taken, or none at all); it starts when one comes free."),
    "PodNotStarting": Reason(PENDING, "The pod cannot start: a missing Secret or key, an image that cannot be pulled; the message has the reason."),
    "Superseding": Reason(PENDING, "A spec change stops the run of an older generation first (its Job is deleted, its fal requests cancelled); the new generation starts next."),
    "LoraNotFound": Reason(PENDING, "A `loraRef` names a LoraTraining that does not exist; resolves by itself when it is created.", stalled=True),
    "LoraFailed": Reason(PENDING, "The LoraTraining a `loraRef` names failed and has no version; its reason is in the message. Resolves when it trains one.", stalled=True),
    "LoraOwnerMismatch": Reason(PENDING, "A `loraRef` names a LoraTraining of another owner than `spec.owner` without naming that owner (`loraRef.owner`), or a LoraEvaluation names another owner's.", stalled=True),
    "LoraNotShared": Reason(PENDING, "A `loraRef` names another owner's LoraTraining (`loraRef.owner`) that its owner has not shared with `spec.owner` for use (its annotation `contentgen.io/shared-with`); the message has the `kubectl annotate` that shares it. Starts by itself once shared.", stalled=True),
    "InputNotShared": Reason(PENDING, "An address in the spec (an `s3://` key, the store's https address, a presigned link) names another owner's output that its owner has not shared with `spec.owner` for what it needs (`use` for a LoRA's weights, `read` for any other file), an upload of another owner, or the store's own working state (docs/security.md). The same words at admission, in the HTTP API (403 `input_not_shared`) and here, whether the object exists or not; nothing is fetched. Starts by itself once shared. A worker that is handed such a spec anyway fails with it before it reads anything.", stalled=True),
    "LoraVersionNotFound": Reason(PENDING, "A `loraRef.version` names a version the LoraTraining does not have (not trained, or deleted); the message lists its usable versions: pin one of them, or leave `version` out for its latest.", stalled=True),
    "LoraIncompatible": Reason(PENDING, "A `loras[].loraRef` (or a LoraTraining's stored file by `url`) names a LoRA the spec's model cannot load: a FLUX.1 LoRA in a video, a Wan LoRA in a picture, or one made for another Wan model (its `training.baseModel`, docs/lora-datasets.md#video-loras). Nothing runs or is paid; use a LoRA made for the model, or animate a picture made with it (`imageRef`).", stalled=True),
    "LoraNotEvaluable": Reason(PENDING, "A LoraEvaluation's `loraRef` resolves to a version with no dataset archive to take the subject's faces from (one not trained from a video), so its likeness cannot be measured; evaluate another version. Or to a video LoRA (a Wan `training.baseModel`): the evaluation draws pictures with FLUX, which it does not load, so nothing is drawn or billed; make a clip with it and read the clip's likeness over time.", stalled=True),
    "ImageNotFound": Reason(PENDING, "A VideoGeneration's `imageRef` names an ImageGeneration that does not exist; resolves by itself when it is created.", stalled=True),
    "ImageNotReady": Reason(PENDING, "A VideoGeneration's `imageRef` names an ImageGeneration that has no generated version yet; rechecked with backoff (stalled when it failed)."),
    "ImageOwnerMismatch": Reason(PENDING, "A VideoGeneration's `imageRef` names an ImageGeneration of another owner than `spec.owner`.", stalled=True),
    "ImageVersionNotFound": Reason(PENDING, "A VideoGeneration's `imageRef.version` or `imageRef.image` names a version or picture the ImageGeneration does not have; the message lists what it has.", stalled=True),
    "OwnerNotAllowed": Reason(PENDING, "The namespace does not allow `spec.owner` (its `contentgen.io/owners` annotation, else the chart's `ownerPolicy`); the message has the `kubectl annotate` that allows it. Starts by itself once allowed.", stalled=True),
    "TooManyGpus": Reason(PENDING, "A LoraTraining's `resources` asks for more GPUs on a node than the cluster's GPU nodes hold (the chart's `gpu.training.gpusPerNode`), or more nodes than it gives a training (`gpu.training.maxNodes`); the message says how many it can have. Nothing runs or is paid; ask for fewer on each node, with more nodes (docs/cluster-training.md#several-gpus).", stalled=True),
    "BackendUnavailable": Reason(PENDING, "A LoraTraining's `resources.backend` names what this cluster does not run (JobSet, Kubeflow Trainer: the chart's `gpu.training.backends`); the message says which it runs. Nothing runs or is paid.", stalled=True),
    "MissingCredentials": Reason(PENDING, "The operator has no Secret for the resource's provider (`fal.existingSecret`, `assemblyai.existingSecret`); in a worker, a key that is missing. `provider: offline` needs none.", stalled=True),
    "BudgetExceeded": Reason(PENDING, "A monthly budget would be exceeded; the numbers are in the message. It starts by itself when the budget allows.", stalled=True),
    # --- running ------------------------------------------------------------------------------------
    "Running": Reason(RUNNING, "The worker is working; `progress` and `stage` are live."),
    "ResultUnreadable": Reason(RUNNING, "The run's Job has finished and the operator cannot read its result from the object store now (the message says why); it reads it again every 30 s at most and records the run as soon as it can, or as `Failed`/`StoreUnavailable` 10 minutes after the Job finished. A warning Event says so."),
    "NodeLost": Reason(RUNNING, "The run's pod is on a node that stopped answering (the node controller marked it not ready), or was deleted there (evicted after its toleration, 300 s by default, where another node is ready; never where none is) and stays Terminating, for no kubelet confirms its end; the Job makes no pod in its place meanwhile. The message names the pod and the node. The Job runs a new pod once the node comes back, or once a person who knows the node is down deletes the pod with `--force`; else the Job's `activeDeadlineSeconds` ends the run (Failed, `DeadlineExceeded`).", stalled=True),
    "SpecChanged": Reason(RUNNING, "The spec was edited during the run, and the run finishes first (bookkeeping-only changes, or a provider that cannot be stopped)."),
    # --- done ---------------------------------------------------------------------------------------
    "Succeeded": Reason(SUCCEEDED, "The outputs are in the status, the store and the catalog."),
    # --- failed: the input ------------------------------------------------------------------------
    "InvalidInput": Reason(FAILED, "The input cannot be used: a source that does not exist (HTTP 4xx, a host name that does not resolve twice in a row), is over the size or length limit, or is no usable video or audio; a LoRA version that was deleted; a LoRA a video model cannot load (a LoraTraining's FLUX.1 LoRA, a file whose layers are not the model's), said before anything is paid or drawn.", stalled=True),
    "InvalidSpec": Reason(FAILED, "The worker could not read the spec it was given.", stalled=True),
    "SourceRefused": Reason(FAILED, "A source the settings do not allow: an internal address (`allowPrivateSources`), an unsupported scheme, a redirect to one.", stalled=True),
    "SourceUnavailable": Reason(FAILED, "The source could not be fetched after retries (timeouts, 5xx, temporary name-resolution failures).", stalled=True),
    "DatasetTooSmall": Reason(FAILED, "Fewer usable images than `minFrames`; nothing was uploaded or paid for. `status.dataset` says what was dropped and why.", stalled=True),
    "SubjectAmbiguous": Reason(FAILED, "The video shows several people and none has clearly the most screen time; nothing was uploaded or paid. The message lists the people found; give `dataset.subject.referenceImages`.", stalled=True),
    "SubjectNotFound": Reason(FAILED, "No one in the video looks like `dataset.subject.referenceImages`; nothing was uploaded or paid. The message gives each person's similarity.", stalled=True),
    "InvalidImage": Reason(FAILED, "An image that cannot be decoded or encoded (a thumbnail).", stalled=True),
    "ModelNotFound": Reason(FAILED, "`provider: cluster`: a base model's directory is not staged, or is incomplete, or its copy from the models' store is missing files or does not match its SHA256SUMS; the message names the path. Nothing ran on a GPU; docs/cluster-gpus.md says how to stage the weights.", stalled=True),
    "DeviceUnavailable": Reason(FAILED, "`provider: cluster`: `CONTENTGEN_CLUSTER_DEVICE` names a GPU (`cuda`, `cuda:N`) that torch (training, generation) or CTranslate2 (transcription) does not see on the machine; said before any model is loaded, nothing ran. Unset it to run on what there is, or run the worker where that GPU is.", stalled=True),
    "GpuMemoryTooSmall": Reason(FAILED, "`provider: cluster`: the job's memory plan does not fit the GPU's free memory (`training.memoryPlan` or an ImageGeneration's `memoryPlan`, or the plan `auto` would choose: bf16, an 8-bit and a 4-bit base all too large); the message has the estimate, the free memory and what to change. Said before any model is loaded, nothing ran (docs/cluster-training.md#memory-plans).", stalled=True),
    "CheckpointUnreadable": Reason(FAILED, "A provider checkpoint in the store is not readable JSON; delete it (the message names it) to go on.", stalled=True),
    # --- failed: the provider ----------------------------------------------------------------------
    "ProviderRejected": Reason(FAILED, "The provider refused the request (HTTP 400, 401, 403, 422): a bad key, a bad input.", stalled=True),
    "ProviderJobFailed": Reason(FAILED, "The provider accepted the request and its job failed, or returned something that is not what was asked for (not a safetensors file, not an image).", stalled=True),
    "TranscriptionFailed": Reason(FAILED, "AssemblyAI ended the transcript with an error.", stalled=True),
    "ProviderError": Reason(FAILED, "The provider returned an image that cannot be decoded.", stalled=True),
    "ProviderOutcomeUnknown": Reason(FAILED, "A paid request may have been accepted, and the provider's records cannot tell; nothing is sent again. The message says what to check and which checkpoint to delete to submit anyway.", stalled=True),
    "ProviderBadResponse": Reason(FAILED, "The provider answered with something that is not its API's answer (HTML, a truncated body, a result without outputs).", stalled=True),
    "ProviderOutputExpired": Reason(FAILED, "A paid output the provider's CDN no longer serves; never generated again by itself.", stalled=True),
    "ProviderOutputTooLarge": Reason(FAILED, "A provider's output is larger than the worker accepts.", stalled=True),
    "ProviderTimeout": Reason(FAILED, "The provider did not answer, or its job did not end, in time (after retries).", stalled=True),
    "ProviderUnavailable": Reason(FAILED, "The provider answered 5xx after every retry.", stalled=True),
    "ProviderUnreachable": Reason(FAILED, "The provider could not be reached after every retry.", stalled=True),
    "RateLimited": Reason(FAILED, "The provider answered 429 after every retry.", stalled=True),
    # --- failed: the store, the Job ---------------------------------------------------------------
    "StoreAccessDenied": Reason(FAILED, "The object store refused the credentials or the bucket.", stalled=True),
    "StoreUnavailable": Reason(FAILED, "The object store could not be reached after retries; a paid output is saved by the next attempt.", stalled=True),
    "ObjectExists": Reason(FAILED, "An output key already holds other bytes; nothing is overwritten.", stalled=True),
    "StoreCorrupt": Reason(FAILED, "A stored object's bytes are not the ones recorded (their SHA-256) when it was written; the message names it.", stalled=True),
    "StoreUnsupported": Reason(FAILED, "The S3 server does not support conditional writes (`If-None-Match: *`, answered 501); outputs are not written where another writer could replace them.", stalled=True),
    "DeadlineExceeded": Reason(FAILED, "The Job ran longer than its `activeDeadlineSeconds`.", stalled=True),
    "BackoffLimitExceeded": Reason(FAILED, "The worker failed on every attempt (`backoffLimit`); the worker's last words are in the message.", stalled=True),
    "OOMKilled": Reason(FAILED, "The kernel killed the worker for using more than its memory limit (the Job's `resources.limits.memory`: the chart's `jobs.<Kind>.resources.limits.memory`) on its last attempt; the message names the limit. What a paid provider billed before is not known. Raise the limit and edit the spec to run again.", stalled=True),
    "PodFailurePolicy": Reason(FAILED, "The worker failed with an error that retrying cannot fix.", stalled=True),
    "JobLost": Reason(FAILED, "The run's Job disappeared before it ended and left no result; edit the spec to run again.", stalled=True),
    "ResultMissing": Reason(FAILED, "The Job completed without leaving a result.", stalled=True),
    "InternalError": Reason(FAILED, "A bug: the worker met an error it does not know; the message has it.", stalled=True),
    "StoppedBeforeCheckpoint": Reason(FAILED, "A person stopped a LoraTraining's run (`contentgen.io/stop: keep-best`, `contentgen assets stop`) before its trainer had stored any checkpoint, so there was nothing to keep; the steps it ran are billed (docs/cluster-training.md#stopping-early).", stalled=True),
    "Stopped": Reason(FAILED, "The worker was stopped by SIGTERM (its pod deleted or evicted) on every attempt, and wrote nothing after; a paid request in flight stays in its checkpoint, never sent again.", stalled=True),
    "Interrupted": Reason(FAILED, "On a laptop: `contentgen run` was stopped by Ctrl-C (SIGINT) or SIGTERM, and ended its record at once, its latest run's phase `Interrupted`: the message says the step it reached and the checkpoint it keeps. The same `contentgen run` resumes it as the same version, a training from its newest stored checkpoint (its steps not trained again), adopting what was paid for (docs/run.md)."),
    "Failed": Reason(FAILED, "A permanent failure without a more specific reason.", stalled=True),
    "Unavailable": Reason(FAILED, "A temporary failure without a more specific reason, after retries.", stalled=True),
    "Error": Reason(FAILED, "An error without a more specific reason.", stalled=True),
    # --- the LikenessPoor and LikenessEvaluated conditions (their other reasons are Events, below) ---
    "LikenessGood": Reason(CONDITION, "`LikenessPoor=False`: the newest version looks like the person (`status.likeness`, docs/likeness.md). Also `LikenessEvaluated=True` for the current generation's version."),
    "LikenessUnmeasured": Reason(CONDITION, "`LikenessPoor=Unknown`: the newest version's likeness could not be measured (`no-faces`, `unmeasured` or `skipped`; the message says why). Also `LikenessEvaluated=True` for the current generation's version (`no-faces` or `unmeasured`)."),
    "LikenessPending": Reason(CONDITION, "`LikenessEvaluated=Unknown`: the run of the spec's current generation has not ended, so its likeness is not known yet (docs/likeness.md#gates)."),
    "LikenessNotEvaluated": Reason(CONDITION, "`LikenessEvaluated=True`: the run of the spec's current generation ended without a likeness report (it failed, or made none); the message says why. A gate waiting on the evaluation stops here instead of running out its timeout."),
    # --- Events only ---------------------------------------------------------------------------------
    "LikenessPoor": Reason(EVENT, "A LoraTraining's new version does not look like the person (`status.likeness`, docs/likeness.md); it is kept and usable, the message says why. Also the reason of its condition `LikenessPoor=True` while that version is the newest, and of `LikenessEvaluated=True` when it is the current generation's."),
    "CheckpointChosen": Reason(EVENT, "A LoraTraining's new version has an earlier checkpoint's LoRA as its model, not its training's last step's: that checkpoint scored best (docs/likeness.md#checkpoints). The message names both steps and why; the last step's LoRA is kept (`finalModelUri`)."),
    "LikenessSkipped": Reason(EVENT, "A LoraTraining's run starts without its likeness evaluation: its monthly budget covers the training but not the evaluation (the message has the numbers). The version's `likeness` says `skipped` with the reason. Also the reason of `LikenessEvaluated=True` for that version."),
    "CheckpointPromoted": Reason(EVENT, "A LoraTraining's annotation contentgen.io/promoted-checkpoints made a scored checkpoint a version's model (or, removed, gave the version back its automatic choice): the message names each version, step and the automatic choice (docs/likeness.md#choosing-a-checkpoint-yourself)."),
    "PromotionRefused": Reason(EVENT, "A LoraTraining's annotation contentgen.io/promoted-checkpoints names a version or step that cannot be promoted (not listed, not scored) or is not JSON; the message says which (also `status.promotionProblem`). The versions it could promote are promoted."),
    "VerdictChosen": Reason(EVENT, "A LoraTraining's annotation contentgen.io/verdicts made an evaluation a version's verdict (or, removed, gave the version back its own evaluation's): the message names each version and evaluation (docs/likeness.md#one-verdict-per-version)."),
    "VerdictRefused": Reason(EVENT, "A LoraTraining's annotation contentgen.io/verdicts names a version or an evaluation that cannot be a verdict (not listed, not an evaluation of the version, pictures made elsewhere, an evaluation that measured nothing) or is not JSON; the message says which (also `status.verdictProblem`). The versions it could set are set."),
    "TrainingStopped": Reason(EVENT, "A LoraTraining's new version was made by a training that stopped before its last step: its likeness stopped rising (`training.stopWhen.likenessPlateau`), its next steps would have passed a budget, or a person stopped it (`contentgen.io/stop`). The message names the step, why, and the GPU time and money saved; the version's model is its best-scoring checkpoint so far (`status.versions[].stopped`, docs/cluster-training.md#stopping-early)."),
    "StopRefused": Reason(EVENT, "A LoraTraining's annotation `contentgen.io/stop` has a value other than `keep-best` (also `status.stopProblem`: nothing is stopped), or asks to stop when no run goes (the operator removes it, saying so, as it removes one whose run has ended: it never stops a later run)."),
    "Superseded": Reason(EVENT, "The run of an older generation was stopped by a spec change; per request, what was billed."),
    "ProviderWorkCancelled": Reason(EVENT, "A deleted resource's provider requests were cancelled; per request, whether it was billed."),
    "ProviderCancelFailed": Reason(EVENT, "A deleted resource's provider requests could not be cancelled."),
    "CleanedUp": Reason(EVENT, "`deletionPolicy: Delete`: the resource's stored objects were removed."),
    "CleanupFailed": Reason(EVENT, "Removing the stored objects failed; retried with backoff (the message says why)."),
    "StoreCredentialsUnavailable": Reason(EVENT, "s3.workerCredentials perRun: the store's STS gave no credentials for the run (the message has its words: no role, a refusal, unreachable), or the run names more inputs than one session policy holds; no Job is made, and it is tried again with backoff (docs/security.md)."),
    "SharedInputUsed": Reason(EVENT, "The run reads another owner's output that its owner shares with `spec.owner` (the message names both owners, the field and the key's folder, never the rest of the key): the audit of what crosses owners (docs/security.md)."),
    "JobNameTaken": Reason(EVENT, "A Job of the name this resource's Job must have belongs to another resource; it is left alone (the message names it: delete it for this resource to run), and the creation is retried with backoff."),
    "CleanupSkipped": Reason(EVENT, "The resource was annotated `contentgen.io/skip-cleanup=true`: its objects were left in the store."),
}  # fmt: skip
