#!/usr/bin/env bash
# Create the benchmark-only venvs of the peers the path benchmark compares against, so they
# never touch the main requirements (both are git-ignored):
#   bench/.venv-degenbot      degenbot==0.3.0 on Python 3.11
#   bench/.venv-degenbot-0.5  degenbot==0.5.0 (compiled Rust core) on Python 3.12 (pyenv's
#                             on these machines; PYTHON312=/path/to/python3.12 to choose)
# degenbot 0.5.0 keeps a config file and an SQLite database under $HOME/.config/degenbot on
# import: its venv gets a home of its own (bench/.venv-degenbot-0.5/home), prepared here.
# Idempotent: a venv already in place is left as it is.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

make_venv() {  # venv python version
  local venv="$1" py="$2" version="$3"
  if [ -x "$venv/bin/python" ] && HOME="$venv/home" "$venv/bin/python" -c "import degenbot" 2>/dev/null; then
    echo "degenbot $version venv ready: $venv"
    return
  fi
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/pip" install --quiet --disable-pip-version-check "degenbot==$version"
  mkdir -p "$venv/home/.config/degenbot"
  printf '[database]\npath = "%s"\n\n[rpc]\n' "$venv/home/.config/degenbot/degenbot.db" \
    > "$venv/home/.config/degenbot/config.toml"
  HOME="$venv/home" "$venv/bin/python" -c "import importlib.metadata as m; print('degenbot', m.version('degenbot'), 'installed in', '$venv')"
}

make_venv "$here/../.venv-degenbot" "${PYTHON:-python3.11}" 0.3.0

runs_312() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; }
py312=""
# pyenv's interpreter itself, not its shim (a shim fails unless 3.12 is the selected version)
for candidate in "${PYTHON312:-}" $(ls -d "$HOME"/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | sort -rV) \
    "$(command -v python3.12 || true)"; do
  if runs_312 "$candidate"; then py312="$candidate"; break; fi
done
if [ -z "$py312" ]; then
  echo "degenbot 0.5.0 needs Python 3.12: none found (set PYTHON312); the benchmark skips it" >&2
  exit 0
fi
make_venv "$here/../.venv-degenbot-0.5" "$py312" 0.5.0
