#!/usr/bin/env bash
# Run a command on a private virtual X display (Xvfb) and stop both together.
#   packaging/with-virtual-display.sh COMMAND [ARGS...]
# `./setup.sh run` uses it on a machine with no display. Unlike xvfb-run, stopping this
# script by its PID (SIGTERM, SIGINT, SIGHUP) stops the command and the X server with it:
# nothing is left orphaned. The exit status is the command's.
set -uo pipefail

SCREEN="${DALAL_VIRTUAL_SCREEN:-1600x900x24}"
xvfb_pid=""
child_pid=""

cleanup() {
  if [ -n "$child_pid" ] && kill -0 "$child_pid" 2>/dev/null; then
    kill -TERM "$child_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$child_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$child_pid" 2>/dev/null || true
  fi
  if [ -n "$xvfb_pid" ] && kill -0 "$xvfb_pid" 2>/dev/null; then
    kill -TERM "$xvfb_pid" 2>/dev/null
    wait "$xvfb_pid" 2>/dev/null || true
  fi
}
on_signal() {
  trap - TERM INT HUP
  cleanup
  exit 143
}
trap on_signal TERM INT HUP
trap cleanup EXIT

# The first free display from :99 up (a lock file or socket means taken).
display=99
while [ -e "/tmp/.X${display}-lock" ] || [ -e "/tmp/.X11-unix/X${display}" ]; do
  display=$((display + 1))
  if [ "$display" -gt 199 ]; then echo "no free X display number" >&2; exit 1; fi
done
Xvfb ":${display}" -screen 0 "$SCREEN" -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
for _ in $(seq 100); do
  [ -e "/tmp/.X11-unix/X${display}" ] && break
  kill -0 "$xvfb_pid" 2>/dev/null || { echo "Xvfb did not start" >&2; exit 1; }
  sleep 0.05
done
export DISPLAY=":${display}"

"$@" &
child_pid=$!
# `wait` returns early when a trapped signal arrives, so the trap runs at once.
wait "$child_pid"
status=$?
child_pid=""
exit "$status"
