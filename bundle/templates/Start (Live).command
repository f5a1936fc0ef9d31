#!/bin/bash
# pmm @VERSION@: start in LIVE mode: REAL orders with REAL money. Double-click to run.
# Refuses unless the safety check `pmm preflight` passes on this computer first (location allowed, settings,
# and a short test with the exchange). Stop it with Stop.command, or Ctrl-C in this window.
cd "$(dirname "$0")" || exit 1
. "./support/common.sh"
strip_quarantine
check_platform
ensure_env
if ! "$PY" -P -m pmm.supervisor has-command live || ! "$PY" -P -m pmm.supervisor has-command preflight; then
  say "Live trading is not available in this version of pmm (@VERSION@)."
  say "It needs the live mode and the safety check that must pass before any real order (pmm preflight),"
  say "and this version does not have them yet. Nothing was started."
  say ""
  say "Start (Paper).command practises the same way without real money."
  exit 1
fi
say "Checking this computer before live trading (pmm preflight: location allowed, settings, a short test"
say "with the exchange). This takes a little while..."
say ""
if ! "$PY" -P -m pmm.cli preflight --config "$HERE/config.json"; then
  say ""
  say "The check did NOT pass, so live trading was NOT started. The lines above say why;"
  say "READ ME FIRST.txt explains them. Nothing was traded."
  exit 1
fi
say ""
say "Check passed. Starting pmm in LIVE mode: it places REAL orders with REAL money."
say "To stop it: double-click Stop.command, or press Ctrl-C in this window (it cancels all its orders first)."
say ""
"$PY" -P -m pmm.supervisor start live --data "$HERE" "$@"
code=$?
explain_exit "$code"
exit "$code"
