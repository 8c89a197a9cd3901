#!/usr/bin/env bash
# Build every arbbot image (one target per role of docker/Dockerfile).
#
#   deployment/build-all.sh [--tag TAG] [--registry REGISTRY] [--dry-run]
#
# TAG defaults to the git description (e.g. 0.1.0 or 7d2515c-dirty); REGISTRY to
# $ARBBOT_IMAGE_REGISTRY or ghcr.io/arbbot. Images: REGISTRY/arbbot-ROLE:TAG.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
TAG="${ARBBOT_IMAGE_TAG:-$(git -C "$REPO" describe --tags --always --dirty 2>/dev/null || echo dev)}"
REGISTRY="${ARBBOT_IMAGE_REGISTRY:-ghcr.io/arbbot}"
DRY_RUN=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tag) TAG="${2:?}"; shift ;;
    --registry) REGISTRY="${2:?}"; shift ;;
    --dry-run) DRY_RUN=1 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
ROLES=(web worker beat flower devnet)
for role in "${ROLES[@]}"; do
  cmd=(docker build -f "$REPO/docker/Dockerfile" --target "$role"
       --label "org.opencontainers.image.version=$TAG"
       -t "$REGISTRY/arbbot-$role:$TAG" "$REPO")
  echo "+ ${cmd[*]}" >&2
  [[ $DRY_RUN -eq 1 ]] || "${cmd[@]}"
done
echo "built: ${ROLES[*]/#/$REGISTRY/arbbot-} (tag $TAG)" >&2
