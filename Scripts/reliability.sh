#!/usr/bin/env bash
# Scripts/reliability.sh: helpers around the reliability suite, whose checks live in
# Tests/PreloadTests/ReliabilityTests.swift (and BadFreeTests.swift); Tests/Reliability/README.md
# describes it.
#
#   Scripts/reliability.sh [quick]       the suite as `swift test` runs it (short fuzz run, no CPython)
#   Scripts/reliability.sh full          the release build of libgoalloc.so, libFuzzer and CPython's
#                                        regression tests too (what .ci/run runs)
#   Scripts/reliability.sh replay ARGS   the standalone fuzz driver under the library: crash files,
#                                        corpus folders, or `-random N SEED MAXLEN` as a test printed
#   Scripts/reliability.sh corpus        regenerates Tests/Reliability/corpus (make_corpus.py)
#
# GOALLOC_LIB=/path/to/libgoalloc.so tests another build; GOALLOC_FUZZ_RUNS and GOALLOC_FUZZ_SEED
# set the fuzz runs and seed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REL=$ROOT/Tests/Reliability
cd "$ROOT"

release_lib() {
  swift build -c release --product goalloc >&2
  echo "$ROOT/.build/release/libgoalloc.so"
}

cmd=${1:-quick}
shift || true
case $cmd in
  quick) exec swift test --filter ReliabilityTests "$@" ;;
  full)
    # CPython's regression tests: Debian's python3 keeps them in libpython3.X-testsuite.
    if ! python3 -c 'import test.libregrtest, test.test_dict' >/dev/null 2>&1 && [ -x /usr/bin/python3 ] &&
       [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      v=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "libpython$v-testsuite"; } >/dev/null 2>&1 || true
    fi
    GOALLOC_LIB=${GOALLOC_LIB:-$(release_lib)} GOALLOC_RELIABILITY=full exec swift test --filter ReliabilityTests "$@" ;;
  replay)
    lib=${GOALLOC_LIB:-$(release_lib)}
    mkdir -p .build/reliability
    cc -O2 -g -DFUZZ_STANDALONE "$REL/fuzz_ops.c" -o .build/reliability/fuzz_replay -lpthread -ldl
    LD_PRELOAD=$lib FUZZ_REQUIRE_GOALLOC=1 FUZZ_STATS=1 FUZZ_TRACE=${FUZZ_TRACE:-0} \
      exec .build/reliability/fuzz_replay "$@" ;;
  corpus) exec python3 "$REL/make_corpus.py" "$REL/corpus" ;;
  -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) echo "usage: $0 [quick|full|replay ARGS...|corpus]" >&2; exit 2 ;;
esac
