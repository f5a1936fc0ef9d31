#!/bin/bash
# pmm @VERSION@: turn off auto-start (stops pmm cleanly if auto-start was running it). Double-click to run.
cd "$(dirname "$0")" || exit 1
. "./support/common.sh"
[ "$(uname -s)" = Darwin ] || fail "Auto-start uses macOS launchd: it works on a Mac only."
plist="$HOME/Library/LaunchAgents/com.pmm.operator.plist"
/bin/launchctl bootout "gui/$(id -u)/com.pmm.operator" 2>/dev/null || true
rm -f "$plist"
say "Auto-start is off. (If pmm was running through it, it was stopped cleanly.)"
