#!/usr/bin/env bash
# Makes sure a redis-server binary exists (tests start their own instances on free ports).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  # Debian starts a system instance; tests use their own, so stop it to free the default port.
  (service redis-server stop || true) >/dev/null 2>&1
else
  echo "redis-server is missing: install it (apt-get install redis-server) to run the Redis tests" >&2
  exit 1
fi
