#!/usr/bin/env bash
# Checks that Sources/GoAllocCoreEmbedded mirrors Sources/GoAllocCore: one symlink
# ../GoAllocCore/NAME.swift for every NAME.swift of the core, and nothing else (no dangling or
# extra link, no plain file). The Embedded build of libgoalloc.so compiles the mirror, so a core
# file missing there would leave the drop-in library without it. Exit status 1 on any mismatch.
# (Tests/GoAllocCoreTests/EmbeddedMirrorTests.swift checks the same under `swift test`.)
set -euo pipefail
cd "$(dirname "$0")/.."
core=Sources/GoAllocCore
mirror=Sources/GoAllocCoreEmbedded
bad=0
# The mirror is flat: a core file in a subfolder could not be linked under the same name.
for f in $(find "$core" -mindepth 2 -name '*.swift'); do
  echo "check-embedded-mirror: $f is in a subfolder; the mirror (and this check) expect a flat $core" >&2; bad=1
done
for f in "$core"/*.swift; do
  name=$(basename "$f")
  link=$mirror/$name
  if [ ! -L "$link" ]; then
    echo "check-embedded-mirror: $link is missing (ln -s ../GoAllocCore/$name $link)" >&2; bad=1
  elif [ "$(readlink "$link")" != "../GoAllocCore/$name" ]; then
    echo "check-embedded-mirror: $link points to $(readlink "$link"), not ../GoAllocCore/$name" >&2; bad=1
  fi
done
for link in "$mirror"/* "$mirror"/.[!.]*; do
  [ -e "$link" ] || [ -L "$link" ] || continue
  name=$(basename "$link")
  if [ ! -L "$link" ]; then
    echo "check-embedded-mirror: $link is not a symlink into $core" >&2; bad=1
  elif [ ! -e "$link" ]; then
    echo "check-embedded-mirror: $link is dangling (-> $(readlink "$link"))" >&2; bad=1
  elif [ ! -f "$core/$name" ] || [[ $name != *.swift ]]; then
    echo "check-embedded-mirror: $link has no counterpart $core/$name" >&2; bad=1
  fi
done
[ $bad = 0 ] && echo "check-embedded-mirror: $mirror mirrors all $(ls "$core"/*.swift | wc -l) files of $core"
exit $bad
