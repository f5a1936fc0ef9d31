#!/bin/bash
# pmm @VERSION@: show what pmm is doing, and save it as status-report.json. Double-click to run.
# Changes nothing: it only reads status.json, which pmm rewrites every second.
cd "$(dirname "$0")" || exit 1
. "./support/common.sh"
strip_quarantine
check_platform
ensure_env
"$PY" -P -m pmm.statuscmd --data "$HERE"
code=$?
"$PY" -P -m pmm.statuscmd --json --data "$HERE" > "$HERE/status-report.json"
say ""
case "$code" in
  0) say "pmm is running." ;;
  1) say "pmm is running but has not updated its status for a while (STALE): it may be stuck. See READ ME FIRST.txt." ;;
  3) if [ -f "$HERE/status.json" ]; then say "pmm is not running. The status above is from its last run."
     else say "pmm has not run from this folder yet."; fi ;;
esac
say "A copy of this status is saved as status-report.json in this folder (send it to whoever helps you, if asked)."
exit "$code"
