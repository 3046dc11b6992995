#!/usr/bin/env bash
# Installs GoAlloc the way jemalloc or mimalloc are installed:
#   PREFIX/bin/goalloc                 the command (built as goalloc-cli; it names itself goalloc)
#   PREFIX/lib/libgoalloc.so           the drop-in malloc (LD_PRELOAD, or link with -lgoalloc)
#   PREFIX/include/goalloc.h           its C interface beyond malloc (MemStats, heap checks, maps)
#   PREFIX/lib/pkgconfig/goalloc.pc    for `pkg-config --cflags --libs goalloc`
#   PREFIX/share/doc/goalloc/          README.md and LICENSE
# It builds the release products first: the library in .build/release, the command with the Swift
# runtime linked in (--static-swift-stdlib, in .build-install: a few minutes the first time), so
# the installed command needs no toolchain. With --from it installs what a build folder already
# holds instead (goalloc-cli and libgoalloc.so; that command uses its toolchain's runtime). The
# installed command finds the installed library (PREFIX/lib, beside its bin/); GOALLOC_LIB
# overrides that.
# Usage: Scripts/install.sh [--prefix DIR] [--from BUILD_DIR]     (default prefix: /usr/local)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=/usr/local
from=
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a folder" >&2; exit 64; }; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --from) [ $# -ge 2 ] || { echo "install.sh: --from needs a build folder" >&2; exit 64; }; from=$2; shift 2 ;;
    --from=*) from=${1#--from=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see install.sh --help)" >&2; exit 64 ;;
  esac
done
[ -n "$prefix" ] || { echo "install.sh: --prefix needs a folder" >&2; exit 64; }

if [ -z "$from" ]; then
  echo "install.sh: building libgoalloc.so (release) ..." >&2
  (cd "$root" && swift build -c release --product goalloc) >&2
  echo "install.sh: building the goalloc command (release, Swift runtime linked in) ..." >&2
  (cd "$root" && swift build -c release --product goalloc-cli --static-swift-stdlib --scratch-path .build-install) >&2
  lib=$root/.build/release/libgoalloc.so
  cli=$root/.build-install/release/goalloc-cli
else
  lib=$from/libgoalloc.so
  cli=$from/goalloc-cli
fi
for f in "$cli" "$lib"; do
  [ -f "$f" ] || { echo "install.sh: $f not found (build it, or pass --from BUILD_DIR)" >&2; exit 1; }
done

# The version, from the command itself (its one place).
version=$(GOALLOC_LIB="$lib" "$cli" --version | sed -n '1s/^goalloc //p')
[ -n "$version" ] || { echo "install.sh: $cli --version printed no version" >&2; exit 1; }

mkdir -p "$prefix/bin" "$prefix/lib/pkgconfig" "$prefix/include" "$prefix/share/doc/goalloc"
prefix=$(cd "$prefix" && pwd)
install -m 0755 "$cli" "$prefix/bin/goalloc"
install -m 0755 "$lib" "$prefix/lib/libgoalloc.so"
install -m 0644 "$root/include/goalloc.h" "$prefix/include/goalloc.h"
install -m 0644 "$root/README.md" "$root/LICENSE" "$prefix/share/doc/goalloc/"
cat > "$prefix/lib/pkgconfig/goalloc.pc" <<EOF
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: goalloc
Description: GoAlloc, Go's memory allocator rebuilt in Swift, as a drop-in malloc
Version: $version
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -lgoalloc
Cflags: -I\${includedir}
EOF

echo "install.sh: installed GoAlloc $version in $prefix:"
for f in bin/goalloc lib/libgoalloc.so include/goalloc.h lib/pkgconfig/goalloc.pc share/doc/goalloc; do
  echo "  $prefix/$f"
done
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "($prefix/bin is not on PATH)" ;; esac
case ":${PKG_CONFIG_PATH:-}:" in
  *":$prefix/lib/pkgconfig:"*) ;;
  *) [ "$prefix" = /usr ] || [ "$prefix" = /usr/local ] || echo "(pkg-config: PKG_CONFIG_PATH=$prefix/lib/pkgconfig)" ;;
esac
