{{/* Names, labels and the rules shared by the templates. */}}

{{- define "contentgen.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object's name: the release name, plus the chart name unless it holds it. */}}
{{- define "contentgen.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "contentgen.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "contentgen.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: contentgen
{{- end -}}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "operator"). */}}
{{- define "contentgen.selectorLabels" -}}
app.kubernetes.io/name: {{ include "contentgen.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "contentgen.componentLabels" -}}
{{ include "contentgen.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "contentgen.operatorName" -}}
{{- printf "%s-operator" (include "contentgen.fullname" .) -}}
{{- end -}}

{{- define "contentgen.apiName" -}}
{{- printf "%s-api" (include "contentgen.fullname" .) -}}
{{- end -}}

{{- define "contentgen.operatorServiceAccount" -}}
{{- default (include "contentgen.operatorName" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "contentgen.apiServiceAccount" -}}
{{- default (include "contentgen.apiName" .) .Values.api.serviceAccount.name -}}
{{- end -}}

{{/* The ClusterRole of the worker's progress channel (the operator binds it per namespace). */}}
{{- define "contentgen.workerClusterRole" -}}
{{- default (printf "%s-worker" (include "contentgen.fullname" .)) .Values.worker.clusterRoleName -}}
{{- end -}}

{{- define "contentgen.image" -}}
{{- printf "%s:%s" .repository (default .appVersion .tag) -}}
{{- end -}}

{{- define "contentgen.operatorImage" -}}
{{- include "contentgen.image" (dict "repository" .Values.image.repository "tag" .Values.image.tag "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{- define "contentgen.workerImage" -}}
{{- include "contentgen.image" (dict "repository" .Values.worker.image.repository "tag" .Values.worker.image.tag "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{- define "contentgen.gpuWorkerImage" -}}
{{- include "contentgen.image" (dict "repository" .Values.gpu.image.repository "tag" .Values.gpu.image.tag "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{/*
The operator's rules wherever it works. Exactly the calls tests/ sees the operator make under the
real API server's authorizers (its audit log): kopf lists and watches the kinds, their Jobs
and the Jobs' pods (label-selected) and posts Events; the operator patches a resource's status,
its own finalizer (deletionPolicy Delete), creates and deletes Jobs, and lists a Job's
FailedCreate Events when its pod does not appear (a quota, a LimitRange); `update` on
<kind>/finalizers is what OwnerReferencesPermissionEnforcement asks of Jobs that name their
resource with blockOwnerDeletion.
*/}}
{{- define "contentgen.operatorRules" -}}
- apiGroups: ["contentgen.io"]
  resources:
    {{- include "contentgen.kinds" . | nindent 4 }}
  verbs: ["list", "watch", "patch"]
- apiGroups: ["contentgen.io"]
  resources:
    {{- include "contentgen.statusSubresources" . | nindent 4 }}
  verbs: ["patch"]
# Jobs name their resource as owner with blockOwnerDeletion: true; the
# OwnerReferencesPermissionEnforcement admission plugin (OpenShift, hardened clusters) lets only
# those who may update the owner's finalizers set that.
- apiGroups: ["contentgen.io"]
  resources:
    {{- include "contentgen.finalizersSubresources" . | nindent 4 }}
  verbs: ["update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create", "delete"]
{{- if eq .Values.s3.workerCredentials "perRun" }}
# Each run's own store credentials (s3.workerCredentials perRun): a Secret `<job>-store` made
# before its Job, replaced as they are renewed, deleted once it ends. Never read, listed or
# watched. RBAC cannot limit these verbs by a name it does not know yet: the chart's admission
# policy <release>-store-secret holds the operator to its own labelled `-store` Secrets.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create", "update", "delete"]
{{- end }}
{{- if has "jobset" .Values.gpu.training.backends }}
# Trainings across nodes (gpu.training.backends): their JobSets made, watched and deleted as Jobs are.
- apiGroups: ["jobset.x-k8s.io"]
  resources: ["jobsets"]
  verbs: ["list", "watch", "create", "delete"]
{{- end }}
{{- if has "trainjob" .Values.gpu.training.backends }}
# ... and their Kubeflow Trainer TrainJobs, likewise.
- apiGroups: ["trainer.kubeflow.org"]
  resources: ["trainjobs"]
  verbs: ["list", "watch", "create", "delete"]
{{- end }}
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "list"]
# Webhook notifications (docs/notifications.md): the Notifications listed, their status written,
# and only the Secrets of the names allowed read (get by name: never listed or watched).
- apiGroups: ["contentgen.io"]
  resources: ["notifications"]
  verbs: ["list"]
- apiGroups: ["contentgen.io"]
  resources: ["notifications/status"]
  verbs: ["patch"]
{{- with .Values.notifications.secretNames }}
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames:
    {{- toYaml . | nindent 4 }}
  verbs: ["get"]
{{- end }}
{{- if .Values.kueue.readWorkloads }}
# Kueue's reason for holding a Job: the Job's Workload, listed by its kueue.x-k8s.io/job-uid label.
- apiGroups: ["kueue.x-k8s.io"]
  resources: ["workloads"]
  verbs: ["list"]
{{- end }}
{{- end -}}

{{/* Leader election: the Lease in the release namespace (created once, then read and renewed). */}}
{{- define "contentgen.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: [{{ .Values.leaseName | quote }}]
  verbs: ["get", "update"]
{{- end -}}

{{/* The worker's progress channel: a JSON patch of progress and stage on its resource's status. */}}
{{- define "contentgen.workerRules" -}}
- apiGroups: ["contentgen.io"]
  resources:
    {{- include "contentgen.statusSubresources" . | nindent 4 }}
  verbs: ["patch"]
{{- end -}}

{{/* Pod Security Standard "restricted": the pod's and every container's security context. */}}
{{- define "contentgen.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "contentgen.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* S3 credentials from s3.existingSecret (callers check it is set; without it: workload identity). */}}
{{- define "contentgen.s3Env" -}}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.s3.existingSecret | quote }}
      key: AWS_ACCESS_KEY_ID
      {{- if .Values.optionalSecrets }}
      optional: true
      {{- end }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.s3.existingSecret | quote }}
      key: AWS_SECRET_ACCESS_KEY
      {{- if .Values.optionalSecrets }}
      optional: true
      {{- end }}
{{- end -}}

{{/* Whether the operator copies s3.existingSecret into the namespaces where Jobs run ("true"/"false"). */}}
{{- define "contentgen.copiesStoreSecret" -}}
{{- if and (not .Values.watchNamespaces) .Values.s3.existingSecret .Values.s3.copyToNamespaces (eq .Values.s3.workerCredentials "namespaceSecret") -}}
true
{{- else -}}
false
{{- end -}}
{{- end -}}

{{/* The operator's setting for s3.workerCredentials (controller/settings.py store_access). */}}
{{- define "contentgen.workerCredentials" -}}
{{- get (dict "perRun" "per-run" "namespaceSecret" "secret" "workloadIdentity" "workload-identity") .Values.s3.workerCredentials -}}
{{- end -}}

{{/* Checks that need more than the schema. */}}
{{- define "contentgen.validate" -}}
{{- $models := .Values.gpu.models -}}
{{- if gt (len (compact (list $models.persistentVolumeClaim $models.hostPath $models.storePrefix))) 1 -}}
{{- fail "gpu.models: set one of persistentVolumeClaim, hostPath, storePrefix" -}}
{{- end -}}
{{- if and $models.cacheHostPath (not $models.storePrefix) -}}
{{- fail "gpu.models.cacheHostPath needs gpu.models.storePrefix: the cache holds what the worker copies from the store" -}}
{{- end -}}
{{- $poolNames := list -}}
{{- $poolModels := list -}}
{{- range .Values.pools.items -}}
{{- if has .name $poolNames -}}
{{- fail (printf "pools.items: two pools are named %s: give each its own name" .name) -}}
{{- end -}}
{{- if has .baseModel $poolModels -}}
{{- fail (printf "pools.items: two pools serve %s: one pool per base model (raise its replicas)" .baseModel) -}}
{{- end -}}
{{- if gt (int (default 0 .minReplicas)) (int .replicas) -}}
{{- fail (printf "pools.items %s: minReplicas %v is above replicas %v" .name .minReplicas .replicas) -}}
{{- end -}}
{{- $poolNames = append $poolNames .name -}}
{{- $poolModels = append $poolModels .baseModel -}}
{{- end -}}
{{- if and .Values.pools.keda.enabled .Values.pools.items -}}
{{- if eq .Values.pools.keda.trigger "workload" -}}
{{- if ne (toJson .Values.watchNamespaces) (toJson (list .Release.Namespace)) -}}
{{- fail (printf "pools.keda.trigger workload counts the pools' waiting Jobs in the release namespace only (KEDA's kubernetes-workload scaler), and they run there only with watchNamespaces: [%s]: set that, or pools.keda.trigger prometheus with pools.keda.prometheus.serverAddress" .Release.Namespace) -}}
{{- end -}}
{{- else if not .Values.pools.keda.prometheus.serverAddress -}}
{{- fail "pools.keda.trigger prometheus needs pools.keda.prometheus.serverAddress: the Prometheus KEDA counts the pools' waiting Jobs in" -}}
{{- end -}}
{{- end -}}
{{- if .Values.api.enabled -}}
{{- if not .Values.mongodb.existingSecret -}}
{{- fail "api.enabled needs mongodb.existingSecret: the API serves the MongoDB catalog" -}}
{{- end -}}
{{- if and (has "tokens" .Values.api.auth) (not .Values.api.tokensSecret.name) -}}
{{- fail "api.auth tokens needs api.tokensSecret.name: a Secret holding the API's tokens file (or leave tokens out of api.auth)" -}}
{{- end -}}
{{- if and (has "proxy" .Values.api.auth) (not .Values.api.trustedProxies) -}}
{{- fail "api.auth proxy needs api.trustedProxies: the proxy's addresses or CIDRs (127.0.0.1/32 for a sidecar)" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Whether the API's pod talks to the Kubernetes API (creating resources, TokenReview). */}}
{{- define "contentgen.apiUsesKube" -}}
{{- if or .Values.api.create (has "kubernetes" .Values.api.auth) -}}true{{- end -}}
{{- end -}}

{{/* The kinds the HTTP API creates, re-runs, cancels and deletes (not yet VideoGenerations: their
creates over HTTP are to come, and no right is granted before a call needs it). */}}
{{- define "contentgen.apiKinds" -}}
- loratrainings
- imagegenerations
- transcriptions
- loraevaluations
{{- end -}}

{{/* The API's rules on the kinds (api.create): exactly the calls tests/ records it making. */}}
{{- define "contentgen.apiRules" -}}
- apiGroups: ["contentgen.io"]
  resources:
    {{- include "contentgen.apiKinds" . | nindent 4 }}
  verbs: ["create", "get", "delete"]
# A LoraTraining's merge patches (never update: the rest of the resource is not the API's to write):
# its annotations contentgen.io/promoted-checkpoints (a checkpoint promoted), contentgen.io/verdicts
# (an evaluation chosen as a version's verdict) and contentgen.io/stop (a training stopped, keeping
# its best checkpoint), and its spec.training.continueFrom and steps (a training gone on from a version).
- apiGroups: ["contentgen.io"]
  resources: ["loratrainings"]
  verbs: ["patch"]
# Sending a webhook event again: the Notification's annotation contentgen.io/replay, read (its value
# and status.replayed, so that the new value is new) and set by a merge patch (never update).
- apiGroups: ["contentgen.io"]
  resources: ["notifications"]
  verbs: ["get", "patch"]
{{- end -}}

{{/* The price table (CONTENTGEN_PRICES, JSON): the operator prices runs with it, the API its estimates. */}}
{{- define "contentgen.prices" -}}
{{- $prices := dict "assumedAudioHours" .Values.prices.assumedAudioHours "cluster" .Values.prices.cluster }}
{{- if .Values.prices.items }}
{{- $_ := set $prices "items" .Values.prices.items }}
{{- $_ := set $prices "asOf" .Values.prices.asOf }}
{{- end }}
{{- $prices | toJson }}
{{- end }}

{{/* The pools the operator sends pooled Jobs to (CONTENTGEN_CLUSTER_POOLS): name, base model, Service URL,
and each pod's GPUs (what a pooled request's estimate counts). */}}
{{- define "contentgen.pools" -}}
{{- $pools := list -}}
{{- range .Values.pools.items -}}
{{- $name := printf "%s-pool-%s" (include "contentgen.fullname" $) .name | trunc 63 | trimSuffix "-" -}}
{{- $pods := printf "%s-pods" ($name | trunc 58 | trimSuffix "-") -}}
{{- $url := printf "http://%s.%s.svc:%d" $pods $.Release.Namespace (int (default 8090 .port)) -}}
{{- $gpus := int (default 1 (default (dict) .gpus).count) -}}
{{- $pools = append $pools (dict "name" .name "baseModel" .baseModel "url" $url "gpus" $gpus) -}}
{{- end -}}
{{- $pools | toJson -}}
{{- end -}}

{{/*
A long-lived pod's tolerations: those given (first of the list), then, unless the seconds (second)
are null, a stay of that many seconds on a node that stops answering or turns NotReady, in place of
the 300 s the API server's DefaultTolerationSeconds adds (those it adds only where none is given).
*/}}
{{- define "contentgen.tolerations" -}}
{{- $given := index . 0 | default list -}}
{{- $seconds := index . 1 -}}
{{- $all := $given -}}
{{- if not (kindIs "invalid" $seconds) -}}
{{- range list "node.kubernetes.io/unreachable" "node.kubernetes.io/not-ready" -}}
{{- $all = append $all (dict "key" . "operator" "Exists" "effect" "NoExecute" "tolerationSeconds" (int $seconds)) -}}
{{- end -}}
{{- end -}}
{{- with $all -}}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}
