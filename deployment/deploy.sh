#!/usr/bin/env bash
# Deploy arbbot to one environment in one region.
#
#   deployment/deploy.sh ENV REGION [--dry-run] [--tool kustomize|helm] [--context NAME]
#
#   ENV     dev | staging | production
#   REGION  us-east-1 | eu-west-1 | ap-southeast-1
#   --dry-run   render and print the manifests; contact no cluster
#   --tool      kustomize (default: kubectl apply -k of k8s/overlays/...) or helm (helm/arbbot)
#   --context   kube context (default arbbot-ENV-REGION)
#
# Kustomize picks k8s/overlays/regions/REGION for production (region-specific ceilings and
# hostnames) and k8s/overlays/ENV otherwise. Helm layers deployment/helm-values/ENV.yaml and
# sets the region's hostname. Prerequisites on the cluster: KEDA 2.x (its CRDs), an ingress
# controller, and the Secrets arbbot-secrets, arbbot-role-urls, arbbot-signer and (Kustomize,
# or Helm with xchain.enabled) arbbot-xchain (see deployment/README.md).
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

REPO="$(cd "$(dirname "$0")/.." && pwd)"
DRY_RUN=0
TOOL=kustomize
CONTEXT=""
POSITIONAL=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --tool) TOOL="${2:?--tool needs a value}"; shift ;;
    --tool=*) TOOL="${1#*=}" ;;
    --context) CONTEXT="${2:?--context needs a value}"; shift ;;
    --context=*) CONTEXT="${1#*=}" ;;
    -h|--help) usage 0 ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *) POSITIONAL+=("$1") ;;
  esac
  shift
done
[[ ${#POSITIONAL[@]} -eq 2 ]] || usage
ENV="${POSITIONAL[0]}"
REGION="${POSITIONAL[1]}"
case "$ENV" in dev|staging|production) ;; *) echo "ENV must be dev, staging or production, got '$ENV'" >&2; exit 2 ;; esac
case "$REGION" in us-east-1|eu-west-1|ap-southeast-1) ;; *) echo "REGION must be us-east-1, eu-west-1 or ap-southeast-1, got '$REGION'" >&2; exit 2 ;; esac
case "$TOOL" in kustomize|helm) ;; *) echo "--tool must be kustomize or helm" >&2; exit 2 ;; esac
CONTEXT="${CONTEXT:-arbbot-$ENV-$REGION}"

case "$ENV" in
  dev) NAMESPACE=arbbot-dev ;;
  staging) NAMESPACE=arbbot-staging ;;
  production) NAMESPACE=arbbot ;;
esac

log() { echo "deploy: $*" >&2; }

python_bin() {
  if [[ -x "$REPO/.venv/bin/python" ]]; then echo "$REPO/.venv/bin/python"; else command -v python3; fi
}

if [[ "$TOOL" == kustomize ]]; then
  if [[ "$ENV" == production ]]; then
    OVERLAY="$REPO/k8s/overlays/regions/$REGION"
  else
    OVERLAY="$REPO/k8s/overlays/$ENV"
  fi
  log "rendering ${OVERLAY#"$REPO"/} (env $ENV, region $REGION)"
  MANIFESTS="$(kubectl kustomize "$OVERLAY")"
  if [[ $DRY_RUN -eq 1 ]]; then
    log "dry run: would apply to context $CONTEXT, namespace $NAMESPACE"
    printf '%s\n' "$MANIFESTS"
    exit 0
  fi
  printf '%s\n' "$MANIFESTS" | kubectl --context "$CONTEXT" apply --server-side --field-manager=arbbot-deploy -f -
  for d in $(printf '%s\n' "$MANIFESTS" | kubectl --context "$CONTEXT" -n "$NAMESPACE" get -f - -o name 2>/dev/null | grep '^deployment' || true); do
    kubectl --context "$CONTEXT" -n "$NAMESPACE" rollout status "$d" --timeout=10m
  done
  log "done: $ENV in $REGION ($CONTEXT)"
  exit 0
fi

# --- helm ---
CHART="$REPO/helm/arbbot"
VALUES="$REPO/deployment/helm-values/$ENV.yaml"
RELEASE=arbbot
HOST="$REGION.arbbot.example.com"
[[ "$ENV" == production ]] || HOST="$ENV.arbbot.example.com"
if [[ $DRY_RUN -eq 1 ]]; then
  log "dry run: would install release $RELEASE into $CONTEXT/$NAMESPACE with $(basename "$VALUES")"
  if command -v helm >/dev/null; then
    helm template "$RELEASE" "$CHART" -n "$NAMESPACE" -f "$VALUES" --set "ingress.host=$HOST"
  else
    # No helm binary: render with the Helm engine embedded in helm-python-sdk.
    "$(python_bin)" - "$CHART" "$VALUES" "$RELEASE" "$NAMESPACE" "$HOST" <<'PY'
import sys, yaml, helm_python
chart_dir, values_file, release, namespace, host = sys.argv[1:]
values = yaml.safe_load(open(values_file)) or {}
values.setdefault("ingress", {})["host"] = host
with helm_python.Chart.load(chart_dir) as chart:
    chart.validate_schema(chart.merge_values(values))
    for path, text in sorted(chart.render(values, name=release, namespace=namespace).items()):
        if path.endswith((".yaml", ".yml")) and text.strip():
            print(f"---\n# Source: {path}\n{text.strip()}")
PY
  fi
  exit 0
fi
command -v helm >/dev/null || { echo "helm is required for --tool helm (https://helm.sh/docs/intro/install/)" >&2; exit 1; }
helm --kube-context "$CONTEXT" upgrade --install "$RELEASE" "$CHART" -n "$NAMESPACE" --create-namespace \
  -f "$VALUES" --set "ingress.host=$HOST" --wait --timeout 10m
helm --kube-context "$CONTEXT" test "$RELEASE" -n "$NAMESPACE" --timeout 5m
log "done: $ENV in $REGION ($CONTEXT)"
