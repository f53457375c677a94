#!/usr/bin/env bash
# Set up everything the project needs on a fresh Debian machine, idempotently:
#   - the Arm GNU toolchain and newlib (Debian packages gcc-arm-none-eabi, libnewlib-arm-none-eabi)
#   - PostgreSQL's server binaries (Debian package postgresql) for the measurement store's tests
#   - a headless browser (Debian package chromium) for the test that opens the search's HTML report
#   - a virtual environment in .venv with the project installed (editable) and its test tools
# Re-running is cheap: each step is skipped when already done for the same inputs.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

need_apt=()
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need_apt+=(gcc-arm-none-eabi)
[ -e /usr/lib/arm-none-eabi/newlib/libc.a ] || [ -e /usr/lib/arm-none-eabi/lib/libc.a ] || need_apt+=(libnewlib-arm-none-eabi)
# the measurement store's PostgreSQL tests start a throw-away server (initdb, pg_ctl)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_apt+=(postgresql)
# the search's report test renders the HTML report in a headless browser and checks the plots were drawn
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# Reinstall when the packaging or the compiled extension's sources change.
stamp="$VENV/.mcu-nas-installed"
inputs=$( (cat pyproject.toml setup.py protos/*.proto measure_agent/vboard/native/* 2>/dev/null || true) | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$inputs" ]; then
  echo "setup: installing the project and its dependencies into $VENV (first time: several minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[test]"
  echo "$inputs" > "$stamp"
fi
