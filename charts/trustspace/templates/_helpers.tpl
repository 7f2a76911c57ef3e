{{- define "trustspace.name" -}}trustspace{{- end -}}

{{- define "trustspace.fullname" -}}
{{- if contains "trustspace" .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-trustspace" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "trustspace.labels" -}}
app.kubernetes.io/name: {{ include "trustspace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: trustspace
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "trustspace.selector" -}}
app.kubernetes.io/name: {{ include "trustspace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "trustspace.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (printf "%s-operator" (include "trustspace.fullname" .)) .Values.serviceAccount.name }}
{{- else -}}{{ required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{- /* The collector: its namespace (the data space's), its Service URL, its labels. */ -}}
{{- define "trustspace.collector.namespace" -}}
{{ .Values.collector.dataSpace.namespace | default .Release.Namespace }}
{{- end -}}

{{- define "trustspace.collector.enabled" -}}
{{- if and (eq .Values.mode "hub") .Values.collector.enabled -}}true{{- end -}}
{{- end -}}

{{- /* What agents are told: an external collector's URL, this chart's collector's, or "". */ -}}
{{- define "trustspace.collector.url" -}}
{{- if .Values.operator.collectorUrl -}}{{ .Values.operator.collectorUrl }}
{{- else if include "trustspace.collector.enabled" . -}}
{{- .Values.collector.url | default (printf "https://trustspace-collector.%s.svc:%d" (include "trustspace.collector.namespace" .) (int .Values.collector.service.port)) }}
{{- end -}}
{{- end -}}

{{- define "trustspace.collector.selector" -}}
app.kubernetes.io/name: {{ include "trustspace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: collector
{{- end -}}
