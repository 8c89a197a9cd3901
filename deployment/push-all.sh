#!/usr/bin/env bash
# Push every image build-all.sh built.
#
#   deployment/push-all.sh [--tag TAG] [--registry REGISTRY] [--dry-run]
#
# Log in first (e.g. `echo $TOKEN | docker login ghcr.io -u USER --password-stdin`);
# this script never handles credentials.
set -euo pipefail
# shellcheck source=deployment/lib/images.sh
source "$(dirname "$0")/lib/images.sh"
if [[ "$TAG" == *-dirty ]]; then
  echo "refusing to push a -dirty tag ($TAG): commit first or pass --tag" >&2
  [[ $DRY_RUN -eq 1 ]] || exit 1
fi
for role in "${ROLES[@]}"; do
  cmd=(docker push "$REGISTRY/arbbot-$role:$TAG")
  echo "+ ${cmd[*]}" >&2
  [[ $DRY_RUN -eq 1 ]] || "${cmd[@]}"
done
