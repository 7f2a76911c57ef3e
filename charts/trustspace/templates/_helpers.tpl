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
