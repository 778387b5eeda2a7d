{{/* Chart name, cut to the 63 characters a label value allows. */}}
{{- define "stream-template.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name. StatefulSet pods are <fullname>-<ordinal> and the pod name is the member's
INSTANCE_ID, so keep it short enough for the ordinal: 52 characters leaves room for it
within the 63 that a pod's hostname label allows.
*/}}
{{- define "stream-template.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "stream-template.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "stream-template.labels" -}}
helm.sh/chart: {{ include "stream-template.chart" . }}
{{ include "stream-template.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: stream-processor
{{- end }}

{{- define "stream-template.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stream-template.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "stream-template.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stream-template.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "stream-template.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* Where secrets are mounted; the *_FILE variables point into these folders. */}}
{{- define "stream-template.secretsDir" -}}/etc/stream-template{{- end }}

{{- define "stream-template.saslEnabled" -}}
{{- if hasPrefix "sasl" .Values.kafka.securityProtocol }}true{{ end }}
{{- end }}

{{- define "stream-template.tlsEnabled" -}}
{{- if hasSuffix "ssl" .Values.kafka.securityProtocol }}true{{ end }}
{{- end }}

{{/*
The input topics of the enabled pipelines, as a JSON list: what the KEDA triggers watch.
A new pipeline adds its input topic here.
*/}}
{{- define "stream-template.inputTopics" -}}
{{- $enabled := splitList "," (.Values.pipelines | toString) }}
{{- $all := has "all" $enabled }}
{{- $topics := list }}
{{- if or $all (has "fraud-trigger" $enabled) }}
{{- $topics = append $topics .Values.kafka.topics.fraudInput }}
{{- end }}
{{- if or $all (has "branch-totals" $enabled) }}
{{- $topics = append $topics .Values.kafka.topics.branchInput }}
{{- end }}
{{- toJson $topics }}
{{- end }}

{{/*
The service's environment, as a dict: the ConfigMap's data and the topics Job's env.
Secrets are never in it, only the paths of the files they are mounted at.
*/}}
{{- define "stream-template.config" -}}
{{- $dir := include "stream-template.secretsDir" . }}
{{- $v := .Values }}
{{- $c := dict
  "SERVICE_NAME" $v.serviceName
  "PIPELINES" ($v.pipelines | toString)
  "LOG_LEVEL" $v.logLevel
  "HTTP_PORT" ($v.httpPort | int64 | toString)
  "SHUTDOWN_GRACE_MS" ($v.shutdownGraceMs | int64 | toString)
  "KAFKA_BROKERS" $v.kafka.brokers
  "KAFKA_TOPIC_PARTITIONS" ($v.kafka.partitions | int64 | toString)
  "KAFKA_REPLICATION_FACTOR" ($v.kafka.replicationFactor | int64 | toString)
  "PROCESSING_GUARANTEE" $v.kafka.processingGuarantee
  "AUTO_OFFSET_RESET" $v.kafka.autoOffsetReset
  "KAFKA_SECURITY_PROTOCOL" $v.kafka.securityProtocol
  "FRAUD_INPUT_TOPIC" $v.kafka.topics.fraudInput
  "FRAUD_OUTPUT_TOPIC" $v.kafka.topics.fraudAlerts
  "BRANCH_INPUT_TOPIC" $v.kafka.topics.branchInput
  "BRANCH_TOTALS_TOPIC" $v.kafka.topics.branchTotals
  "BRANCH_WINDOWED_TOPIC" $v.kafka.topics.branchWindowed
  "REDIS_URL" $v.redis.url
}}
{{- if include "stream-template.saslEnabled" . }}
{{- $_ := set $c "KAFKA_SASL_MECHANISM" $v.kafka.sasl.mechanism }}
{{- $_ := set $c "KAFKA_SASL_USERNAME" $v.kafka.sasl.username }}
{{- $_ := set $c "KAFKA_SASL_PASSWORD_FILE" (printf "%s/kafka-sasl/password" $dir) }}
{{- end }}
{{- if and (include "stream-template.tlsEnabled" .) $v.kafka.tls.existingSecret }}
{{- $_ := set $c "KAFKA_SSL_CA_LOCATION" (printf "%s/kafka-tls/ca.crt" $dir) }}
{{- if $v.kafka.tls.certKey }}
{{- $_ := set $c "KAFKA_SSL_CERTIFICATE_LOCATION" (printf "%s/kafka-tls/tls.crt" $dir) }}
{{- $_ := set $c "KAFKA_SSL_KEY_LOCATION" (printf "%s/kafka-tls/tls.key" $dir) }}
{{- end }}
{{- end }}
{{- if $v.redis.clusterNodes }}
{{- $_ := set $c "REDIS_CLUSTER_NODES" $v.redis.clusterNodes }}
{{- end }}
{{- if $v.redis.existingSecret }}
{{- $_ := set $c "REDIS_PASSWORD_FILE" (printf "%s/redis/password" $dir) }}
{{- end }}
{{- if $v.redis.tls.existingSecret }}
{{- $_ := set $c "REDIS_TLS_CA_FILE" (printf "%s/redis-tls/ca.crt" $dir) }}
{{- end }}
{{- range $k, $val := $v.env }}
{{- $_ := set $c $k ($val | toString) }}
{{- end }}
{{- toYaml $c }}
{{- end }}

{{/* Secret volumes and their mounts, shared by the StatefulSet and the topics Job. */}}
{{- define "stream-template.secretVolumes" -}}
{{- $v := .Values }}
{{- if include "stream-template.saslEnabled" . }}
- name: kafka-sasl
  secret:
    secretName: {{ $v.kafka.sasl.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $v.kafka.sasl.passwordKey }}
        path: password
{{- end }}
{{- if and (include "stream-template.tlsEnabled" .) $v.kafka.tls.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ $v.kafka.tls.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $v.kafka.tls.caKey }}
        path: ca.crt
      {{- if $v.kafka.tls.certKey }}
      - key: {{ $v.kafka.tls.certKey }}
        path: tls.crt
      - key: {{ $v.kafka.tls.keyKey }}
        path: tls.key
      {{- end }}
{{- end }}
{{- if $v.redis.existingSecret }}
- name: redis
  secret:
    secretName: {{ $v.redis.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $v.redis.passwordKey }}
        path: password
{{- end }}
{{- if $v.redis.tls.existingSecret }}
- name: redis-tls
  secret:
    secretName: {{ $v.redis.tls.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $v.redis.tls.caKey }}
        path: ca.crt
{{- end }}
{{- end }}

{{- define "stream-template.secretMounts" -}}
{{- $dir := include "stream-template.secretsDir" . }}
{{- $v := .Values }}
{{- if include "stream-template.saslEnabled" . }}
- name: kafka-sasl
  mountPath: {{ $dir }}/kafka-sasl
  readOnly: true
{{- end }}
{{- if and (include "stream-template.tlsEnabled" .) $v.kafka.tls.existingSecret }}
- name: kafka-tls
  mountPath: {{ $dir }}/kafka-tls
  readOnly: true
{{- end }}
{{- if $v.redis.existingSecret }}
- name: redis
  mountPath: {{ $dir }}/redis
  readOnly: true
{{- end }}
{{- if $v.redis.tls.existingSecret }}
- name: redis-tls
  mountPath: {{ $dir }}/redis-tls
  readOnly: true
{{- end }}
{{- end }}

{{/*
Settings that cannot work together stop the release with a message saying what to change.
Included by the StatefulSet, so every render runs it.
*/}}
{{- define "stream-template.validate" -}}
{{- $v := .Values }}
{{- $partitions := $v.kafka.partitions | int }}
{{- if and $v.autoscaling.keda.enabled $v.autoscaling.hpa.enabled }}
{{- fail "autoscaling.keda.enabled and autoscaling.hpa.enabled are both true: enable one or the other (KEDA creates and owns its own HorizontalPodAutoscaler, and two autoscalers on one StatefulSet fight over its replicas)" }}
{{- end }}
{{- if and $v.autoscaling.keda.enabled (gt ($v.autoscaling.keda.maxReplicaCount | int) $partitions) }}
{{- fail (printf "autoscaling.keda.maxReplicaCount (%d) exceeds kafka.partitions (%d): a consumer group uses at most one member per partition; lower maxReplicaCount or add partitions" ($v.autoscaling.keda.maxReplicaCount | int) $partitions) }}
{{- end }}
{{- if and $v.autoscaling.hpa.enabled (gt ($v.autoscaling.hpa.maxReplicas | int) $partitions) }}
{{- fail (printf "autoscaling.hpa.maxReplicas (%d) exceeds kafka.partitions (%d): a consumer group uses at most one member per partition; lower maxReplicas or add partitions" ($v.autoscaling.hpa.maxReplicas | int) $partitions) }}
{{- end }}
{{- if and (not (or $v.autoscaling.keda.enabled $v.autoscaling.hpa.enabled)) (gt ($v.replicaCount | int) $partitions) }}
{{- fail (printf "replicaCount (%d) exceeds kafka.partitions (%d): the extra members would hold no partition" ($v.replicaCount | int) $partitions) }}
{{- end }}
{{- if le (mul ($v.terminationGracePeriodSeconds | int64) 1000) ($v.shutdownGraceMs | int64) }}
{{- fail (printf "terminationGracePeriodSeconds (%d s) must exceed shutdownGraceMs (%d ms): the service must finish its shutdown before the kubelet kills it" ($v.terminationGracePeriodSeconds | int64) ($v.shutdownGraceMs | int64)) }}
{{- end }}
{{- if not $v.kafka.brokers }}
{{- fail "kafka.brokers is required (comma-separated host:port)" }}
{{- end }}
{{- if and (include "stream-template.saslEnabled" .) (not (and $v.kafka.sasl.username $v.kafka.sasl.existingSecret)) }}
{{- fail (printf "kafka.securityProtocol is %s: set kafka.sasl.username and kafka.sasl.existingSecret (a Secret with the password under kafka.sasl.passwordKey)" $v.kafka.securityProtocol) }}
{{- end }}
{{- if and $v.kafka.tls.certKey (not $v.kafka.tls.keyKey) }}
{{- fail "kafka.tls.certKey is set without kafka.tls.keyKey: mutual TLS needs both" }}
{{- end }}
{{- end }}
