#!/usr/bin/env bash
# Installs what `goalloc bench` compares GoAlloc with, from Debian, when it is missing:
# jemalloc (libjemalloc2), tcmalloc (libtcmalloc-minimal4), mimalloc (libmimalloc2.0) and valgrind
# (for --callgrind), and the programs of the application rows: redis-server and redis-tools
# (redis-benchmark, redis-cli), python3, sqlite3 and gcc. With --go, also golang-go (Go's own
# allocator runs the pair and churn mirrors). glibc's malloc is the baseline and is always there.
# Safe to run again: installs only what is missing. Needs root (apt-get).
# Usage: Scripts/install-peers.sh [--go]
set -euo pipefail

packages=(libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 valgrind redis-server redis-tools python3 sqlite3 gcc)
for arg in "$@"; do
  case "$arg" in
    --go) packages+=(golang-go) ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-peers.sh: unknown option $arg (only --go)" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-peers.sh: all installed: ${packages[*]}"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-peers.sh: must run as root to install: ${missing[*]} (try: sudo $0 $*)" >&2
  exit 1
fi
echo "install-peers.sh: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-peers.sh: installed ${missing[*]}"
