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
  {{- include "spirt.clientAuthEnv" $ctx | nindent 2 }}
  {{- if eq $step "join" }}
  # Only the join step verifies peers: only it holds the master key.
  {{- include "spirt.authKeyEnv" $ctx | nindent 2 }}
  {{- end }}
  - name: SPIRT_NATS_URL
    value: {{ include "spirt.natsUrl" $ctx | quote }}
  {{- if eq $ctx.Values.functions.readyRedis "shared" }}
  - name: SPIRT_READY_REDIS
    value: {{ include "spirt.sharedRedis" $ctx | quote }}
  {{- end }}
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
{{- end -}}
