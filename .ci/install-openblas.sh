#!/bin/sh
# Install OpenBLAS (Debian package libopenblas0, pinned to bookworm's 0.3.21+ds-4 where apt offers it) for
# the wasm backend's native matmuls (lib/model/blas.ts), if absent. Idempotent. Never fails the build:
# without it the harness runs tfjs-wasm's own matmuls and says so in one line, and the native-path tests skip
# with a printed reason.
set -u
PIN="0.3.21+ds-4"
for p in /usr/lib/x86_64-linux-gnu/libopenblas.so.0 /usr/lib/aarch64-linux-gnu/libopenblas.so.0 \
  /usr/lib64/libopenblas.so.0 /usr/lib/libopenblas.so.0; do
  if [ -e "$p" ]; then
    echo "install-openblas: already installed: $p"
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-openblas: skipped: apt-get not available (not a Debian/Ubuntu system); matmuls stay on tfjs-wasm"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "install-openblas: skipped: not root and no passwordless sudo; matmuls stay on tfjs-wasm"
    exit 0
  fi
fi
if ! $SUDO apt-get update -q >/tmp/install-openblas.log 2>&1; then
  echo "install-openblas: skipped: apt-get update failed (offline?); see /tmp/install-openblas.log"
  exit 0
fi
pkgs="libopenblas0 libopenblas0-pthread"
if apt-cache madison libopenblas0-pthread 2>/dev/null | grep -q " $PIN "; then
  pkgs="libopenblas0=$PIN libopenblas0-pthread=$PIN"
else
  echo "install-openblas: $PIN not offered by apt here; installing the distribution's version"
fi
echo "install-openblas: apt-get install $pkgs"
# shellcheck disable=SC2086
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $pkgs \
  >>/tmp/install-openblas.log 2>&1; then
  echo "install-openblas: skipped: apt-get install failed; see /tmp/install-openblas.log"
  exit 0
fi
echo "install-openblas: installed $(dpkg-query -W -f='${Package} ${Version}' libopenblas0-pthread 2>/dev/null)"
exit 0
