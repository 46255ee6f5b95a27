#!/usr/bin/env bash
# The README's set-up commands with other pnpm majors than the one CI runs the tests with: a fresh clone of
# HEAD installs with --frozen-lockfile and runs `pnpm demo` under each (through npx: nothing global changes).
# pnpm 11 needs Node 22.13+, so on Node 20 it is skipped with that reason.
set -euo pipefail
cd "$(dirname "$0")/.."
node_major=$(node -p 'process.versions.node.split(".")[0]')
for major in "$@"; do
  if [ "$major" = 11 ] && [ "$node_major" -lt 22 ]; then
    echo "pnpm 11: skipped (it needs Node 22.13+; this is Node $(node -v))"
    continue
  fi
  dir=$(mktemp -d)
  git clone --quiet --no-hardlinks . "$dir/repo"
  (
    cd "$dir/repo"
    npx --yes "pnpm@$major" install --frozen-lockfile --reporter=silent
    npx --yes "pnpm@$major" demo > "$dir/demo.txt"
    tail -n 1 "$dir/demo.txt"
  )
  echo "pnpm $major ($(cd "$dir/repo" && npx --yes "pnpm@$major" --version)): install --frozen-lockfile and demo pass"
  rm -rf "$dir"
done
