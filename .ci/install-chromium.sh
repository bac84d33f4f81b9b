#!/bin/sh
# Install headless Chromium (Debian package `chromium`) for the browser tests of lib/report, if absent.
# Idempotent. Never fails the build: when it cannot install, it prints why and exits 0, and the browser
# tests then skip with a printed reason.
set -u
NAME=install-chromium
LOG=/tmp/install-chromium.log
WITHOUT="browser tests will skip"
. "$(dirname "$0")/apt.sh"
if [ -n "${CHROMIUM_PATH:-}" ] && [ -x "${CHROMIUM_PATH}" ]; then
  say "using CHROMIUM_PATH=${CHROMIUM_PATH}"
  exit 0
fi
for p in /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -x "$p" ]; then
    say "already installed: $p"
    exit 0
  fi
done
apt_ready || exit 0
say "installing the Debian package chromium with apt-get"
apt_update || { skip "apt-get update failed (offline?); see $LOG"; exit 0; }
apt_install chromium || { skip "apt-get install chromium failed; see $LOG"; exit 0; }
if [ -x /usr/bin/chromium ]; then
  say "installed $(/usr/bin/chromium --version 2>/dev/null)"
else
  say "apt-get succeeded but /usr/bin/chromium is missing; $WITHOUT"
fi
exit 0
