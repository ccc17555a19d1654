{{/* Chart name, overridable. */}}
{{- define "spirt.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified name: the prefix of every object. Capped at 40 characters so
that "<fullname>-<step>" Knative Services and "<fullname>-redis-<n>" pods stay
valid DNS labels.
*/}}
{{- define "spirt.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "spirt.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Standard labels; call with (dict "ctx" $ "component" "redis-peer"). */}}
{{- define "spirt.labels" -}}
helm.sh/chart: {{ include "spirt.chart" .ctx }}
{{ include "spirt.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: spirt
{{- end -}}

{{- define "spirt.selectorLabels" -}}
app.kubernetes.io/name: {{ include "spirt.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Kubernetes form of a step name: chunk_reduce -> chunk-reduce. */}}
{{- define "spirt.stepName" -}}
{{- . | replace "_" "-" -}}
{{- end -}}

{{/* "true" when image.registry is a local name no node pulls from
(dev.local, kind.local: images loaded with kind load), else empty. */}}
{{- define "spirt.localRegistry" -}}
{{- $r := .Values.image.registry | default "" -}}
{{- if or (eq $r "dev.local") (eq $r "kind.local") (hasPrefix "dev.local/" $r) (hasPrefix "kind.local/" $r) -}}true{{- end -}}
{{- end -}}

{{/*
Image reference; call with (dict "ctx" $ "name" "driver"). With a digest in
image.digests.<name> (deploy/images.sh --values-out) and a real registry
the image is pulled by digest (<registry>/spirt-<name>:<tag>@sha256:...),
so a rebuild changes every pod template it concerns and rolls them.
*/}}
{{- define "spirt.image" -}}
{{- $img := .ctx.Values.image -}}
{{- $tag := default .ctx.Chart.AppVersion $img.tag -}}
{{- $ref := printf "spirt-%s:%s" .name $tag -}}
{{- if $img.registry -}}
{{- $ref = printf "%s/%s" $img.registry $ref -}}
{{- end -}}
{{- $digest := index ($img.digests | default dict) .name -}}
{{- if and $digest (not (include "spirt.localRegistry" .ctx)) -}}
{{- $ref = printf "%s@%s" $ref $digest -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{/*
Pod template annotations; call with (dict "ctx" $ "name" "driver"), the
image's name. podAnnotations, and what makes a change roll the pods:
  checksum/secret     the credentials' digest (spirt.secretChecksum);
  spirt.dev/image-id  a local image's ID (image.digests.<name> with a local
                      registry: the reference cannot carry it, and a rebuild
                      loaded under the same tag would otherwise go unnoticed);
Emits nothing when there is nothing to say; use with nindent.
*/}}
{{- define "spirt.podAnnotations" -}}
{{- $ctx := .ctx -}}
{{- $out := dict -}}
{{- range $k, $v := $ctx.Values.podAnnotations -}}
{{- $_ := set $out $k ($v | toString) -}}
{{- end -}}
{{- $_ := set $out "checksum/secret" (include "spirt.secretChecksum" $ctx) -}}
{{- $digest := index ($ctx.Values.image.digests | default dict) .name -}}
{{- if and $digest (include "spirt.localRegistry" $ctx) -}}
{{- $_ := set $out "spirt.dev/image-id" $digest -}}
{{- end -}}
{{- range $k, $v := .extra -}}
{{- $_ := set $out $k ($v | toString) -}}
{{- end -}}
{{- if $out -}}
{{- toYaml $out -}}
{{- end -}}
{{- end -}}

{{- define "spirt.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "spirt.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "spirt.secretName" -}}
{{- default (printf "%s-auth" (include "spirt.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{/*
One base64 Secret value: the given one, else the value already stored in the
release's Secret (so generated credentials survive upgrades), else a new
random one: 40 letters and digits, or with a fourth argument "hex" 64 hex
digits (a 256-bit key: SHA-256 of 64 random letters and digits, which carry
about 380 bits). Call with (list $ "SPIRT_TOKEN" .Values.auth.token).
*/}}
{{- define "spirt.secretValue" -}}
{{- $ctx := index . 0 -}}
{{- $key := index . 1 -}}
{{- $given := index . 2 -}}
{{- if $given -}}
{{- $given | toString | b64enc -}}
{{- else -}}
{{- /* Generated once per rendering (cached in the values of this render
       only), so the Secret and the checksum/secret annotations agree. */ -}}
{{- if not (hasKey $ctx.Values.auth "_generated") -}}
{{- $_ := set $ctx.Values.auth "_generated" dict -}}
{{- end -}}
{{- $cache := $ctx.Values.auth._generated -}}
{{- if not (hasKey $cache $key) -}}
{{- $existing := lookup "v1" "Secret" $ctx.Release.Namespace (include "spirt.secretName" $ctx) -}}
{{- if and $existing $existing.data (hasKey $existing.data $key) -}}
{{- $_ := set $cache $key (index $existing.data $key) -}}
{{- else if and (gt (len .) 3) (eq (index . 3) "hex") -}}
{{- $_ := set $cache $key (randAlphaNum 64 | sha256sum | b64enc) -}}
{{- else -}}
{{- $_ := set $cache $key (randAlphaNum 40 | b64enc) -}}
{{- end -}}
{{- end -}}
{{- index $cache $key -}}
{{- end -}}
{{- end -}}

{{/* The data of the chart's auth Secret (YAML map of base64 values). */}}
{{- define "spirt.secretData" -}}
{{- if .Values.auth.enabled }}
SPIRT_TOKEN: {{ include "spirt.secretValue" (list . "SPIRT_TOKEN" .Values.auth.token) | quote }}
SPIRT_REDIS_USER: {{ .Values.auth.redisUser | b64enc | quote }}
SPIRT_REDIS_PASSWORD: {{ include "spirt.secretValue" (list . "SPIRT_REDIS_PASSWORD" .Values.auth.redisPassword) | quote }}
SPIRT_NATS_USER: {{ .Values.auth.natsUser | b64enc | quote }}
SPIRT_NATS_PASSWORD: {{ include "spirt.secretValue" (list . "SPIRT_NATS_PASSWORD" .Values.auth.natsPassword) | quote }}
{{- end }}
# Master key of peer authentication: only the join function and the driver read it.
SPIRT_AUTH_KEY: {{ include "spirt.secretValue" (list . "SPIRT_AUTH_KEY" .Values.auth.authKey "hex") | quote }}
{{- end -}}

{{/*
checksum/secret: a digest of the credentials the pods read, so changing
them rolls every pod (Knative creates new revisions). With
auth.existingSecret it is the digest of that Secret's data as the cluster
holds it at install/upgrade time (helm upgrade after changing it rolls the
pods); offline rendering sees only its name.
*/}}
{{- define "spirt.secretChecksum" -}}
{{- if .Values.auth.existingSecret -}}
{{- $s := lookup "v1" "Secret" .Release.Namespace .Values.auth.existingSecret -}}
{{- printf "%s:%s" .Values.auth.existingSecret (($s | default dict).data | default dict | toJson) | sha256sum -}}
{{- else -}}
{{- include "spirt.secretData" . | sha256sum -}}
{{- end -}}
{{- end -}}

{{/* env entry read from the auth Secret; call with (list $ "SPIRT_REDIS_USER"). */}}
{{- define "spirt.secretEnv" -}}
- name: {{ index . 1 }}
  valueFrom:
    secretKeyRef:
      name: {{ include "spirt.secretName" (index . 0) }}
      key: {{ index . 1 }}
{{- end -}}

{{/*
Credentials reach every process as files, never as environment values: the
auth Secret is mounted read-only at spirt.secretDir with one file per key
a container needs, and SPIRT_<KEY>_FILE names it (the function runtime, the
Redis and NATS entrypoints and the driver's job script read those). User
names are no secrets and stay in the environment.
*/}}
{{- define "spirt.secretDir" -}}/var/run/secrets/spirt{{- end -}}

{{/* File name of a Secret key: SPIRT_REDIS_PASSWORD -> redis-password. */}}
{{- define "spirt.secretFile" -}}
{{- . | trimPrefix "SPIRT_" | lower | replace "_" "-" -}}
{{- end -}}

{{/* SPIRT_<KEY>_FILE env entry; call with "SPIRT_TOKEN". */}}
{{- define "spirt.secretFileEnv" -}}
- name: {{ . }}_FILE
  value: {{ printf "%s/%s" (include "spirt.secretDir" .) (include "spirt.secretFile" .) | quote }}
{{- end -}}

{{/*
The Secret keys a kind of container reads; call with (list $ "function" step)
or (list $ "redis"), (list $ "nats"), (list $ "driver"). JSON list.
*/}}
{{- define "spirt.secretKeys" -}}
{{- $ctx := index . 0 -}}
{{- $role := index . 1 -}}
{{- $keys := list -}}
{{- $auth := $ctx.Values.auth.enabled -}}
{{- if eq $role "redis" -}}
{{- if $auth }}{{ $keys = list "SPIRT_REDIS_PASSWORD" }}{{ end -}}
{{- else if eq $role "nats" -}}
{{- if $auth }}{{ $keys = list "SPIRT_NATS_PASSWORD" }}{{ end -}}
{{- else -}}
{{- if $auth }}{{ $keys = list "SPIRT_TOKEN" "SPIRT_REDIS_PASSWORD" "SPIRT_NATS_PASSWORD" }}{{ end -}}
{{- /* Only the join step verifies peers and only the driver answers for
       them: only they hold the master key. */ -}}
{{- if or (eq $role "driver") (and (eq $role "function") (eq (index . 2) "join")) -}}
{{- $keys = append $keys "SPIRT_AUTH_KEY" -}}
{{- end -}}
{{- end -}}
{{- toJson $keys -}}
{{- end -}}

{{/* env entries of the credentials a container reads (same call as spirt.secretKeys). */}}
{{- define "spirt.credentialEnv" -}}
{{- $ctx := index . 0 -}}
{{- $role := index . 1 -}}
{{- $out := list -}}
{{- if $ctx.Values.auth.enabled -}}
{{- if has $role (list "function" "driver" "redis") -}}
{{- $out = append $out (include "spirt.secretEnv" (list $ctx "SPIRT_REDIS_USER")) -}}
{{- end -}}
{{- if has $role (list "function" "driver" "nats") -}}
{{- $out = append $out (include "spirt.secretEnv" (list $ctx "SPIRT_NATS_USER")) -}}
{{- end -}}
{{- else if has $role (list "function" "driver") -}}
{{- $out = append $out "- name: SPIRT_AUTH\n  value: \"off\"" -}}
{{- end -}}
{{- range (include "spirt.secretKeys" . | fromJsonArray) -}}
{{- $out = append $out (include "spirt.secretFileEnv" .) -}}
{{- end -}}
{{- join "\n" $out -}}
{{- end -}}

{{/* The credentials volume (nothing when the container reads none); call as
spirt.secretKeys, with a fourth element: the file mode (decimal). */}}
{{- define "spirt.credentialVolume" -}}
{{- $keys := include "spirt.secretKeys" (list (index . 0) (index . 1) (index . 2)) | fromJsonArray -}}
{{- if $keys -}}
- name: credentials
  secret:
    secretName: {{ include "spirt.secretName" (index . 0) }}
    defaultMode: {{ index . 3 }}
    items:
      {{- range $keys }}
      - key: {{ . }}
        path: {{ include "spirt.secretFile" . }}
      {{- end }}
{{- end -}}
{{- end -}}

{{- define "spirt.credentialMount" -}}
{{- if include "spirt.secretKeys" . | fromJsonArray -}}
- name: credentials
  mountPath: {{ include "spirt.secretDir" . }}
  readOnly: true
{{- end -}}
{{- end -}}

{{- define "spirt.clusterDomain" -}}svc.cluster.local{{- end -}}

{{/* Addresses the driver and the functions are pointed at. */}}
{{- define "spirt.peerService" -}}{{ include "spirt.fullname" . }}-redis{{- end -}}
{{- define "spirt.sharedRedisService" -}}{{ include "spirt.fullname" . }}-redis-shared{{- end -}}
{{- define "spirt.natsService" -}}{{ include "spirt.fullname" . }}-nats{{- end -}}

{{- define "spirt.peers" -}}
{{- $svc := include "spirt.peerService" . -}}
{{- $out := list -}}
{{- range $i := until (int .Values.peers) -}}
{{- $out = append $out (printf "%s-%d.%s.%s.%s:6379" $svc $i $svc $.Release.Namespace (include "spirt.clusterDomain" $)) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{- define "spirt.sharedRedis" -}}
{{- printf "%s.%s.%s:6379" (include "spirt.sharedRedisService" .) .Release.Namespace (include "spirt.clusterDomain" .) -}}
{{- end -}}

{{- define "spirt.natsUrl" -}}
{{- printf "nats://%s.%s.%s:4222" (include "spirt.natsService" .) .Release.Namespace (include "spirt.clusterDomain" .) -}}
{{- end -}}

{{/* URL template of the step functions; the driver replaces {step}. */}}
{{- define "spirt.functionsUrl" -}}
{{- printf "http://%s-{step}.%s.%s" (include "spirt.fullname" .) .Release.Namespace (include "spirt.clusterDomain" .) -}}
{{- end -}}

{{/* Container securityContext (the same for every container). */}}
{{- define "spirt.securityContext" -}}
{{- toYaml .Values.securityContext -}}
{{- end -}}

{{/* Pod-level scheduling settings shared by the chart's workloads. */}}
{{- define "spirt.podScheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
A step's settings: functions.defaults with functions.overrides.<step> merged
over it one level deep (so an override may set 0 or false, and
overrides.<step>.autoscaling.maxScale keeps the default minScale).
Call with (list $ "gradient"); returns YAML (use fromYaml).
*/}}
{{- define "spirt.stepSettings" -}}
{{- $ctx := index . 0 -}}
{{- $step := index . 1 -}}
{{- $s := deepCopy $ctx.Values.functions.defaults -}}
{{- $over := index ($ctx.Values.functions.overrides | default dict) $step | default dict -}}
{{- range $k, $v := $over -}}
{{- if and (kindIs "map" $v) (kindIs "map" (index $s $k)) -}}
{{- $m := deepCopy (index $s $k) -}}
{{- range $k2, $v2 := $v -}}
{{- $_ := set $m $k2 $v2 -}}
{{- end -}}
{{- $_ := set $s $k $m -}}
{{- else -}}
{{- $_ := set $s $k $v -}}
{{- end -}}
{{- end -}}
{{- toYaml $s -}}
{{- end -}}

{{/*
The step functions this release deploys, as a JSON list: functions.steps
when given, else the steps of train.arch and of functions.archs, from
files/steps.yaml (generated from the driver's tables by scripts/steps.sh
--chart), in the table's order. Use with fromJsonArray.
*/}}
{{- define "spirt.steps" -}}
{{- $table := .Files.Get "files/steps.yaml" | fromYaml -}}
{{- if not $table.all -}}
{{- fail "files/steps.yaml is missing or empty: run scripts/steps.sh --chart > helm/spirt/files/steps.yaml" -}}
{{- end -}}
{{- $out := list -}}
{{- if .Values.functions.steps -}}
{{- range .Values.functions.steps -}}
{{- if not (has . $table.all) -}}
{{- fail (printf "functions.steps: %q is not a step of this chart (known: %s)" . (join ", " $table.all)) -}}
{{- end -}}
{{- end -}}
{{- $out = .Values.functions.steps -}}
{{- else -}}
{{- $want := list -}}
{{- range (prepend (.Values.functions.archs | default list) .Values.train.arch) -}}
{{- $want = concat $want (index $table.archs . | default list) -}}
{{- end -}}
{{- range $table.all -}}
{{- if has . $want -}}
{{- $out = append $out . -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
Preflight: every function is a Knative Service, so without Knative Serving's
API (serving.knative.dev/v1) the install would die later with "no matches
for kind Service". Fail first, saying what to install. helm template knows
no cluster: pass it --api-versions serving.knative.dev/v1/Service (helm lint
only logs the failure as [INFO]).
*/}}
{{- define "spirt.preflight" -}}
{{- if and .Values.preflight.knative (not (.Capabilities.APIVersions.Has "serving.knative.dev/v1/Service")) -}}
{{- fail (printf "\n\nspirt needs Knative Serving, and this cluster does not serve serving.knative.dev/v1 (Service).\nInstall Knative Serving %s and a networking layer first, e.g.:\n  kubectl apply -f https://github.com/knative/serving/releases/download/knative-v%s/serving-crds.yaml\n  kubectl apply -f https://github.com/knative/serving/releases/download/knative-v%s/serving-core.yaml\n  kubectl apply -f https://github.com/knative/net-kourier/releases/download/knative-v%s/kourier.yaml\n  kubectl patch configmap/config-network -n knative-serving --type merge -p '{\"data\":{\"ingress-class\":\"kourier.ingress.networking.knative.dev\"}}'\n(https://knative.dev/docs/install/yaml-install/serving/install-serving-with-yaml/), or run deploy/kind-up.sh for a local kind cluster with all of it.\nRendering without a cluster (helm template)? Add --api-versions serving.knative.dev/v1/Service.\n" (index .Chart.Annotations "spirt.dev/knative-version") (index .Chart.Annotations "spirt.dev/knative-version") (index .Chart.Annotations "spirt.dev/knative-version") (index .Chart.Annotations "spirt.dev/knative-version")) -}}
{{- end -}}
{{- end -}}

{{/*
The pods that use Redis and NATS: every step function (Knative revisions
and long-lived Deployments) and the training driver. A NetworkPolicy "from"
list; use with nindent.
*/}}
{{- define "spirt.dataClients" -}}
{{- $components := list "function" "train" -}}
{{- range .Values.functions.longLived -}}
{{- $components = append $components (printf "function-%s" (include "spirt.stepName" .)) -}}
{{- end -}}
- podSelector:
    matchLabels:
      app.kubernetes.io/name: {{ include "spirt.name" . }}
      app.kubernetes.io/instance: {{ .Release.Name }}
    matchExpressions:
      - key: app.kubernetes.io/component
        operator: In
        values: {{ toJson $components }}
{{- end -}}

{{/* Every function serves Prometheus metrics on GET /metrics (no token). */}}
{{- define "spirt.scrapeAnnotations" -}}
{{- if .Values.metrics.scrapeAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: "8080"
prometheus.io/path: /metrics
{{- end -}}
{{- end -}}
