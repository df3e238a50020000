{{- define "keymaster.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "keymaster.labels" -}}
app.kubernetes.io/name: keymaster
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The shards to render: the configured ones, or one shard with every network. */}}
{{- define "keymaster.shards" -}}
{{- if .Values.shards -}}
{{- $seen := dict -}}
{{- range .Values.shards -}}
{{- range .networks -}}
{{- $network := toString . -}}
{{- if hasKey $seen $network -}}{{- fail (printf "network %s is in two shards: a bank must have one funder" $network) -}}{{- end -}}
{{- $_ := set $seen $network true -}}
{{- end -}}
{{- end -}}
{{- toYaml .Values.shards -}}
{{- else -}}
- name: ""
  networks: []
{{- end -}}
{{- end -}}
