#!/usr/bin/env bash
# Create the benchmark-only venv holding degenbot==0.3.0 (heavy pins) so it never touches
# the main requirements. Idempotent: re-running with the venv in place does nothing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/../.venv-degenbot"
py="${PYTHON:-python3.11}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import degenbot" 2>/dev/null; then
  echo "degenbot venv ready: $venv"
  exit 0
fi
"$py" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet 'degenbot==0.3.0'
"$venv/bin/python" -c "import degenbot; print('degenbot', getattr(degenbot, '__version__', '0.3.0'), 'installed in', '$venv')"
