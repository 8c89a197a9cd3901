{{/* Chart name. */}}
{{- define "arbbot.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped base name: "<release>" if it contains the chart name, else "<release>-arbbot". */}}
{{- define "arbbot.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "arbbot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "arbbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: arbbot
{{- end -}}

{{/* Selector labels; call with (dict "root" $ "component" "web"). */}}
{{- define "arbbot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "arbbot.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "arbbot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "arbbot.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image for a role; call with (dict "root" $ "role" "web"). */}}
{{- define "arbbot.image" -}}
{{- $img := .root.Values.image -}}
{{- printf "%s/%s:%s" $img.registry (index $img.repositories .role) (default .root.Chart.AppVersion $img.tag) -}}
{{- end -}}

{{- define "arbbot.secretName" -}}
{{- if .Values.secrets.create -}}
{{- printf "%s-secrets" (include "arbbot.fullname" .) -}}
{{- else -}}
{{- .Values.secrets.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "arbbot.envFrom" -}}
- configMapRef:
    name: {{ include "arbbot.fullname" . }}-config
- secretRef:
    name: {{ include "arbbot.secretName" . }}
{{- end -}}

{{- /*
A process's own broker and Redis user (infrastructure/rabbitmq/definitions.json,
infrastructure/redis/users.acl): two keys of roleUrls.existingSecret, broker-url-<broker>
and redis-url-<redis>; they override any ARBBOT_BROKER_URL / ARBBOT_REDIS_URL of the shared
Secret. (dict "root" . "broker" "<role>" "redis" "<role>")
*/ -}}
{{- define "arbbot.roleEnv" -}}
- name: ARBBOT_BROKER_URL
  valueFrom:
    secretKeyRef: {name: {{ .root.Values.roleUrls.existingSecret }}, key: {{ printf "broker-url-%s" .broker }}}
- name: ARBBOT_REDIS_URL
  valueFrom:
    secretKeyRef: {name: {{ .root.Values.roleUrls.existingSecret }}, key: {{ printf "redis-url-%s" .redis }}}
{{- if .root.Values.roleUrls.brokerTlsCaFile }}
- name: ARBBOT_BROKER_TLS_CA_FILE
  value: {{ .root.Values.roleUrls.brokerTlsCaFile | quote }}
{{- end }}
{{- end -}}

{{- define "arbbot.tmpVolumes" -}}
- name: tmp
  emptyDir: {}
- name: run
  emptyDir: {}
{{- end -}}

{{- define "arbbot.tmpMounts" -}}
- name: tmp
  mountPath: /tmp
- name: run
  mountPath: /app/run
{{- end -}}

{{- define "arbbot.podSpecCommon" -}}
serviceAccountName: {{ include "arbbot.serviceAccountName" . }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{- /*
The signing key, for the pools that sign only: a raw hex key file, or an encrypted JSON
keystore and its password file (signer.keystore.enabled), all from signer.existingSecret.
The volume projects exactly the files the variables name, nothing else of the Secret.
*/ -}}
{{- define "arbbot.signerEnv" -}}
{{- if .Values.signer.keystore.enabled -}}
- name: ARBBOT_SIGNER_KEYSTORE_FILE
  value: {{ printf "/var/run/secrets/arbbot/%s" .Values.signer.keystore.file | quote }}
- name: ARBBOT_SIGNER_KEYSTORE_PASSWORD_FILE
  value: {{ printf "/var/run/secrets/arbbot/%s" .Values.signer.keystore.passwordKey | quote }}
{{- else -}}
- name: ARBBOT_SIGNER_KEY_FILE
  value: {{ printf "/var/run/secrets/arbbot/%s" .Values.signer.key | quote }}
{{- end -}}
{{- end -}}

{{- define "arbbot.signerVolume" -}}
- name: signer
  secret:
    secretName: {{ .Values.signer.existingSecret }}
    defaultMode: 256
    items:
      {{- if .Values.signer.keystore.enabled }}
      - {key: {{ .Values.signer.keystore.file | quote }}, path: {{ .Values.signer.keystore.file | quote }}}
      - {key: {{ .Values.signer.keystore.passwordKey | quote }}, path: {{ .Values.signer.keystore.passwordKey | quote }}}
      {{- else }}
      - {key: {{ .Values.signer.key | quote }}, path: {{ .Values.signer.key | quote }}}
      {{- end }}
{{- end -}}

{{- /*
The cross-chain inventory wallet's key, for the bridge pool only (xchain.enabled): the one
file of xchain.existingSecret that ARBBOT_XCHAIN_KEY_FILE names.
*/ -}}
{{- define "arbbot.xchainEnv" -}}
- name: ARBBOT_XCHAIN_KEY_FILE
  value: {{ printf "/var/run/secrets/arbbot/%s" .Values.xchain.key | quote }}
{{- end -}}

{{- define "arbbot.xchainVolume" -}}
- name: xchain
  secret:
    secretName: {{ .Values.xchain.existingSecret }}
    defaultMode: 256
    items:
      - {key: {{ .Values.xchain.key | quote }}, path: {{ .Values.xchain.key | quote }}}
{{- end -}}
