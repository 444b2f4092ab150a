#!/usr/bin/env bash
# One entry point for a fresh machine:
#   bash scripts/dev.sh app    install everything, then start the dashboard on the bundled sample data
#   bash scripts/dev.sh test   install everything (incl. Debian chromium for the browser test), run the tests
#   bash scripts/dev.sh lock   re-resolve uv.lock after editing pyproject.toml (and re-export the pip copy)
# Extra arguments after 'test' go to pytest; after 'app' to streamlit.
#
# The install is locked (uv.lock; scripts/requirements.lock.txt is the same lock for pip) and skipped when
# pyproject.toml, uv.lock and the Python are unchanged since the last install (stamp in .venv/). uv is used
# when it is on PATH or can be fetched from PyPI; otherwise pip installs the same pinned, hashed versions.
# Environment: PYTHON=/path/to/python3.11 picks the interpreter; AUDIT_METRICS_NO_UV=1 forces pip;
# AUDIT_METRICS_REINSTALL=1 ignores the stamp; BROWSER_TESTS=0 skips installing chromium.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 PIP_ROOT_USER_ACTION=ignore
PY=.venv/bin/python
STAMP=.venv/.audit-metrics-install
UV_VERSION=0.13.9
PIP_LOCK=scripts/requirements.lock.txt

say() { echo "== $(date +%T) $*" >&2; }

python_ok() {  # usage: python_ok EXE -> exit 0 when EXE is CPython >= 3.11
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

find_python() {
  local candidate seen=""
  for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3 python; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    if python_ok "$candidate"; then command -v "$candidate"; return 0; fi
    seen="$seen $candidate=$("$candidate" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo '?')"
  done
  {
    echo "error: audit_metrics needs Python 3.11 or newer; found:${seen:- no python3 on PATH}."
    echo "  Install it (Debian/Ubuntu: apt-get install python3.11 python3.11-venv; or pyenv/uv python install 3.11)"
    echo "  and run again, or point to one: PYTHON=/path/to/python3.11 bash scripts/dev.sh ${cmd:-app}"
  } >&2
  exit 3
}

install_stamp() {  # what an install depends on: the project's requirements, the lock and the Python
  local version
  version=$("$1" -c 'import platform, sys; print(sys.implementation.name, platform.python_version())')
  cat pyproject.toml uv.lock "$PIP_LOCK" | { sha256sum 2>/dev/null || shasum -a 256; } | cut -c1-64
  echo "$version"
}

find_uv() {
  [ "${AUDIT_METRICS_NO_UV:-0}" = 1 ] && return 1
  if command -v uv >/dev/null 2>&1; then command -v uv; return 0; fi
  # Kept outside .venv, which `uv sync` makes exactly match the lock.
  local home="${XDG_CACHE_HOME:-$HOME/.cache}/audit-metrics/uv-$UV_VERSION"
  if [ ! -x "$home/bin/uv" ]; then
    say "fetching uv $UV_VERSION from PyPI (one time, into $home)"
    "$1" -m pip install -q --target "$home" "uv==$UV_VERSION" >/dev/null 2>&1 || return 1
  fi
  [ -x "$home/bin/uv" ] && echo "$home/bin/uv"
}

install_python() {
  local syspy want uv
  if [ -x "$PY" ] && python_ok "$PY"; then syspy="$PY"; else syspy=$(find_python); fi
  want=$(install_stamp "$syspy")
  if [ "${AUDIT_METRICS_REINSTALL:-0}" != 1 ] && [ -x "$PY" ] && [ -f "$STAMP" ] \
      && [ "$(head -n 2 "$STAMP")" = "$want" ]; then
    return 0  # warm start: nothing changed since the last install
  fi
  if [ -x "$PY" ] && python_ok "$PY"; then syspy=$("$PY" -c 'import sys; print(sys._base_executable)'); fi
  say "installing the locked environment into .venv (Python $("$syspy" -c 'import platform; print(platform.python_version())'); first time about a minute)"
  if uv=$(find_uv "$syspy"); then
    say "uv sync --frozen (uv $("$uv" --version | cut -d' ' -f2))"
    UV_PROJECT_ENVIRONMENT=.venv "$uv" sync --frozen --extra test --compile-bytecode --python "$syspy"
    mode=uv
  else
    say "uv unavailable: pip install --require-hashes -r $PIP_LOCK (the same locked versions; slower)"
    [ -x "$PY" ] || "$syspy" -m venv .venv
    "$PY" -m pip install --progress-bar on --require-hashes --no-deps -r "$PIP_LOCK"
    "$PY" -m pip install -q --no-deps -e .
    mode=pip
  fi
  { echo "$want"; echo "installed by $mode at $(date -u +%FT%TZ)"; } >"$STAMP"
  say "installed ($mode)"
}

compile_project() {
  # the package is installed in place (editable): byte-compile it as pip does an installed package, so that a
  # start never compiles it from source (each CLI run did, ~0.1 s, where bytecode is not written:
  # PYTHONDONTWRITEBYTECODE); files changed since are recompiled, unchanged ones only checked
  "$PY" -m compileall -q audit_metrics app.py >/dev/null || true
}

install_chromium() {
  # the real-browser test drives Debian's chromium through Playwright; never a downloaded browser
  if [ "${BROWSER_TESTS:-1}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      say "apt-get install chromium"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    elif command -v sudo >/dev/null 2>&1; then
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      echo "chromium is not installed and this user cannot apt-get: the browser test will be skipped"
    fi
  fi
}

cmd="${1:-}"; shift || true
case "$cmd" in
  app)
    install_python
    compile_project
    say "starting the dashboard: streamlit run app.py $* (its code imported first: audit_metrics/ui/serve.py)"
    exec .venv/bin/python -m audit_metrics.ui.serve "$@"
    ;;
  test)
    install_python
    compile_project
    install_chromium
    set +e
    .venv/bin/python -m pytest -n 2 "$@"
    rc=$?
    set -e
    [ "$rc" -eq 5 ] && echo "pytest collected no tests"
    exit "$rc"
    ;;
  lock)
    syspy=$(find_python)
    uv=$(find_uv "$syspy") || { echo "error: 'lock' needs uv (pip install uv)" >&2; exit 2; }
    "$uv" lock "$@"
    "$uv" export --frozen --extra test --no-emit-project --quiet -o "$PIP_LOCK"
    say "uv.lock and $PIP_LOCK updated; commit both"
    ;;
  *)
    echo "usage: bash scripts/dev.sh app|test|lock [args]" >&2
    exit 2
    ;;
esac
