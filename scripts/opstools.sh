#!/usr/bin/env bash
# Debian's operations tools the tests and the docs use: pgBackRest (point-in-time recovery,
# scripts/pitr_setup.sh) and Prometheus with promtool (deploy/prometheus/: alert rules tested
# with `promtool test rules`; a test scrapes the app with a real Prometheus). Installs the
# packages that are missing; never starts a system service. Safe to run again.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v pgbackrest >/dev/null || missing+=(pgbackrest)
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  echo "opstools: installing ${missing[*]} from Debian's packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # policy-rc.d or no systemd: the package's own Prometheus service is not needed, only the binaries
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "opstools: $(pgbackrest version), $(promtool --version 2>&1 | head -n1)"
