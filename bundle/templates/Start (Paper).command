#!/bin/bash
# pmm @VERSION@: start in PAPER mode: practice with simulated orders, no real money. Double-click to run.
# Runs until you stop it (Stop.command, or Ctrl-C in this window). Extra arguments go to `pmm start paper`,
# e.g. --duration 600 to stop by itself after 10 minutes.
cd "$(dirname "$0")" || exit 1
. "./support/common.sh"
strip_quarantine
check_platform
ensure_env
say "Starting pmm in PAPER mode (practice: simulated orders, no real money)."
say "It prints one line a second. To stop it: double-click Stop.command, or press Ctrl-C in this window."
say ""
if [ "${PMM_LAUNCHD:-}" = 1 ]; then  # started by Install Auto-Start: launchd talks to pmm directly
  exec "$PY" -P -m pmm.supervisor start paper --data "$HERE" "$@"
fi
"$PY" -P -m pmm.supervisor start paper --data "$HERE" "$@"
code=$?
explain_exit "$code"
[ "$code" = 0 ] && say "To start it again: double-click Start (Paper).command."
exit "$code"
