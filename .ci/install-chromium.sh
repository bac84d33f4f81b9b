#!/bin/sh
# Install headless Chromium (Debian package `chromium`) for the browser tests of lib/report, if absent.
# Idempotent. Never fails the build: when it cannot install, it prints why and exits 0, and the browser
# tests then skip with a printed reason.
set -u
if [ -n "${CHROMIUM_PATH:-}" ] && [ -x "${CHROMIUM_PATH}" ]; then
  echo "install-chromium: using CHROMIUM_PATH=${CHROMIUM_PATH}"
  exit 0
fi
for p in /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -x "$p" ]; then
    echo "install-chromium: already installed: $p"
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: skipped: apt-get not available (not a Debian/Ubuntu system); browser tests will skip"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "install-chromium: skipped: not root and no passwordless sudo; browser tests will skip"
    exit 0
  fi
fi
echo "install-chromium: installing the Debian package chromium with apt-get"
if ! $SUDO apt-get update -q >/tmp/install-chromium.log 2>&1; then
  echo "install-chromium: skipped: apt-get update failed (offline?); see /tmp/install-chromium.log"
  exit 0
fi
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium \
  >>/tmp/install-chromium.log 2>&1; then
  echo "install-chromium: skipped: apt-get install chromium failed; see /tmp/install-chromium.log"
  exit 0
fi
if [ -x /usr/bin/chromium ]; then
  echo "install-chromium: installed $(/usr/bin/chromium --version 2>/dev/null)"
else
  echo "install-chromium: apt-get succeeded but /usr/bin/chromium is missing; browser tests will skip"
fi
exit 0
