{{/* Labels of a training run: no managed-by, kubectl creates the Job. */}}
{{- define "spirt.trainLabels" -}}
{{ include "spirt.selectorLabels" (dict "ctx" . "component" "train") }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: spirt
{{- end -}}

{{/* The ServiceAccount of training runs. */}}
{{- define "spirt.driverServiceAccountName" -}}
{{- if .Values.train.report.configMap -}}
{{- printf "%s-driver" (include "spirt.fullname" .) -}}
{{- else -}}
{{- include "spirt.serviceAccountName" . -}}
{{- end -}}
{{- end -}}

{{/*
A training run: the Job users create with kubectl (the chart stores it in
ConfigMap <fullname>-train-job; k8s/train-job.yaml is the same for the plain
manifests). generateName gives every run its own name: use create, not apply.
*/}}
{{- define "spirt.trainJob" -}}
{{- $fullname := include "spirt.fullname" . -}}
# A training run of release {{ .Release.Name }} ({{ .Values.train.arch }}, {{ .Values.train.workers | default .Values.peers }} workers).
# Start one from this file (the chart's ConfigMap <fullname>-train-job, or
# k8s/train-job.yaml) and follow it; create prints the Job's name:
#   kubectl create -f job.yaml
#   kubectl -n {{ .Release.Namespace }} logs -f job/<name>
{{- if .Values.train.report.configMap }}
# The JSON report outlives the pod and the Job in ConfigMap <name>-report:
#   scripts/fetch-report.sh -n {{ .Release.Namespace }} <name>
{{- end }}
# Any `spirt train` option can be set as SPIRT_<OPTION> below or as args.
apiVersion: batch/v1
kind: Job
metadata:
  generateName: {{ $fullname }}-train-
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "spirt.trainLabels" . | nindent 4 }}
spec:
  backoffLimit: {{ .Values.train.backoffLimit | int }}
  activeDeadlineSeconds: {{ .Values.train.activeDeadlineSeconds | int }}
  ttlSecondsAfterFinished: {{ .Values.train.ttlSecondsAfterFinished | int }}
  template:
    metadata:
      labels:
        {{- include "spirt.trainLabels" . | nindent 8 }}
      {{- with (include "spirt.podAnnotations" (dict "ctx" . "name" "driver")) }}
      annotations:
        {{- . | nindent 8 }}
      {{- end }}
    spec:
      {{- include "spirt.trainPodSpec" . | nindent 6 }}
{{- end -}}

{{/* Pod spec of a training run (the driver). */}}
{{- define "spirt.trainPodSpec" -}}
restartPolicy: Never
serviceAccountName: {{ include "spirt.driverServiceAccountName" . }}
# Only the report upload talks to the API: its token is projected below,
# into the driver container alone, with the Role's one permission.
automountServiceAccountToken: false
{{- include "spirt.podScheduling" . }}
containers:
  - name: driver
    image: {{ include "spirt.image" (dict "ctx" . "name" "driver") }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    # deploy/container/spirt-job.sh: credentials from files, spirt train
    # (progress in `kubectl logs -f`), the report printed and stored.
    command: [/usr/local/bin/spirt-job]
    {{- with .Values.train.extraArgs }}
    args:
      {{- range . }}
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
      - name: POD_NAME
        valueFrom:
          fieldRef:
            fieldPath: metadata.name
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
      - name: SPIRT_PRINT_REPORT
        value: {{ ternary "1" "0" .Values.train.printReport | quote }}
      {{- if .Values.train.report.configMap }}
      - name: SPIRT_REPORT_CONFIGMAP
        value: "$(SPIRT_JOB)-report"
      - name: SPIRT_INSTANCE
        value: {{ .Release.Name | quote }}
      {{- end }}
      {{- range $k, $v := .Values.train.env }}
      - name: {{ $k }}
        value: {{ $v | toString | quote }}
      {{- end }}
      # Credentials as files; the driver also answers join challenges for
      # peers that rejoin or catch up on resume (SPIRT_AUTH_KEY).
      {{- include "spirt.credentialEnv" (list . "driver") | nindent 6 }}
    resources:
      {{- toYaml .Values.train.resources | nindent 6 }}
    securityContext:
      {{- include "spirt.securityContext" . | nindent 6 }}
    volumeMounts:
      # The root filesystem is read-only; the report goes here.
      - name: work
        mountPath: /var/lib/spirt
      {{- include "spirt.credentialMount" (list . "driver") | nindent 6 }}
      {{- if .Values.train.report.configMap }}
      - name: kube-api
        mountPath: /var/run/secrets/kubernetes.io/serviceaccount
        readOnly: true
      {{- end }}
volumes:
  - name: work
    emptyDir: {}
  {{- include "spirt.credentialVolume" (list . "driver" "" 292) | nindent 2 }}
  {{- if .Values.train.report.configMap }}
  - name: kube-api
    projected:
      defaultMode: 292
      sources:
        - serviceAccountToken:
            path: token
            expirationSeconds: 3600
        - configMap:
            name: kube-root-ca.crt
            items:
              - key: ca.crt
                path: ca.crt
        - downwardAPI:
            items:
              - path: namespace
                fieldRef:
                  fieldPath: metadata.namespace
  {{- end }}
{{- end -}}
