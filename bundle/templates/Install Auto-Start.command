#!/bin/bash
# pmm @VERSION@: optional. Start pmm (paper) by itself when you log in, and start it again if it is ever killed.
# Uses macOS launchd (~/Library/LaunchAgents/com.pmm.operator.plist). Undo with Uninstall Auto-Start.command.
cd "$(dirname "$0")" || exit 1
. "./support/common.sh"
[ "$(uname -s)" = Darwin ] || fail "Auto-start uses macOS launchd: it works on a Mac only."
strip_quarantine
check_platform
ensure_env
mkdir -p "$HERE/logs" "$HOME/Library/LaunchAgents" || fail "Could not create the logs folder."
shopt -u patsub_replacement 2>/dev/null || true  # bash 5.2+: "&" in a replacement means the match
dir="$HERE"
dir="${dir//&/&amp;}"
dir="${dir//</&lt;}"
dir="${dir//>/&gt;}"
plist="$HOME/Library/LaunchAgents/com.pmm.operator.plist"
template="$(cat "$SUPPORT/com.pmm.operator.plist")" || fail "support/com.pmm.operator.plist is missing."
/bin/launchctl bootout "gui/$(id -u)/com.pmm.operator" 2>/dev/null || true
printf '%s\n' "${template//__BUNDLE_DIR__/$dir}" > "$plist" || fail "Could not write $plist."
/bin/launchctl bootstrap "gui/$(id -u)" "$plist" || fail "launchd refused the job (see the line above)."
say "Auto-start is on: pmm (paper) starts now, again every time you log in, and again if it is killed."
say "Stop.command stops it until your next login. Uninstall Auto-Start.command turns auto-start off."
say "Its output goes to logs/launchd.log in this folder."
