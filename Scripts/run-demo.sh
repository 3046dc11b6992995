#!/usr/bin/env bash
# The first thing to run: builds GoAlloc (release), then runs a real workload under glibc's
# malloc, GoAlloc and the peers that are installed (jemalloc, tcmalloc, mimalloc:
# Scripts/install-peers.sh), and prints one short comparison (median wall time and peak RSS of 3
# runs each), GoAlloc's own figures for the workload's process (MemStats, with units) and where the
# picture of its heap was written (out/demo/heapmap.svg). About a minute once built.
#
# The workload is CPython running Scripts/workload.py (dicts, lists, strings, JSON, 4 threads)
# with PYTHONMALLOC=malloc, so every Python object comes from malloc (some 4 million mallocs); the
# real interpreter is run, not a wrapper such as a pyenv shim. Any other command can be compared:
# Usage: Scripts/run-demo.sh [--runs N] [-- CMD [ARGS...]]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) [ $# -ge 2 ] || { echo "run-demo.sh: --runs needs a number" >&2; exit 64; }; runs=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-demo.sh: unknown argument $1 (usage: Scripts/run-demo.sh [--runs N] [-- CMD [ARGS...]])" >&2; exit 64 ;;
  esac
done
out=out/demo
mkdir -p "$out"

# One progress line: rewritten in place on a terminal, printed once per step otherwise.
tty=0; [ -t 2 ] && tty=1
progress() { if [ $tty = 1 ]; then printf '\r\033[K%s' "$1" >&2; else printf '%s\n' "$1" >&2; fi; }
done_progress() { if [ $tty = 1 ]; then printf '\r\033[K' >&2; fi; }

progress "run-demo: building GoAlloc (release; the first build takes a few minutes) ..."
log=$out/build.log
swift build -c release >"$log" 2>&1 < /dev/null &
build=$!
while kill -0 "$build" 2>/dev/null; do
  if [ $tty = 1 ]; then
    step=$(grep -o '^\[[0-9]*/[0-9]*\] [A-Za-z]* [^ ]*' "$log" 2>/dev/null | tail -n 1 || true)
    [ -n "$step" ] && progress "run-demo: building GoAlloc (release) $step"
  fi
  sleep 0.5
done
if ! wait "$build"; then
  done_progress
  echo "run-demo: the build failed; its output is in $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
done_progress

if [ $# -eq 0 ]; then
  if ! command -v python3 >/dev/null 2>&1; then
    echo "run-demo: python3 is needed for the default workload (apt-get install python3), or give a command: Scripts/run-demo.sh -- CMD ARGS" >&2
    exit 1
  fi
  # The interpreter itself, not a shim (pyenv's would run helper processes first).
  python=$(python3 -c 'import sys; print(sys.executable)')
  version=$("$python" -c 'import platform; print(platform.python_version())')
  set -- "$python" Scripts/workload.py
  export PYTHONMALLOC=malloc
  echo "GoAlloc demo: CPython $version runs Scripts/workload.py (dicts, lists, strings, JSON, 4 threads)"
  echo "with PYTHONMALLOC=malloc, so that every Python object comes from malloc ($python)."
  echo
fi
exec .build/release/goalloc-cli compare --runs "$runs" --heapmap "$out/heapmap.svg" -- "$@"
