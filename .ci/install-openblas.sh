#!/bin/sh
# Install OpenBLAS (Debian package libopenblas0, pinned to bookworm's 0.3.21+ds-4 where apt offers it) for
# the wasm backend's native matmuls (lib/model/blas.ts), if absent. Idempotent. Never fails the build:
# without it the harness runs tfjs-wasm's own matmuls and says so in one line, and the native-path tests skip
# with a printed reason.
set -u
NAME=install-openblas
LOG=/tmp/install-openblas.log
WITHOUT="matmuls stay on tfjs-wasm"
. "$(dirname "$0")/apt.sh"
PIN="0.3.21+ds-4"
for p in /usr/lib/x86_64-linux-gnu/libopenblas.so.0 /usr/lib/aarch64-linux-gnu/libopenblas.so.0 \
  /usr/lib64/libopenblas.so.0 /usr/lib/libopenblas.so.0; do
  if [ -e "$p" ]; then
    say "already installed: $p"
    exit 0
  fi
done
apt_ready || exit 0
apt_update || { skip "apt-get update failed (offline?); see $LOG"; exit 0; }
pkgs="libopenblas0 libopenblas0-pthread"
if apt-cache madison libopenblas0-pthread 2>/dev/null | grep -q " $PIN "; then
  pkgs="libopenblas0=$PIN libopenblas0-pthread=$PIN"
else
  say "$PIN not offered by apt here; installing the distribution's version"
fi
say "apt-get install $pkgs"
# shellcheck disable=SC2086
apt_install $pkgs || { skip "apt-get install failed; see $LOG"; exit 0; }
say "installed $(dpkg-query -W -f='${Package} ${Version}' libopenblas0-pthread 2>/dev/null)"
exit 0
