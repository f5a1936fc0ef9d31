#!/bin/bash
# pmm @VERSION@: stop pmm cleanly (it cancels all its orders and closes its journal first). Double-click to run.
# Waits up to 30 seconds (config supervisor.stop_timeout_s); if pmm does not stop by then, it is forced.
cd "$(dirname "$0")" || exit 1
. "./support/common.sh"
strip_quarantine
if [ ! -x "$PY" ]; then
  say "pmm has never been started from this folder: nothing to stop."
  exit 0
fi
ensure_env
"$PY" -P -m pmm.supervisor stop --data "$HERE"
code=$?
say ""
case "$code" in
  0) say "Done. To start again: double-click Start (Paper).command." ;;
  1) say "pmm did not stop by itself and had to be forced. Double-click Status.command to see the state;"
     say "if you trade live, check your open orders on Polymarket." ;;
  *) say "Could not stop pmm (see the line above)." ;;
esac
exit "$code"
