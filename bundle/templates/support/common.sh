# Shared by the .command files of the pmm operator bundle @VERSION@ (@PLATFORM@). Sourced by them, not run.
#
# Finds a Python that the bundled wheels fit (@PYTHONS_TEXT@), or installs Python 3.11 with the bundled uv (that
# step needs the internet, once), then creates the environment .venv inside this folder from support/wheels
# (offline). Nothing is written outside this folder, except by `uv python install` when it is needed (also
# inside support/python).

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)" || exit 1
SUPPORT="$HERE/support"
VENV="$HERE/.venv"
PY="$VENV/bin/python"
UV="$SUPPORT/uv"
BUNDLE_ID="@BUNDLE_ID@"
PYTHONS="@PYTHONS@"
BUNDLE_PLATFORM="@PLATFORM@"

export UV_NO_CONFIG=1 UV_NO_PROGRESS=1 UV_PYTHON_DOWNLOADS=never
export UV_CACHE_DIR="$SUPPORT/.uv-cache" UV_PYTHON_INSTALL_DIR="$SUPPORT/python"
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP VIRTUAL_ENV CONDA_PREFIX 2>/dev/null

say() { printf '%s\n' "$*"; }
fail() {
  printf '\n%s\n' "$*" >&2
  exit 1
}

strip_quarantine() {
  # A zip downloaded with a browser marks every file "from the internet"; macOS then refuses to run the
  # bundled programs. Once you have opened one of these scripts (right-click > Open), this clears the mark on
  # the rest of the folder.
  if [ "$(uname -s)" = Darwin ] && [ -x /usr/bin/xattr ]; then
    /usr/bin/xattr -dr com.apple.quarantine "$HERE" 2>/dev/null || true
  fi
}

check_platform() {
  local here
  case "$(uname -s)-$(uname -m)" in
    Darwin-arm64) here="macos-arm64" ;;
    Darwin-x86_64) here="macos-x86_64" ;;
    Linux-x86_64) here="linux-x86_64" ;;
    *) here="$(uname -s)-$(uname -m)" ;;
  esac
  if [ "$here" != "$BUNDLE_PLATFORM" ]; then
    if [ "$here" = macos-x86_64 ] && [ "$BUNDLE_PLATFORM" = macos-arm64 ]; then
      fail "This copy of pmm is for Macs with Apple silicon (M1 or newer), and this Mac has an Intel processor. Ask for the macos-x86_64 version."
    fi
    fail "This copy of pmm is for $BUNDLE_PLATFORM, and this computer is $here. Ask for the right version."
  fi
}

python_fits() {  # $1: a python executable; true if the bundled wheels are for its version
  local v want
  v="$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" || return 1
  for want in $PYTHONS; do
    [ "$v" = "$want" ] && return 0
  done
  return 1
}

find_python() {
  local v cand
  for v in $PYTHONS; do
    for cand in "$(command -v "python$v" 2>/dev/null)" \
                "/Library/Frameworks/Python.framework/Versions/$v/bin/python$v" \
                "/opt/homebrew/bin/python$v" "/usr/local/bin/python$v"; do
      if [ -n "$cand" ] && [ -x "$cand" ] && python_fits "$cand"; then
        printf '%s' "$cand"
        return 0
      fi
    done
  done
  cand="$(command -v python3 2>/dev/null)"
  # On a Mac, /usr/bin/python3 asks to install the developer tools when they are missing: never touch it.
  if [ -n "$cand" ] && ! { [ "$(uname -s)" = Darwin ] && [ "$cand" = /usr/bin/python3 ]; } && python_fits "$cand"; then
    printf '%s' "$cand"
    return 0
  fi
  if [ -d "$SUPPORT/python" ]; then  # one that uv installed here earlier
    cand="$(UV_MANAGED_PYTHON=1 "$UV" python find 3.11 2>/dev/null)"
    if [ -n "$cand" ] && [ -x "$cand" ] && python_fits "$cand"; then
      printf '%s' "$cand"
      return 0
    fi
  fi
  return 1
}

env_ok() {
  [ -x "$PY" ] && [ "$(cat "$VENV/.pmm-bundle-id" 2>/dev/null)" = "$BUNDLE_ID" ] \
    && "$PY" -c 'import pmm.supervisor' >/dev/null 2>&1
}

ensure_env() {
  env_ok && return 0
  [ -x "$UV" ] || fail "support/uv is missing or cannot run. Unzip the bundle again and keep its folder as it is."
  say "Setting up pmm in this folder (the first time only; about a minute; no internet needed)..."
  local py
  if ! py="$(find_python)"; then
    say "No Python @PYTHONS_TEXT@ on this computer: installing Python 3.11 into this folder."
    say "This needs the internet, this one time."
    UV_PYTHON_DOWNLOADS=automatic "$UV" python install --no-bin 3.11 \
      || fail "Python could not be installed (no internet?). Connect to the internet and try again, or install Python 3.11 from https://www.python.org/downloads/ and try again."
    py="$(find_python)" || fail "Python was installed but cannot be used. See READ ME FIRST.txt."
  fi
  rm -rf "$VENV"
  "$UV" venv --quiet --no-project --python "$py" "$VENV" \
    || fail "Could not create the environment in $VENV (is the disk full?)."
  "$UV" pip install --quiet --python "$PY" --no-index --find-links "$SUPPORT/wheels" pmm \
    || fail "Could not install pmm from support/wheels. Unzip the bundle again; it is for $BUNDLE_PLATFORM."
  printf '%s\n' "$BUNDLE_ID" > "$VENV/.pmm-bundle-id"
  say "Set up done (Python $("$PY" -c 'import sys; print(sys.version.split()[0])'))."
  say ""
}

explain_exit() {  # $1: the exit code of `pmm start`
  say ""
  case "$1" in
    0) say "pmm has stopped. Everything it did is recorded in the journals folder." ;;
    1) say "pmm stopped because of a problem (the lines above say which)."
       say "Double-click Status.command for details; READ ME FIRST.txt explains every reason." ;;
    2) say "pmm did not start: the line beginning with \"pmm:\" above says what to fix (often config.json)." ;;
    *) say "pmm ended with code $1. Double-click Status.command for details." ;;
  esac
}
