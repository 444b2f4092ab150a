#!/usr/bin/env bash
# One entry point for a fresh machine:
#   bash scripts/dev.sh app    install everything, then start the dashboard on the bundled sample data
#   bash scripts/dev.sh test   install everything (incl. Debian chromium for the browser test), run the tests
# Extra arguments after 'test' go to pytest; after 'app' to streamlit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
PY=.venv/bin/python

install_python() {
  [ -x "$PY" ] || python3 -m venv .venv
  if "$PY" -m pip install -q uv 2>/dev/null; then   # uv resolves from PyPI ~6x faster than pip
    VIRTUAL_ENV="$PWD/.venv" .venv/bin/uv pip install -q --compile-bytecode -e '.[test]'
  else
    "$PY" -m pip install -q -e '.[test]'
  fi
}

install_chromium() {
  # the real-browser test drives Debian's chromium through Playwright; never a downloaded browser
  if [ "${BROWSER_TESTS:-1}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      echo "== apt-get install chromium"
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
    exec .venv/bin/streamlit run app.py --browser.gatherUsageStats false "$@"
    ;;
  test)
    install_python
    install_chromium
    set +e
    .venv/bin/python -m pytest -n 2 "$@"
    rc=$?
    set -e
    [ "$rc" -eq 5 ] && echo "pytest collected no tests"
    exit "$rc"
    ;;
  *)
    echo "usage: bash scripts/dev.sh app|test [args]" >&2
    exit 2
    ;;
esac
