{{/*
Names and labels, as `helm create` lays them out: names are cut to 63 characters because some
Kubernetes name fields are limited to that (DNS-1123 labels).
*/}}
{{- define "authserver.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "authserver.fullname" -}}
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

{{- define "authserver.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "authserver.selectorLabels" -}}
app.kubernetes.io/name: {{ include "authserver.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The server pods' selector. The component label keeps the migration and janitor pods (same name
and instance) out of the Services, the PodDisruptionBudget and the NetworkPolicy.
*/}}
{{- define "authserver.serverSelectorLabels" -}}
{{ include "authserver.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "authserver.labels" -}}
helm.sh/chart: {{ include "authserver.chart" . }}
{{ include "authserver.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: phraseanet
{{- end }}

{{- define "authserver.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "authserver.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "authserver.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The Secret that holds AUTHSERVER_DATABASE_URL, _SECRET_KEYS and _ADMIN_TOKENS: the operator's
own (secret.existingSecret) or the one this chart makes.
*/}}
{{- define "authserver.secretName" -}}
{{- .Values.secret.existingSecret | default (include "authserver.fullname" .) }}
{{- end }}

{{/* host:port for a listener; IPv6 hosts go in brackets, as AUTHSERVER_*_ADDR expects. */}}
{{- define "authserver.addr" -}}
{{- $host := index . 0 }}
{{- $port := index . 1 }}
{{- if contains ":" $host }}
{{- printf "[%s]:%v" $host $port }}
{{- else }}
{{- printf "%s:%v" $host $port }}
{{- end }}
{{- end }}

{{/*
Every non-secret AUTHSERVER_* setting as a YAML map of strings. The ConfigMap carries it for
the pods and the janitor; the migration hook renders it inline, because a pre-install hook runs
before the release's ConfigMap exists.
*/}}
{{- define "authserver.settings" -}}
{{- $config := .Values.config }}
{{- /* The admin listener leaves the pod only through the admin Service. */}}
{{- $adminExposed := and (eq .Values.mode "deployment") .Values.service.admin.enabled }}
{{- $adminHost := ternary $config.listenHost "127.0.0.1" $adminExposed }}
{{- $settings := dict }}
{{- range $name, $value := $config.settings }}
{{- /* Numbers from values files arrive as floats: 2592000 would print as 2.592e+06. */}}
{{- if kindIs "float64" $value }}
{{- $value = int64 $value }}
{{- end }}
{{- $_ := set $settings (printf "AUTHSERVER_%s" $name) (toString $value) }}
{{- end }}
{{- $_ := set $settings "AUTHSERVER_ISSUER" (required "config.issuer is required: the public https URL of the server" $config.issuer) }}
{{- $_ := set $settings "AUTHSERVER_PUBLIC_ADDR" (include "authserver.addr" (list $config.listenHost $config.publicPort)) }}
{{- $_ := set $settings "AUTHSERVER_ADMIN_ADDR" (include "authserver.addr" (list $adminHost $config.adminPort)) }}
{{- $_ := set $settings "AUTHSERVER_SHUTDOWN_GRACE" (toString $config.shutdownGrace) }}
{{- /* 0: unset, the server counts the CPUs the container may use. */}}
{{- if gt (int .Values.workers) 0 }}
{{- $_ := set $settings "AUTHSERVER_WORKERS" (toString (int .Values.workers)) }}
{{- end }}
{{- /* The hook Job has migrated before any pod starts; the pods need not try again. */}}
{{- $_ := set $settings "AUTHSERVER_MIGRATE_ON_START" (ternary "false" "true" .Values.migration.enabled) }}
{{- /* The CronJob does the janitor's work; the in-server janitor stays off. */}}
{{- if .Values.janitor.enabled }}
{{- $_ := set $settings "AUTHSERVER_JANITOR_INTERVAL" "0" }}
{{- end }}
{{- toYaml $settings }}
{{- end }}

{{/* Data of a Secret this chart makes (the release's own, or the migration hook's copy). */}}
{{- define "authserver.secretData" -}}
{{- $secret := .Values.secret }}
{{- if not $secret.databaseUrl }}
{{- fail "secret.databaseUrl is required (or name an existing Secret in secret.existingSecret)" }}
{{- end }}
{{- if not $secret.secretKeys }}
{{- fail "secret.secretKeys is required, newest first (or name an existing Secret in secret.existingSecret)" }}
{{- end }}
{{- if not $secret.adminTokens }}
{{- fail "secret.adminTokens is required (or name an existing Secret in secret.existingSecret)" }}
{{- end -}}
{{ $secret.keys.databaseUrl }}: {{ $secret.databaseUrl | b64enc | quote }}
{{ $secret.keys.secretKeys }}: {{ join "," $secret.secretKeys | b64enc | quote }}
{{ $secret.keys.adminTokens }}: {{ join "," $secret.adminTokens | b64enc | quote }}
{{- end }}

{{/* The secret settings as container env, read from the Secret named by the argument. */}}
{{- define "authserver.secretEnv" -}}
{{- $name := index . 0 }}
{{- $keys := (index . 1).Values.secret.keys -}}
- name: AUTHSERVER_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $keys.databaseUrl }}
- name: AUTHSERVER_SECRET_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $keys.secretKeys }}
- name: AUTHSERVER_ADMIN_TOKENS
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $keys.adminTokens }}
{{- end }}

{{/*
The hardened pod-level and container-level security contexts, shared by the server, the
migration Job, the janitor and the test pod.
*/}}
{{- define "authserver.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "authserver.securityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end }}

{{/* A writable /tmp on a read-only root filesystem. */}}
{{- define "authserver.tmpVolume" -}}
- name: tmp
  emptyDir:
    {{- with .Values.tmpVolume.sizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
{{- end }}

{{- define "authserver.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* Render-time checks: a bad combination of values fails `helm install`, not the pod. */}}
{{- define "authserver.validate" -}}
{{- $preStop := int .Values.lifecycle.preStopSleepSeconds }}
{{- $grace := int .Values.config.shutdownGrace }}
{{- if le (int .Values.terminationGracePeriodSeconds) (add $grace $preStop) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be larger than config.shutdownGrace (%v) plus lifecycle.preStopSleepSeconds (%v), or Kubernetes kills requests still draining" .Values.terminationGracePeriodSeconds $grace $preStop) }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not .Values.service.admin.enabled) }}
{{- fail "serviceMonitor.enabled scrapes /metrics through the admin Service: set service.admin.enabled" }}
{{- end }}
{{- end }}
