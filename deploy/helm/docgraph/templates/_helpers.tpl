{{/* Names ---------------------------------------------------------------- */}}

{{- define "docgraph.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "docgraph.fullname" -}}
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

{{- define "docgraph.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "docgraph.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "docgraph.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* labels: call with (dict "root" $ "component" "worker-ner") */}}
{{- define "docgraph.selectorLabels" -}}
app.kubernetes.io/name: {{ include "docgraph.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "docgraph.labels" -}}
{{ include "docgraph.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ default .root.Chart.AppVersion .root.Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: docgraph
{{- end -}}

{{/* Redis ---------------------------------------------------------------- */}}

{{- define "docgraph.redisAddress" -}}
{{- printf "%s:%d" .Values.redis.host (int .Values.redis.port) -}}
{{- end -}}

{{/* DOCGRAPH_REDIS_URL; the password comes from the Secret through the
     REDIS_PASSWORD variable, expanded by the kubelet ($(VAR) syntax) */}}
{{- define "docgraph.redisURL" -}}
{{- $r := .Values.redis -}}
{{- $scheme := ternary "rediss" "redis" $r.tls.enabled -}}
{{- $user := "" -}}
{{- if $r.auth.enabled -}}
{{- $user = printf "%s:$(REDIS_PASSWORD)@" $r.username -}}
{{- else if $r.username -}}
{{- $user = printf "%s@" $r.username -}}
{{- end -}}
{{- $query := "" -}}
{{- if and $r.tls.enabled $r.tls.caSecret.name -}}
{{- $query = printf "?ssl_ca_certs=/etc/docgraph/redis-ca/%s" $r.tls.caSecret.key -}}
{{- end -}}
{{- printf "%s://%s%s/%d%s" $scheme $user (include "docgraph.redisAddress" .) (int $r.database) $query -}}
{{- end -}}

{{/* Timing --------------------------------------------------------------- */}}

{{/* terminationGracePeriodSeconds for a pod whose longest job takes
     .longest seconds: DOCGRAPH_SHUTDOWN_GRACE + longest job + margin, so the
     kubelet's SIGKILL never lands while the worker still finishes or hands
     back work. An explicit .override must be above grace + longest job.
     Call with (dict "root" $ "longest" N "override" M "what" "stage ner"). */}}
{{- define "docgraph.terminationGrace" -}}
{{- $d := .root.Values.docgraph -}}
{{- $grace := int (ceil $d.shutdownGraceSeconds) -}}
{{- $floor := add $grace (int .longest) -}}
{{- if .override -}}
{{- if le (int .override) (int $floor) -}}
{{- fail (printf "%s: terminationGracePeriodSeconds %d must be above docgraph.shutdownGraceSeconds (%d) + longestJobSeconds (%d) = %d, or Kubernetes kills in-flight jobs with SIGKILL" .what (int .override) $grace (int .longest) (int $floor)) -}}
{{- end -}}
{{- int .override -}}
{{- else -}}
{{- add $floor (int $d.terminationMarginSeconds) -}}
{{- end -}}
{{- end -}}

{{/* Pod pieces ----------------------------------------------------------- */}}

{{- define "docgraph.env" -}}
{{- if .Values.redis.auth.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "redis.auth.existingSecret: name the existing Secret holding the Redis password" .Values.redis.auth.existingSecret }}
      key: {{ .Values.redis.auth.passwordKey }}
{{- end }}
- name: DOCGRAPH_REDIS_URL
  value: {{ include "docgraph.redisURL" . | quote }}
{{- range .Values.docgraph.secretEnv }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .key }}
{{- end }}
{{- with .Values.docgraph.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "docgraph.envFrom" -}}
- configMapRef:
    name: {{ include "docgraph.fullname" . }}-settings
{{- end -}}

{{- define "docgraph.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /data
{{- if and .Values.redis.tls.enabled .Values.redis.tls.caSecret.name }}
- name: redis-ca
  mountPath: /etc/docgraph/redis-ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "docgraph.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.volumes.tmpSizeLimit }}
- name: data
  emptyDir:
    sizeLimit: {{ .Values.volumes.dataSizeLimit }}
{{- if and .Values.redis.tls.enabled .Values.redis.tls.caSecret.name }}
- name: redis-ca
  secret:
    secretName: {{ .Values.redis.tls.caSecret.name }}
    items:
      - key: {{ .Values.redis.tls.caSecret.key }}
        path: {{ .Values.redis.tls.caSecret.key }}
{{- end }}
{{- end -}}

{{/* The chart's settings checksum: a changed ConfigMap rolls the pods */}}
{{- define "docgraph.configChecksum" -}}
{{- include (print .Template.BasePath "/configmap.yaml") . | sha256sum | trunc 16 -}}
{{- end -}}
