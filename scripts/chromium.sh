#!/usr/bin/env bash
# Make sure Debian's Chromium is installed: the browser tests (tests/browser/) drive it through
# Playwright, which never downloads a browser of its own. Skips apt when /usr/bin/chromium (or
# a `chromium` on PATH) exists. Safe to run again.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null; then
  echo "chromium: $(chromium --version 2>/dev/null || /usr/bin/chromium --version)"
  exit 0
fi
echo "chromium: installing Debian's chromium (for the browser tests)"
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
echo "chromium: $(chromium --version)"
