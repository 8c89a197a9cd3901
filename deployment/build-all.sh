#!/usr/bin/env bash
# Build every arbbot image (one target per role of docker/Dockerfile).
#
#   deployment/build-all.sh [--tag TAG] [--registry REGISTRY] [--dry-run]
#
# TAG defaults to the git description (e.g. 0.1.0 or 7d2515c-dirty); REGISTRY to
# $ARBBOT_IMAGE_REGISTRY or ghcr.io/arbbot. Images: REGISTRY/arbbot-ROLE:TAG.
set -euo pipefail
# shellcheck source=deployment/lib/images.sh
source "$(dirname "$0")/lib/images.sh"
for role in "${ROLES[@]}"; do
  cmd=(docker build -f "$REPO/docker/Dockerfile" --target "$role"
       --label "org.opencontainers.image.version=$TAG"
       -t "$REGISTRY/arbbot-$role:$TAG" "$REPO")
  echo "+ ${cmd[*]}" >&2
  [[ $DRY_RUN -eq 1 ]] || "${cmd[@]}"
done
echo "built: ${ROLES[*]/#/$REGISTRY/arbbot-} (tag $TAG)" >&2
