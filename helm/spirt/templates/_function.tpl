{{/* The container of a step function; call with (list $ "step"). */}}
{{- define "spirt.functionContainer" -}}
{{- $ctx := index . 0 -}}
{{- $step := index . 1 -}}
{{- $s := fromYaml (include "spirt.stepSettings" (list $ctx $step)) -}}
name: function
image: {{ include "spirt.image" (dict "ctx" $ctx "name" (include "spirt.stepName" $step)) }}
imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
ports:
  # Knative accepts only the names http1 and h2c.
  - name: http1
    containerPort: 8080
env:
  {{- with (include "spirt.credentialEnv" (list $ctx "function" $step)) }}
  {{- . | nindent 2 }}
  {{- end }}
  - name: SPIRT_NATS_URL
    value: {{ include "spirt.natsUrl" $ctx | quote }}
  # Functions connect only to the servers named here (a request names a
  # peer by index into SPIRT_REDIS_PEERS, never an address).
  - name: SPIRT_REDIS_PEERS
    value: {{ include "spirt.peers" $ctx | quote }}
  - name: SPIRT_REDIS_SHARED
    value: {{ include "spirt.sharedRedis" $ctx | quote }}
  - name: SPIRT_READY_REDIS
    value: {{ $ctx.Values.functions.readyRedis | quote }}
  {{- range $k, $v := $s.env }}
  - name: {{ $k }}
    value: {{ $v | toString | quote }}
  {{- end }}
readinessProbe:
  httpGet:
    path: /readyz
    port: 8080
livenessProbe:
  httpGet:
    path: /healthz
    port: 8080
  periodSeconds: 15
resources:
  {{- toYaml $s.resources | nindent 2 }}
securityContext:
  {{- include "spirt.securityContext" $ctx | nindent 2 }}
{{- with (include "spirt.credentialMount" (list $ctx "function" $step)) }}
volumeMounts:
  {{- . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The pod volumes of a step function; call with (list $ "step"). Mode
0444: Knative pods get no fsGroup, and the container's one user reads. */}}
{{- define "spirt.functionVolumes" -}}
{{- with (include "spirt.credentialVolume" (list (index . 0) "function" (index . 1) 292)) }}
volumes:
  {{- . | nindent 2 }}
{{- end }}
{{- end -}}
