# Shared by the .ci/install-*.sh scripts (POSIX sh; sourced, not run): apt-get as root or through
# passwordless sudo, its output in one log file, and one line saying what is skipped and what that means.
# Before sourcing, a script sets NAME (its message prefix), LOG (the log file) and WITHOUT (what happens
# when it cannot install, e.g. "browser tests will skip").

say() { echo "$NAME: $*"; }

# Print why the install is skipped and what that means.
skip() { say "skipped: $*; $WITHOUT"; }

# 0 when apt-get can be run here (sets SUDO: empty as root, else "sudo -n"); else prints why and returns 1.
apt_ready() {
  if ! command -v apt-get >/dev/null 2>&1; then
    skip "apt-get not available (not a Debian/Ubuntu system)"
    return 1
  fi
  SUDO=""
  if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      SUDO="sudo -n"
    else
      skip "not root and no passwordless sudo"
      return 1
    fi
  fi
  return 0
}

# apt-get update, into a fresh $LOG.
apt_update() { $SUDO apt-get update -q >"$LOG" 2>&1; }

# apt-get install of the named packages (each may be pinned, NAME=VERSION), without recommends, into $LOG.
apt_install() {
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$@" >>"$LOG" 2>&1
}
