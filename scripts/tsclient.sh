#!/usr/bin/env bash
# Install the TypeScript client check's packages (tests/clients/ts/: openapi-typescript,
# openapi-fetch, typescript, pinned by its package-lock.json) with `npm ci`, once per checkout
# and again only when the lock file changes (a stamp in node_modules holds the lock's hash).
# Installs Debian's nodejs and npm first when npm is missing. Safe to run again.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

cd "$(dirname "$0")/../tests/clients/ts"
if ! command -v npm >/dev/null; then
  echo "tsclient: installing Debian's nodejs and npm"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
stamp="node_modules/.installed-$(md5sum < package-lock.json | cut -c1-12)"
if [ -e "$stamp" ]; then
  exit 0
fi
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
touch "$stamp"
echo "tsclient: node $(node --version), $(node_modules/.bin/tsc --version)"
