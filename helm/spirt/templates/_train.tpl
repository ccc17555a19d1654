{{/* Pod template of a training run (the driver); used by the CronJob template. */}}
{{- define "spirt.trainPodSpec" -}}
restartPolicy: Never
serviceAccountName: {{ include "spirt.serviceAccountName" . }}
automountServiceAccountToken: false
{{- include "spirt.podScheduling" . }}
containers:
  - name: driver
    image: {{ include "spirt.image" (dict "ctx" . "name" "driver") }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    {{- if .Values.train.printReport }}
    # Train, then print the JSON report so `kubectl logs` shows it.
    command:
      - /bin/sh
      - -c
      - spirt train --report /var/lib/spirt/report.json "$@" && cat /var/lib/spirt/report.json
      - spirt-train
    {{- with .Values.train.extraArgs }}
    args:
      {{- range . }}
      - {{ . | toString | quote }}
      {{- end }}
    {{- end }}
    {{- else }}
    args:
      - train
      - --report
      - /var/lib/spirt/report.json
      {{- range .Values.train.extraArgs }}
      - {{ . | toString | quote }}
      {{- end }}
    {{- end }}
    env:
      - name: SPIRT_ARCH
        value: {{ .Values.train.arch | quote }}
      - name: SPIRT_WORKERS
        value: {{ .Values.train.workers | default .Values.peers | int | quote }}
      - name: SPIRT_MODEL
        value: {{ .Values.train.model | quote }}
      - name: SPIRT_EPOCHS
        value: {{ .Values.train.epochs | int | quote }}
      # Keys and NATS subjects are namespaced by job: one per Kubernetes Job.
      - name: SPIRT_JOB
        valueFrom:
          fieldRef:
            fieldPath: metadata.labels['job-name']
      - name: SPIRT_FUNCTIONS
        value: {{ include "spirt.functionsUrl" . | quote }}
      - name: SPIRT_PEERS
        value: {{ include "spirt.peers" . | quote }}
      - name: SPIRT_SHARED_REDIS
        value: {{ include "spirt.sharedRedis" . | quote }}
      - name: SPIRT_NATS
        value: {{ include "spirt.natsUrl" . | quote }}
      {{- if and .Values.train.resume (eq .Values.train.arch "spirt") }}
      # A driver pod started again for this Job continues where the peers
      # are (spirt only: its peers own their databases).
      - name: SPIRT_RESUME
        value: "1"
      {{- end }}
      {{- range $k, $v := .Values.train.env }}
      - name: {{ $k }}
        value: {{ $v | toString | quote }}
      {{- end }}
      {{- include "spirt.clientAuthEnv" . | nindent 6 }}
      # Answers join challenges for peers that rejoin or catch up on resume.
      {{- include "spirt.authKeyEnv" . | nindent 6 }}
    resources:
      {{- toYaml .Values.train.resources | nindent 6 }}
    securityContext:
      {{- include "spirt.securityContext" . | nindent 6 }}
    volumeMounts:
      # The root filesystem is read-only; the report goes here.
      - name: work
        mountPath: /var/lib/spirt
volumes:
  - name: work
    emptyDir: {}
{{- end -}}
