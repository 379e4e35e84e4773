# Sourced by scripts/run and scripts/test: make .venv with everything installed.
#
# - Needs Python >= 3.11: PYTHON=/path/to/python picks one; otherwise the first of
#   python3, python3.13, python3.12, python3.11 that is new enough.
# - A .venv made with an older Python, one whose Python no longer runs, or one whose
#   set-up never finished (no stamp) is removed and made again.
# - Re-installs only when pyproject.toml or constraints.txt changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NEED="3.11"
STAMP=.venv/.colorbot-installed

say() { printf 'colorbot: %s\n' "$*" >&2; }

# The version of a Python ("3.11.7"), or nothing when it does not run.
py_version() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true; }
py_new_enough() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
    if ! py_new_enough "$PY"; then
        found="$(py_version "$PY")"
        say "Python >= $NEED is needed; PYTHON=$PY is ${found:-not a working Python}."
        exit 1
    fi
else
    PY=""
    for candidate in python3 python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null 2>&1 && py_new_enough "$candidate"; then
            PY="$candidate"
            break
        fi
    done
    if [ -z "$PY" ]; then
        found="$(py_version python3)"
        say "Python >= $NEED is needed; python3 here is ${found:-missing}."
        say "Install Python $NEED or newer (e.g. apt-get install python3.11 python3.11-venv,"
        say "or pyenv install 3.11), then run this again, or point PYTHON=/path/to/python3.11."
        exit 1
    fi
fi

# A venv that cannot be used as it is: remove it, say why, and start again.
if [ -d .venv ]; then
    why=""
    venv_version="$(py_version .venv/bin/python)"
    if [ -z "$venv_version" ]; then
        why="its Python does not run"
    elif ! py_new_enough .venv/bin/python; then
        why="it was made with Python $venv_version (needs >= $NEED)"
    elif [ ! -f "$STAMP" ]; then
        why="an earlier set-up did not finish"
    fi
    if [ -n "$why" ]; then
        say "rebuilding .venv: $why"
        rm -rf .venv
    fi
fi

if [ ! -d .venv ]; then
    say "setting up (first time, about 2 minutes): Python $(py_version "$PY"), .venv, ~1.5 GB"
    if ! "$PY" -m venv .venv; then
        rm -rf .venv
        say "'$PY -m venv' failed; on Debian/Ubuntu install the venv module" \
            "(apt-get install python3-venv, or python3.11-venv)."
        exit 1
    fi
fi

# Re-install only when the project definition changed; pip shows its progress.
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ constraints.txt -nt "$STAMP" ]; then
    if [ -f "$STAMP" ]; then
        say "pyproject.toml or constraints.txt changed: updating .venv"
    fi
    if ! .venv/bin/python -m pip install --upgrade pip \
        || ! .venv/bin/python -m pip install -c constraints.txt -e ".[dev]"; then
        say "installing the dependencies failed (no network? a proxy? see README,"
        say "Troubleshooting); run this again to retry."
        exit 1
    fi
    touch "$STAMP"
    say "set-up done"
fi
export PATH="$ROOT/.venv/bin:$PATH"
