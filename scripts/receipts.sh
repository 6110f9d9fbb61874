#!/usr/bin/env bash
# What receipts / tax invoices need from Debian: Pango and HarfBuzz (WeasyPrint draws the PDF
# with them), Thai and Latin fonts (fonts-thai-tlwg's Loma, fonts-noto-core's Noto Sans), and
# poppler-utils' pdftotext (the tests read the PDFs back). Installs only what is missing; safe
# to run again.
set -euo pipefail
PACKAGES=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-thai-tlwg fonts-noto-core poppler-utils)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "receipts: installing ${missing[*]} from Debian's packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "receipts: fonts and PDF tools present"
