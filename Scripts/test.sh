#!/usr/bin/env bash
# The test command: installs what the tests run (sqlite3, git, a C/C++ compiler, python3,
# pkg-config, go for `go tool pprof`, libgc-dev and chase and mmv for the bdwgc tests) when it is missing, then runs `swift test` (unit tests,
# and real programs under libgoalloc.so). GOALLOC_EXAMPLES=1 also builds and runs
# Examples/HelloServer.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for tool in sqlite3:sqlite3 git:git gcc:gcc g++:g++ python3:python3 pkg-config:pkg-config go:golang-go \
            chase:chase mmv:mmv; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
[ -f /usr/include/gc.h ] || need+=(libgc-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "test.sh: please install: ${need[*]}" >&2
  fi
fi
exec swift test "$@"
