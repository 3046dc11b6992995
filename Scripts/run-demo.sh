#!/usr/bin/env bash
# The main job: build GoAlloc (release) and run a real program on it, printing MemStats at exit.
# Usage: Scripts/run-demo.sh [CMD ARGS...]   (default: python3 Scripts/workload.py)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release
if [ $# -eq 0 ]; then set -- python3 Scripts/workload.py; fi
exec .build/release/goalloc-cli run --stats -- "$@"
