#!/usr/bin/env bash
# The benchmark suite of issue 5: builds GoAlloc (release), then runs `goalloc bench`, which
# compiles Benchmarks/workloads/*.c, runs each workload under glibc, goalloc, jemalloc, tcmalloc and
# mimalloc (and Go's allocator where `go` is installed), and the application rows (redis, python,
# sqlite, gcc) where their programs are installed, and writes out/bench/results.{md,svg,tsv}.
# Arguments go to `goalloc bench`: --runs N (default 5), --quick (CI smoke), --callgrind,
# --out DIR, --workload NAME, --allocator NAME. Peers: Scripts/install-peers.sh [--go].
# Usage: Scripts/bench.sh [--quick] [--callgrind] [--runs N] [--out DIR] ...
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product goalloc-cli >&2
swift build -c release --product goalloc >&2
exec .build/release/goalloc-cli bench "$@"
