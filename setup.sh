#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine and for CI.
#   ./setup.sh run   [dalal args...]  install what is missing, then start the desktop terminal
#   ./setup.sh test  [pytest args...] install what is missing, then run the whole test suite
# Idempotent: system packages are checked with dpkg, the venv is rebuilt only when
# pyproject.toml changes, so a second call starts in about a second.
set -euo pipefail
cd "$(dirname "$0")"

mode="${1:-run}"
shift || true

# Shared libraries the Qt 6 wheels load (offscreen and xcb), fonts, and a virtual display.
APT_PACKAGES=(
  libegl1 libgl1 libglx0 libglvnd0 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libfreetype6
  libdbus-1-3 libglib2.0-0 libx11-6 libx11-xcb1 libxcb1 libpng16-16 zlib1g fonts-dejavu-core
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 libxcb-render-util0
  libxcb-render0 libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-util1 libxcb-xfixes0 libxcb-xkb1
  libxcb-glx0 xvfb xauth
)
if [ "$mode" = test ]; then
  APT_PACKAGES+=(prometheus)  # promtool checks the alerting rules
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing system packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 14)))' 2>/dev/null; then
  echo "setup: Dalal Terminal needs Python 3.11 to 3.13 as python3 (or PYTHON=/path/to/python)" >&2
  exit 1
fi
if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
  echo "setup: installing python3-venv"
  "${sudo_cmd[@]}" apt-get install -y -qq python3-venv >/dev/null
fi
extras="[test,brokers,data,cluster,ml,onnx]"
stamp=".venv/.stamp-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: building .venv"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".${extras}"
  rm -f .venv/.stamp-*
  touch "$stamp"
  echo "setup: the command is .venv/bin/dalal; to type just \`dalal\`, run"
  echo "setup:   . .venv/bin/activate    (this shell)  or"
  echo "setup:   ln -s \"$PWD/.venv/bin/dalal\" ~/.local/bin/dalal    (every shell)"
fi

case "$mode" in
  run)
    desktop=no
    case "${1:-}" in ""|run|--profile|--config) desktop=yes ;; esac
    if [ "$desktop" = yes ] && [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] \
       && [ -z "${QT_QPA_PLATFORM:-}" ]; then
      # Nobody can answer an unlock dialog on a virtual display: run an in-memory session.
      echo "setup: no display found, starting the terminal on a virtual X display (xvfb-run)"
      echo "setup: in-memory session (DALAL_EPHEMERAL=1): nothing is saved"
      # Not xvfb-run: stopping this script by its PID must stop the terminal and Xvfb too.
      DALAL_EPHEMERAL=1 exec packaging/with-virtual-display.sh .venv/bin/dalal "$@"
    fi
    exec .venv/bin/dalal "$@"
    ;;
  test)
    export QT_QPA_PLATFORM=offscreen
    .venv/bin/ruff check .
    .venv/bin/mypy
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: $0 run|test [args...]" >&2
    exit 2
    ;;
esac
