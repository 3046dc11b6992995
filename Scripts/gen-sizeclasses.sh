#!/usr/bin/env bash
# Regenerates Sources/CGoAllocShim/include/goalloc_sizeclasses.h with the stand-alone generator
# mksizeclasses (Go's size-class rules, see Sources/SizeClassGenerator/SizeClassGenerator.swift),
# i.e. runs
#   swift run mksizeclasses > Sources/CGoAllocShim/include/goalloc_sizeclasses.h
# Usage: Scripts/gen-sizeclasses.sh [extra `swift run` options, e.g. --scratch-path DIR]
#
# mksizeclasses depends on nothing else in the package (not on the C shim that includes this
# header), so it builds and runs even when the committed header is broken.
set -euo pipefail
cd "$(dirname "$0")/.."
out=Sources/CGoAllocShim/include/goalloc_sizeclasses.h
# Write to a temporary file first: a failed build must not leave a truncated header behind.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
swift run "$@" mksizeclasses > "$tmp/header.h"
cat "$tmp/header.h" > "$out"
echo "wrote $out" >&2
