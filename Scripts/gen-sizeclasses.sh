#!/usr/bin/env bash
# Regenerates Sources/CGoAllocShim/include/goalloc_sizeclasses.h from GoAlloc's SizeClassTable
# (Go's size-class rules, see Sources/GoAlloc/SizeClassGenerator.swift), i.e. runs
#   swift run goalloc-cli sizeclasses --emit-c > Sources/CGoAllocShim/include/goalloc_sizeclasses.h
# Usage: Scripts/gen-sizeclasses.sh [extra `swift run` options, e.g. --scratch-path DIR]
#
# goalloc-cli depends (through GoAlloc and GoAllocCore) on the C shim, which includes this header.
# If the header is broken, goalloc-cli does not build, so the script then compiles the generator
# file on its own (it imports nothing) and uses that instead.
set -euo pipefail
cd "$(dirname "$0")/.."
out=Sources/CGoAllocShim/include/goalloc_sizeclasses.h
# Write to a temporary file first: a failed build must not leave a truncated header behind.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! swift run "$@" goalloc-cli sizeclasses --emit-c > "$tmp/header.h"; then
  echo "gen-sizeclasses: goalloc-cli did not build; compiling the generator on its own" >&2
  printf 'print(SizeClassTable.go.renderCHeader(), terminator: "")\n' > "$tmp/main.swift"
  swiftc -module-name GenSizeClasses -o "$tmp/gen" Sources/GoAlloc/SizeClassGenerator.swift "$tmp/main.swift"
  "$tmp/gen" > "$tmp/header.h"
fi
cat "$tmp/header.h" > "$out"
echo "wrote $out" >&2
