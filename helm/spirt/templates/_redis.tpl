{{/*
A Redis StatefulSet with the spirt module. Call with (dict "ctx" $
"name" ... "component" ... "service" ... "replicas" N "cfg" .Values.redis "size" "1Gi").
*/}}
{{- define "spirt.redisStatefulSet" -}}
{{- $ctx := .ctx -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .name }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "spirt.labels" (dict "ctx" $ctx "component" .component) | nindent 4 }}
spec:
  serviceName: {{ .service }}
  replicas: {{ .replicas }}
  # Peers are independent: start them all at once.
  podManagementPolicy: Parallel
  selector:
    matchLabels:
      {{- include "spirt.selectorLabels" (dict "ctx" $ctx "component" .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "spirt.labels" (dict "ctx" $ctx "component" .component) | nindent 8 }}
      {{- with (include "spirt.podAnnotations" (dict "ctx" $ctx "name" "redis")) }}
      annotations:
        {{- . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "spirt.serviceAccountName" $ctx }}
      automountServiceAccountToken: false
      securityContext:
        fsGroup: {{ $ctx.Values.securityContext.runAsGroup | default 65532 }}
      {{- with (include "spirt.podScheduling" $ctx) }}{{ . | trim | nindent 6 }}{{- end }}
      {{- if and .antiAffinity $ctx.Values.redis.antiAffinity }}
      # Peers on different nodes where possible: one node lost takes one peer.
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "spirt.selectorLabels" (dict "ctx" $ctx "component" .component) | nindent 20 }}
      {{- end }}
      containers:
        - name: redis
          image: {{ include "spirt.image" (dict "ctx" $ctx "name" "redis") }}
          imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
          env:
            {{- with (include "spirt.credentialEnv" (list $ctx "redis")) }}
            {{- . | nindent 12 }}
            {{- end }}
            - name: SPIRT_REDIS_AOF
              value: {{ ternary "yes" "no" .cfg.aof | quote }}
            - name: SPIRT_REDIS_APPENDFSYNC
              value: {{ .cfg.appendfsync | default "everysec" | quote }}
            {{- with .cfg.maxmemory }}
            - name: SPIRT_REDIS_MAXMEMORY
              value: {{ . | quote }}
            {{- end }}
          ports:
            - name: redis
              containerPort: 6379
          readinessProbe:
            exec:
              command: [spirt-redis, ping]
            periodSeconds: 5
            timeoutSeconds: 3
          livenessProbe:
            exec:
              command: [spirt-redis, ping]
            initialDelaySeconds: 20
            periodSeconds: 15
            timeoutSeconds: 5
          resources:
            {{- toYaml .cfg.resources | nindent 12 }}
          securityContext:
            {{- include "spirt.securityContext" $ctx | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /data
            {{- with (include "spirt.credentialMount" (list $ctx "redis")) }}
            {{- . | nindent 12 }}
            {{- end }}
      {{- $credentials := include "spirt.credentialVolume" (list $ctx "redis" "" 288) }}
      {{- if or $credentials (not $ctx.Values.persistence.enabled) }}
      volumes:
        {{- if not $ctx.Values.persistence.enabled }}
        - name: data
          emptyDir: {}
        {{- end }}
        {{- with $credentials }}
        {{- . | nindent 8 }}
        {{- end }}
      {{- end }}
  {{- if $ctx.Values.persistence.enabled }}
  volumeClaimTemplates:
    - metadata:
        name: data
        labels:
          {{- include "spirt.selectorLabels" (dict "ctx" $ctx "component" .component) | nindent 10 }}
      spec:
        accessModes:
          {{- toYaml $ctx.Values.persistence.accessModes | nindent 10 }}
        {{- with $ctx.Values.persistence.storageClass }}
        storageClassName: {{ . | quote }}
        {{- end }}
        resources:
          requests:
            storage: {{ .size }}
  {{- end }}
{{- end -}}
