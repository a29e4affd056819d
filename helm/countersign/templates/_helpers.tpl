{{/*
Names and labels, as `helm create` lays them out.
*/}}
{{- define "countersign.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "countersign.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "countersign.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "countersign.selectorLabels" -}}
app.kubernetes.io/name: {{ include "countersign.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "countersign.labels" -}}
helm.sh/chart: {{ include "countersign.chart" . }}
{{ include "countersign.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: countersign
{{- end }}

{{- define "countersign.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "countersign.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "countersign.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The shutdown deadline countersign gets: the grace period minus the preStop
sleep minus 5 s, so the drain ends before Kubernetes kills the container.
*/}}
{{- define "countersign.shutdownSeconds" -}}
{{- $s := sub (sub (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds)) 5 }}
{{- if lt $s 5 }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be at least preStopSleepSeconds (%d) + 10: countersign needs a shutdown deadline of 5 s or more" (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds)) }}
{{- end }}
{{- $s }}
{{- end }}

{{/*
Refuses what the chart owns and secrets written into values.
*/}}
{{- define "countersign.validate" -}}
{{- $server := default dict .Values.config.server }}
{{- range $key, $from := dict "listen" "ports.http" "admin_listen" "ports.admin" "shutdown_timeout" "terminationGracePeriodSeconds" "admin_token" "admin.tokenSecret" "admin_insecure" "admin.insecure" }}
{{- if hasKey $server $key }}
{{- fail (printf "config.server.%s is set by the chart (from %s); remove it from config and set %s instead" $key $from $from) }}
{{- end }}
{{- end }}
{{- if hasKey (default dict .Values.config.store) "path" }}
{{- fail "config.store.path is set by the chart (the data volume); remove it from config" }}
{{- end }}
{{- range $i, $s := (default list .Values.config.sources) }}
{{- range $j, $secret := (default list $s.secrets) }}
{{- include "countersign.secretRef" (dict "value" $secret "key" (printf "config.sources[%d].secrets[%d]" $i $j)) }}
{{- end }}
{{- end }}
{{- range $i, $e := (default list .Values.config.endpoints) }}
{{- if $e.secret }}
{{- include "countersign.secretRef" (dict "value" $e.secret "key" (printf "config.endpoints[%d].secret" $i)) }}
{{- end }}
{{- range $h, $v := (default dict $e.headers) }}
{{- include "countersign.secretRef" (dict "value" $v "key" (printf "config.endpoints[%d].headers.%s" $i $h)) }}
{{- end }}
{{- end }}
{{- range $k, $v := (default dict (default dict .Values.config.kafka).producer) }}
{{- if or (contains "password" $k) (contains "secret" $k) }}
{{- include "countersign.secretRef" (dict "value" $v "key" (printf "config.kafka.producer.%s" $k)) }}
{{- end }}
{{- end }}
{{- range $h, $v := (default dict (default dict .Values.config.telemetry).otlp_headers) }}
{{- include "countersign.secretRef" (dict "value" $v "key" (printf "config.telemetry.otlp_headers.%s" $h)) }}
{{- end }}
{{- end }}

{{- define "countersign.secretRef" -}}
{{- if not (or (hasPrefix "env:" (toString .value)) (hasPrefix "file:" (toString .value))) }}
{{- fail (printf "%s is a literal secret: keep secrets out of values. Put it in a Kubernetes Secret, list it under secretEnv, and write \"env:NAME\" here" .key) }}
{{- end }}
{{- end }}

{{/*
countersign.toml from .Values.config plus what the chart owns. Rendered by
`countersign.toml.table`: every key quoted, scalars and arrays through toJson
(JSON strings, numbers and arrays are TOML too; whole numbers stay integers),
maps as [tables], lists of maps as [[arrays of tables]], nulls left out.
*/}}
{{- define "countersign.config" -}}
{{- include "countersign.validate" . }}
{{- $cfg := deepCopy (default dict .Values.config) }}
{{- $server := mergeOverwrite (default dict $cfg.server) (dict
      "listen" (printf "0.0.0.0:%d" (int .Values.ports.http))
      "admin_listen" (printf "0.0.0.0:%d" (int .Values.ports.admin))
      "shutdown_timeout" (printf "%ss" (include "countersign.shutdownSeconds" .))) }}
{{- if .Values.admin.insecure }}
{{- $_ := set $server "admin_insecure" true }}
{{- else }}
{{- $_ := set $server "admin_token" "env:COUNTERSIGN_ADMIN_TOKEN" }}
{{- end }}
{{- $store := mergeOverwrite (default dict $cfg.store) (dict "path" "/var/lib/countersign") }}
{{- $_ := set $cfg "server" $server }}
{{- $_ := set $cfg "store" $store }}
{{- "# Rendered by the countersign Helm chart from .Values.config.\n" }}
{{- include "countersign.toml.table" (dict "table" $cfg "path" "") }}
{{- end }}

{{- define "countersign.toml.isTables" -}}
{{- if and (kindIs "slice" .) (gt (len .) 0) (kindIs "map" (first .)) }}true{{ end }}
{{- end }}

{{- define "countersign.toml.table" -}}
{{- $path := .path }}
{{- range $k, $v := .table }}
{{- if not (or (kindIs "invalid" $v) (kindIs "map" $v) (include "countersign.toml.isTables" $v)) }}
{{ $k | toJson }} = {{ $v | toJson }}
{{- end }}
{{- end }}
{{- range $k, $v := .table }}
{{- $p := ternary ($k | toJson) (printf "%s.%s" $path ($k | toJson)) (eq $path "") }}
{{- if kindIs "map" $v }}

[{{ $p }}]
{{- include "countersign.toml.table" (dict "table" $v "path" $p) }}
{{- else if include "countersign.toml.isTables" $v }}
{{- range $v }}

[[{{ $p }}]]
{{- include "countersign.toml.table" (dict "table" . "path" $p) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The countersign container. Standalone and sidecar mode share it; in sidecar
mode the including chart passes the subchart's context, .Subcharts.countersign.
*/}}
{{- define "countersign.container" -}}
- name: countersign
  image: {{ include "countersign.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["serve", "--config", "/etc/countersign/countersign.toml"]
  ports:
    - name: webhooks
      containerPort: {{ .Values.ports.http }}
      protocol: TCP
    - name: admin
      containerPort: {{ .Values.ports.admin }}
      protocol: TCP
  {{- if or .Values.secretEnv .Values.env (not .Values.admin.insecure) }}
  env:
    {{- if not .Values.admin.insecure }}
    {{- if not .Values.admin.tokenSecret.name }}
    {{- fail "admin.tokenSecret.name is empty: name the Secret holding the admin API token, or set admin.insecure = true" }}
    {{- end }}
    - name: COUNTERSIGN_ADMIN_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ .Values.admin.tokenSecret.name }}
          key: {{ .Values.admin.tokenSecret.key }}
    {{- end }}
    {{- range .Values.secretEnv }}
    - name: {{ .name }}
      valueFrom:
        secretKeyRef:
          name: {{ .secretName }}
          key: {{ .key }}
    {{- end }}
    {{- with .Values.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: admin
    {{- toYaml .Values.probes.liveness | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: admin
    {{- toYaml .Values.probes.readiness | nindent 4 }}
  startupProbe:
    httpGet:
      path: /healthz
      port: admin
    {{- toYaml .Values.probes.startup | nindent 4 }}
  {{- if gt (int .Values.preStopSleepSeconds) 0 }}
  lifecycle:
    preStop:
      sleep:
        seconds: {{ .Values.preStopSleepSeconds }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  volumeMounts:
    - name: config
      mountPath: /etc/countersign
      readOnly: true
    - name: data
      mountPath: /var/lib/countersign
{{- end }}

{{/*
Sidecar mode, for charts that run countersign in their workload's pod. Add
countersign as a dependency, set `countersign.mode: sidecar` in your values,
then in your pod template pass the subchart's own context (Helm 3.7+):

  metadata:
    annotations:
      {{- include "countersign.sidecar.podAnnotations" .Subcharts.countersign | nindent 8 }}
  spec:
    terminationGracePeriodSeconds: {{ .Values.countersign.terminationGracePeriodSeconds }}
    securityContext:
      {{- toYaml .Values.countersign.podSecurityContext | nindent 6 }}
    containers:
      - name: app
        ...
      {{- include "countersign.sidecar.container" .Subcharts.countersign | nindent 6 }}
    volumes:
      {{- include "countersign.sidecar.volumes" .Subcharts.countersign | nindent 6 }}

examples/sidecar-app is a complete chart doing this.
*/}}
{{- define "countersign.sidecar.container" -}}
{{- include "countersign.container" . }}
{{- end }}

{{- define "countersign.sidecar.volumes" -}}
- name: config
  configMap:
    name: {{ include "countersign.fullname" . }}
- name: data
  {{- toYaml .Values.sidecar.dataVolume | nindent 2 }}
{{- end }}

{{- define "countersign.sidecar.podAnnotations" -}}
checksum/countersign-config: {{ include "countersign.config" . | sha256sum }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.ports.admin | quote }}
prometheus.io/path: /metrics
{{- end }}
