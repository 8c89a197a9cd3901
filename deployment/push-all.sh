#!/usr/bin/env bash
# Push every image build-all.sh built.
#
#   deployment/push-all.sh [--tag TAG] [--registry REGISTRY] [--dry-run]
#
# Log in first (e.g. `echo $TOKEN | docker login ghcr.io -u USER --password-stdin`);
# this script never handles credentials.
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
if [[ "$TAG" == *-dirty ]]; then
  echo "refusing to push a -dirty tag ($TAG): commit first or pass --tag" >&2
  [[ $DRY_RUN -eq 1 ]] || exit 1
fi
for role in web worker beat flower devnet; do
  cmd=(docker push "$REGISTRY/arbbot-$role:$TAG")
  echo "+ ${cmd[*]}" >&2
  [[ $DRY_RUN -eq 1 ]] || "${cmd[@]}"
done
