# Shared by build-all.sh and push-all.sh (sourced): image naming and their common options.
# Sets REPO, TAG, REGISTRY, DRY_RUN and ROLES from the defaults and "$@".
REPO="$(cd "$(dirname "$0")/.." && pwd)"
TAG="${ARBBOT_IMAGE_TAG:-$(git -C "$REPO" describe --tags --always --dirty 2>/dev/null || echo dev)}"
REGISTRY="${ARBBOT_IMAGE_REGISTRY:-ghcr.io/arbbot}"
DRY_RUN=0
ROLES=(web worker beat flower devnet)
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
