#!/usr/bin/env bash
# Makes sure Debian's Chromium exists for the browser tests (driven by playwright-core; no browser download).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "chromium is missing: install it (apt-get install chromium) to run the browser tests" >&2
  exit 1
fi
