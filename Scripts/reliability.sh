#!/usr/bin/env bash
# Scripts/reliability.sh: GoAlloc's reliability suite (issue 4). Shows, with tests that can fail,
# that libgoalloc.so keeps every live object intact under load, faults and bad input.
#
#   Scripts/reliability.sh fuzz [RUNS]   libFuzzer target Tests/Reliability/fuzz_ops.c under
#                                        LD_PRELOAD (default 20000 runs), then RUNS/10 runs with
#                                        bad frees (GOALLOC_DEBUG=badfree=warn); fails on any crash
#   Scripts/reliability.sh limits        out of address space (RLIMIT_AS), 20000 short-lived
#                                        threads (RSS bound), huge/overflowing sizes, bad frees
#   Scripts/reliability.sh sqlite-git    sqlite3 and git output unchanged under the preload
#   Scripts/reliability.sh cpython       CPython regression tests without, then with the preload
#   Scripts/reliability.sh all           all of the above (fuzz short), one summary line each
#   Scripts/reliability.sh replay FILE.. replays fuzz inputs (crash files, corpus) under the preload
#   Scripts/reliability.sh corpus        regenerates Tests/Reliability/corpus (make_corpus.py)
#
# The library: .build/release/libgoalloc.so (built with `swift build -c release --product goalloc`
# when missing, or always with RELIABILITY_BUILD=1), or GOALLOC_LIB=/path/to/libgoalloc.so. It is
# copied to $WORK first, so a rebuild by someone else mid-run cannot swap it under the tests.
#
# Environment: RELIABILITY_WORK (default .build/reliability: binaries, logs, crash files),
# RELIABILITY_SEED (libFuzzer seed; default: time based, printed), RELIABILITY_FUZZ_RUNS_ALL
# (runs for `all`, default 5000), RELIABILITY_STRICT=1 (known allocator bugs fail instead of
# XFAIL), RELIABILITY_PYTHON (the interpreter for `cpython`), RELIABILITY_PYTHONMALLOC (default
# "malloc": every Python object comes from malloc, so GoAlloc serves all of them).
#
# Fuzzing toolchain: libFuzzer is linked with `clang -fsanitize=fuzzer`. The Swift toolchain's
# clang (/opt/swift/usr/bin/clang, clang 21) ships libclang_rt.fuzzer and is used when present;
# otherwise any clang on PATH that can link it, else Debian's clang-14 + libclang-rt-14-dev
# (installed here with apt-get when running as root). libFuzzer and the target both allocate from
# the preloaded GoAlloc (libFuzzer's own vectors and strings included). Without any libFuzzer the
# standalone driver (fuzz_ops.c built with -DFUZZ_STANDALONE by cc) runs generated inputs instead.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REL=$ROOT/Tests/Reliability
WORK=${RELIABILITY_WORK:-$ROOT/.build/reliability}
CC=${CC:-cc}
CFLAGS="-O2 -g -Wall -Wextra -Wno-free-nonheap-object -I$REL"
mkdir -p "$WORK"

say() { echo "reliability: $*"; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
as_root() { [ "$(id -u)" = 0 ]; }
# quiet ERRFILE CMD...: runs CMD (its stderr to ERRFILE) in a subshell, whose own "Aborted" line
# when CMD dies of a signal goes nowhere; returns CMD's status.
quiet() { local e=$1; shift; ( "$@" 2>"$e"; exit $? ) 2>/dev/null; }
apt_install() {  # apt_install PKG...: only as root, quietly
  as_root || { say "please install: $*"; return 1; }
  say "installing $* (apt-get)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >/dev/null 2>&1
}

# MARK: the library

LIB=
ensure_lib() {
  [ -n "$LIB" ] && return 0
  local src
  if [ -n "${GOALLOC_LIB:-}" ]; then
    src=$GOALLOC_LIB
  else
    src=$ROOT/.build/release/libgoalloc.so
    if [ ! -f "$src" ] || [ "${RELIABILITY_BUILD:-0}" = 1 ]; then
      say "building libgoalloc.so (swift build -c release --product goalloc)"
      (cd "$ROOT" && swift build -c release --product goalloc) || { say "build failed"; return 1; }
    fi
  fi
  [ -f "$src" ] || { say "no library at $src"; return 1; }
  cp -f "$src" "$WORK/libgoalloc.so.new" && mv -f "$WORK/libgoalloc.so.new" "$WORK/libgoalloc.so"
  LIB=$WORK/libgoalloc.so
  $CC $CFLAGS "$REL/probe.c" -o "$WORK/probe" -ldl || return 1
  if ! LD_PRELOAD=$LIB "$WORK/probe"; then
    say "the preload does not work ($src)"
    LIB=
    return 1
  fi
  say "library: $src ($(stat -c '%y' "$src" | cut -d. -f1)), snapshot $LIB"
}

# Sums "goalloc: KEY N" lines of a log: prints "processes total max".
stat_sum() {  # stat_sum KEY FILE...
  local key=$1; shift
  cat "$@" 2>/dev/null | awk -v k="goalloc: $key" 'index($0, k " ") == 1 { n++; v = $3 + 0; s += v; if (v > m) m = v }
    END { printf "%d %d %d\n", n, s, m }'
}

# MARK: fuzz

FUZZ_CLANG=
find_fuzz_clang() {
  local c t=$WORK/fuzz/probe_fuzzer
  mkdir -p "$WORK/fuzz"
  printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$t.c"
  for c in ${FUZZ_CC:-} /opt/swift/usr/bin/clang clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
    command -v "$c" >/dev/null 2>&1 || continue
    if "$c" -fsanitize=fuzzer "$t.c" -o "$t" >/dev/null 2>&1; then FUZZ_CLANG=$(command -v "$c"); return 0; fi
  done
  # Debian: clang-14 and its runtime libraries (libclang_rt.fuzzer lives in libclang-rt-14-dev).
  if command -v apt-get >/dev/null 2>&1 && apt_install clang-14 libclang-rt-14-dev; then
    if clang-14 -fsanitize=fuzzer "$t.c" -o "$t" >/dev/null 2>&1; then FUZZ_CLANG=$(command -v clang-14); return 0; fi
  fi
  return 1
}

run_fuzz() {
  local runs=${1:-20000} t0 seed dir=$WORK/fuzz rc=0
  t0=$(date +%s.%N)
  ensure_lib || return 1
  mkdir -p "$dir"
  seed=${RELIABILITY_SEED:-$(( $(date +%s) % 100000 + 1 ))}
  local strict=${RELIABILITY_STRICT:-0}
  # The standalone driver: control runs under glibc (the harness itself must pass there).
  $CC $CFLAGS -DFUZZ_STANDALONE "$REL/fuzz_ops.c" -o "$dir/fuzz_replay" -lpthread -ldl || return 1
  if ! "$dir/fuzz_replay" "$REL/corpus" > "$dir/control.log" 2>&1 ||
     ! "$dir/fuzz_replay" -random 300 "$seed" 1024 >> "$dir/control.log" 2>&1; then
    say "fuzz: the harness fails under glibc (see $dir/control.log)"; tail -5 "$dir/control.log"; return 1
  fi
  say "fuzz: control under glibc: corpus ($(ls "$REL/corpus" | wc -l) seeds) + 300 random inputs pass"
  local mode
  if find_fuzz_clang; then
    mode=libfuzzer
    say "fuzz: libFuzzer from $FUZZ_CLANG ($("$FUZZ_CLANG" --version | head -1))"
    "$FUZZ_CLANG" -O2 -g -fsanitize=fuzzer "$REL/fuzz_ops.c" -o "$dir/fuzz_ops" -lpthread -ldl || return 1
  else
    mode=standalone
    say "fuzz: no clang with libFuzzer; running the standalone driver with generated inputs"
  fi
  local -a common=(env LD_PRELOAD="$LIB" FUZZ_REQUIRE_GOALLOC=1 FUZZ_STATS=1 FUZZ_STRICT="$strict")
  local bad_runs=$(( runs / 10 > 0 ? runs / 10 : 1 ))
  rm -rf "$dir/new-corpus" "$dir"/crash-* "$dir"/timeout-* "$dir"/oom-* "$dir"/leak-*
  mkdir -p "$dir/new-corpus"
  local -a fargs=(-max_len=1024 -timeout=60 -rss_limit_mb=4096 -print_final_stats=1
                  -artifact_prefix="$dir/")
  # 1. Clean operations: any report, failed check or signal is a failure.
  if [ $mode = libfuzzer ]; then
    timeout 1800 "${common[@]}" "$dir/fuzz_ops" -runs="$runs" -seed="$seed" "${fargs[@]}" \
      "$dir/new-corpus" "$REL/corpus" > "$dir/fuzz.log" 2>&1 || rc=1
  else
    timeout 1800 "${common[@]}" "$dir/fuzz_replay" "$REL/corpus" > "$dir/fuzz.log" 2>&1 &&
    timeout 1800 "${common[@]}" "$dir/fuzz_replay" -random "$runs" "$seed" 1024 >> "$dir/fuzz.log" 2>&1 || rc=1
  fi
  local totals units
  totals=$(grep -o 'fuzz_ops: totals: .*' "$dir/fuzz.log" | tail -1 | sed 's/fuzz_ops: totals: //')
  units=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$dir/fuzz.log" | awk '{print $2}')
  grep -h "KNOWN BUG" "$dir/fuzz.log" | sed 's/^/reliability: fuzz: /' | sort -u
  if [ $rc != 0 ] || grep -q "FAILURE\|deadly signal\|ERROR: libFuzzer" "$dir/fuzz.log"; then
    rc=1
    say "fuzz: FAILED (seed $seed); log $dir/fuzz.log"
    grep -E "FAILURE|goalloc: |ERROR|Test unit written|SUMMARY" "$dir/fuzz.log" | grep -v "goalloc: [A-Z][A-Za-z]* [0-9]" | head -20
    ls "$dir"/crash-* "$dir"/timeout-* 2>/dev/null | sed 's/^/reliability: fuzz: reproduce with: Scripts\/reliability.sh replay /'
  else
    say "fuzz: $runs runs (seed $seed, executed ${units:-$runs}): $totals"
  fi
  # 2. Bad input: interior, wild and double frees must be reported and ignored (warn mode).
  local bad_rc=0
  if [ $mode = libfuzzer ]; then
    timeout 1800 "${common[@]}" FUZZ_BADFREE=1 GOALLOC_DEBUG=badfree=warn "$dir/fuzz_ops" \
      -runs="$bad_runs" -seed="$((seed + 1))" "${fargs[@]}" "$dir/new-corpus" "$REL/corpus" \
      > "$dir/fuzz-bad.log" 2>&1 || bad_rc=1
  else
    timeout 1800 "${common[@]}" FUZZ_BADFREE=1 GOALLOC_DEBUG=badfree=warn "$dir/fuzz_replay" \
      -random "$bad_runs" "$((seed + 1))" 1024 > "$dir/fuzz-bad.log" 2>&1 || bad_rc=1
  fi
  local reported free_reports free_calls kinds
  reported=$(grep -cE '^goalloc: (free|realloc|malloc_usable_size)\(\): (double free|invalid pointer)' "$dir/fuzz-bad.log")
  # Every bad free() (interior, global, stack, double) must give exactly one report. (realloc and
  # malloc_usable_size of interior pointers are not counted: large blocks are a known gap.)
  free_reports=$(grep -cE '^goalloc: free\(\): (double free|invalid pointer)' "$dir/fuzz-bad.log")
  kinds=$(grep -o 'fuzz_ops: bad calls: .*' "$dir/fuzz-bad.log" | tail -1 | sed 's/fuzz_ops: bad calls: //')
  free_calls=$(echo "$kinds" | awk -F', ' '{ n = 0; for (i = 1; i <= 4; i++) n += $i + 0; print n }')
  local btotals
  btotals=$(grep -o 'fuzz_ops: totals: .*' "$dir/fuzz-bad.log" | tail -1 | sed 's/fuzz_ops: totals: //')
  say "fuzz: bad input: calls: $kinds; free() reports: $free_reports"
  if [ $bad_rc != 0 ] || grep -q "FAILURE\|deadly signal\|ERROR: libFuzzer" "$dir/fuzz-bad.log" || [ "$reported" -eq 0 ] ||
     [ "$free_reports" != "$free_calls" ]; then
    rc=1
    say "fuzz: bad-input run FAILED (seed $((seed + 1)), $reported reports, $free_reports free() reports for $free_calls bad frees); log $dir/fuzz-bad.log"
    grep -E "FAILURE|ERROR|Test unit written|SUMMARY" "$dir/fuzz-bad.log" | head -10
  else
    say "fuzz: bad input: $bad_runs runs: $btotals; $reported bad calls reported and ignored"
  fi
  FUZZ_SUMMARY="$runs runs: $(echo "$totals" | cut -d, -f2-3 | sed 's/^ //'); bad input: $bad_runs runs, $reported reports; $(elapsed "$t0")s"
  return $rc
}

# MARK: limits

run_limits() {
  local t0 dir=$WORK/limits rc=0 f
  t0=$(date +%s.%N)
  ensure_lib || return 1
  mkdir -p "$dir"
  for f in limits_oom limits_threads limits_huge limits_badfree; do
    $CC $CFLAGS "$REL/$f.c" -o "$dir/$f" -ldl -lpthread || return 1
  done
  local parts=()
  # (a) Out of address space: control under glibc, then GoAlloc at three headrooms.
  if ! "$dir/limits_oom" 256 > "$dir/oom-glibc.log" 2>&1; then
    say "limits: oom control under glibc failed"; cat "$dir/oom-glibc.log"; rc=1
  fi
  local h ok=1
  for h in 256 64 8; do
    if LD_PRELOAD=$LIB "$dir/limits_oom" $h > "$dir/oom-$h.log" 2>&1; then
      say "limits: (a) RLIMIT_AS = VmSize + $h MiB: $(grep -E 'at the limit|round 2' "$dir/oom-$h.log" | tr -s ' ' | paste -sd';')"
    else
      ok=0; rc=1; say "limits: (a) RLIMIT_AS headroom $h MiB FAILED (status $?)"; sed 's/^/    /' "$dir/oom-$h.log" | tail -15
    fi
  done
  [ $ok = 1 ] && parts+=("ENOMEM at 3 RLIMIT_AS limits ($(grep -o 'round 1: [0-9]*' "$dir/oom-256.log" | awk '{print $3}') x 1 MiB at +256 MiB)")
  # (b) 20000 short-lived threads: RSS bounded, thread caches given back.
  if ! "$dir/limits_threads" 20000 50 64 > "$dir/threads-glibc.log" 2>&1; then
    say "limits: threads control under glibc failed"; cat "$dir/threads-glibc.log"; rc=1
  fi
  if GOALLOC_DEBUG=stats=1 LD_PRELOAD=$LIB "$dir/limits_threads" 20000 50 64 > "$dir/threads.log" 2>&1; then
    local caches
    caches=$(awk '$1 == "goalloc:" && $2 == "ThreadCaches" { print $3 }' "$dir/threads.log" | tail -1)
    if [ -n "$caches" ] && [ "$caches" -le 2 ]; then
      say "limits: (b) $(grep -E 'threads in' "$dir/threads.log" | sed 's/limits_threads: //')"
      say "limits: (b) $(grep -E 'VmRSS' "$dir/threads.log" | sed 's/^ *//'); ThreadCaches at exit: $caches"
      say "limits: (b) glibc: $(grep -E 'VmRSS' "$dir/threads-glibc.log" | sed 's/^ *//; s/;.*//')"
      parts+=("20000 threads: RSS +$(grep -o 'growth [0-9]* KiB' "$dir/threads.log" | awk '{printf "%.1f MiB", $2 / 1024}'), $caches cache at exit")
    else
      rc=1; say "limits: (b) FAILED: ThreadCaches at exit = '${caches}' (thread caches not given back)"
    fi
  else
    rc=1; say "limits: (b) threads FAILED"; sed 's/^/    /' "$dir/threads.log" | grep -v "^    goalloc: " | tail -15
  fi
  # (c) Huge and overflowing sizes.
  "$dir/limits_huge" > "$dir/huge-glibc.log" 2>&1 || { say "limits: huge control under glibc failed"; grep FAIL "$dir/huge-glibc.log"; rc=1; }
  if RELIABILITY_STRICT=${RELIABILITY_STRICT:-0} LD_PRELOAD=$LIB "$dir/limits_huge" > "$dir/huge.log" 2>&1; then
    say "limits: (c) $(tail -1 "$dir/huge.log" | sed 's/limits_huge: //')"
    grep -E "^  (XFAIL|XPASS)" "$dir/huge.log" | sed 's/^ */reliability: limits: (c) /'
    parts+=("huge sizes: $(tail -1 "$dir/huge.log" | sed 's/limits_huge: //; s/: OK$//')")
  else
    rc=1; say "limits: (c) huge sizes FAILED"; grep -E "FAIL|limits_huge" "$dir/huge.log" | head -20
  fi
  # (d) Bad frees: the default aborts after one line; badfree=warn reports, ignores, goes on.
  local m out st lines okd=1
  local re='^goalloc: (free|realloc|malloc_usable_size)\(\): (double free detected|invalid pointer \((interior pointer|not allocated by goalloc)\)): 0x[0-9a-f]+$'
  local modes=(double-small double-large interior-small interior-large wild-stack wild-global wild-mmap
               realloc-interior usable-interior-small double-remote interior-tail wild-window
               double-large-first realloc-interior-large usable-interior-large)
  for m in "${modes[@]}"; do
    quiet "$dir/bad-$m.err" env LD_PRELOAD="$LIB" "$dir/limits_badfree" $m > "$dir/bad-$m.out"; st=$?
    lines=$(grep -c . "$dir/bad-$m.err")
    if [ $st != 134 ] || [ "$lines" != 1 ] || ! grep -qE "$re" "$dir/bad-$m.err"; then
      okd=0; rc=1; say "limits: (d) $m (default): status $st, stderr: $(head -3 "$dir/bad-$m.err")"
    fi
    GOALLOC_DEBUG=badfree=warn,stats=1 LD_PRELOAD=$LIB "$dir/limits_badfree" $m > "$dir/bad-$m-warn.out" 2> "$dir/bad-$m-warn.err"; st=$?
    if [ $st != 0 ] || [ "$(stat_sum BadFrees "$dir/bad-$m-warn.err" | awk '{print $2}')" != 1 ]; then
      okd=0; rc=1; say "limits: (d) $m (badfree=warn): status $st; $(cat "$dir/bad-$m-warn.out") $(grep -E 'BadFrees|free' "$dir/bad-$m-warn.err" | head -3)"
    fi
  done
  GOALLOC_DEBUG=badfree=warn,stats=1 LD_PRELOAD=$LIB "$dir/limits_badfree" all > "$dir/bad-all.out" 2> "$dir/bad-all.err"; st=$?
  local nbad
  nbad=$(stat_sum BadFrees "$dir/bad-all.err" | awk '{print $2}')
  if [ $st != 0 ] || [ "$nbad" != ${#modes[@]} ]; then okd=0; rc=1; say "limits: (d) all bad calls in one process: status $st, BadFrees $nbad (expected ${#modes[@]})"; fi
  if [ $okd = 1 ]; then
    say "limits: (d) ${#modes[@]} kinds of bad free/realloc/malloc_usable_size: one line + SIGABRT by default; reported, ignored, heap intact with badfree=warn ($nbad in one process)"
    parts+=("${#modes[@]} bad-call kinds caught")
  fi
  LIMITS_SUMMARY="$(printf '%s; ' "${parts[@]}")$(elapsed "$t0")s"
  return $rc
}

# MARK: sqlite and git

run_sqlite_git() {
  local t0 dir=$WORK/sqlite-git rc=0
  t0=$(date +%s.%N)
  ensure_lib || return 1
  local need=()
  command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
  command -v git >/dev/null 2>&1 || need+=(git)
  [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}" || return 1
  rm -rf "$dir"; mkdir -p "$dir"
  # sqlite3: the workload file, then 4000 generated single-row statements, then checks.
  {
    cat "$REL/sqlite_workload.sql"
    awk 'BEGIN {
      print "CREATE TABLE log (id INTEGER PRIMARY KEY, at INTEGER, msg TEXT, data BLOB);";
      for (i = 1; i <= 4000; i++) {
        if (i % 10 == 0) printf "UPDATE log SET msg = msg || \x27+\x27 WHERE id = %d;\n", i / 2;
        else if (i % 17 == 0) printf "DELETE FROM log WHERE id = %d;\n", i - 5;
        else if (i % 250 == 0) printf "SELECT count(*), sum(length(msg)), sum(length(data)) FROM log;\n";
        else printf "INSERT INTO log (id, at, msg, data) VALUES (%d, %d, \x27message %d %s\x27, zeroblob(%d));\n", i, i * 37 % 1000, i, substr("abcdefghijklmnopqrstuvwxyz", 1 + i % 26), i % 700;
      }
      print "SELECT count(*), sum(at), sum(length(msg)), sum(length(data)) FROM log;";
      print "SELECT msg FROM log ORDER BY length(msg) DESC, id LIMIT 5;";
      print "PRAGMA integrity_check;";
    }'
  } > "$dir/workload.sql"
  local nstmt
  nstmt=$(grep -c ';' "$dir/workload.sql")
  sqlite3 "$dir/without.db" < "$dir/workload.sql" > "$dir/sqlite-without.out" 2>&1 || { rc=1; say "sqlite-git: sqlite3 without the preload failed"; }
  GOALLOC_DEBUG=stats=1 LD_PRELOAD=$LIB sqlite3 "$dir/with.db" < "$dir/workload.sql" > "$dir/sqlite-with.out" 2> "$dir/sqlite-with.err" || { rc=1; say "sqlite-git: sqlite3 with the preload failed"; }
  local sm
  sm=$(stat_sum Mallocs "$dir/sqlite-with.err")
  if diff -q "$dir/sqlite-without.out" "$dir/sqlite-with.out" >/dev/null && [ "$(echo "$sm" | awk '{print $2}')" -gt 0 ] &&
     [ "$(sqlite3 "$dir/with.db" 'PRAGMA integrity_check;')" = ok ]; then
    say "sqlite-git: sqlite3 $(sqlite3 --version | cut -d' ' -f1): $nstmt statements, $(wc -l < "$dir/sqlite-with.out") output lines identical; GoAlloc Mallocs $(echo "$sm" | awk '{print $2}')"
  else
    rc=1; say "sqlite-git: sqlite3 output differs or GoAlloc not used (Mallocs: $sm)"
    diff "$dir/sqlite-without.out" "$dir/sqlite-with.out" | head -20
  fi
  # git: the same session twice; every process of the session (git, its helpers, sh, sed, awk)
  # runs on GoAlloc in the second.
  bash "$REL/git_workflow.sh" "$dir/git-without" > "$dir/git-without.out" 2>&1 || { rc=1; say "sqlite-git: git session without the preload failed"; tail -5 "$dir/git-without.out"; }
  GOALLOC_DEBUG=stats=1 LD_PRELOAD=$LIB bash "$REL/git_workflow.sh" "$dir/git-with" > "$dir/git-with.raw" 2> "$dir/git-with.err" || { rc=1; say "sqlite-git: git session with the preload failed"; tail -5 "$dir/git-with.raw"; }
  grep -v '^goalloc: ' "$dir/git-with.raw" > "$dir/git-with.out"
  if grep -q "cannot be preloaded" "$dir/git-with.err" "$dir/git-with.raw" "$dir/sqlite-with.err"; then rc=1; say "sqlite-git: ld.so could not preload $LIB"; fi
  local gm
  gm=$(stat_sum Mallocs "$dir/git-with.err" "$dir/git-with.raw")
  if diff -q "$dir/git-without.out" "$dir/git-with.out" >/dev/null && [ "$(echo "$gm" | awk '{print $2}')" -gt 0 ]; then
    say "sqlite-git: git $(git --version | cut -d' ' -f3): session of $(wc -l < "$dir/git-with.out") output lines identical; $(echo "$gm" | awk '{print $1}') process exits with GoAlloc stats (largest Mallocs $(echo "$gm" | awk '{print $3}'))"
  else
    rc=1; say "sqlite-git: git output differs or GoAlloc not used (processes/Mallocs: $gm)"
    diff "$dir/git-without.out" "$dir/git-with.out" | head -20
  fi
  SQLITE_GIT_SUMMARY="sqlite3 $nstmt statements + git session identical, $(elapsed "$t0")s"
  return $rc
}

# MARK: cpython

CPY_TESTS="test_dict test_list test_set test_unicode test_str test_json test_re test_threading
  test_thread test_gc test_pickle test_bytes test_string test_tuple test_deque test_heapq
  test_collections test_itertools test_array test_struct test_zlib test_bz2 test_lzma
  test_memoryview test_weakref test_sort test_functools test_hashlib test_mmap test_ctypes
  test_sqlite3 test_decimal test_ordered_dict test_marshal test_long test_csv test_xml_etree
  test_copy test_enum test_ast test_sys test_capi test_tracemalloc test_queue test_os test_codecs
  test_unicodedata test_email"
# Fails here without the preload as well: the sandbox's site-packages .pth imports threading.
CPY_IGNORE=${RELIABILITY_CPYTHON_IGNORE:-test_import_from_another_thread}

find_python() {  # prints the real interpreter that has the regression test package
  local c exe
  for c in ${RELIABILITY_PYTHON:-} python3 /usr/bin/python3; do
    command -v "$c" >/dev/null 2>&1 || continue
    exe=$("$c" -c 'import os, sys; print(os.path.realpath(sys.executable))' 2>/dev/null) || continue
    if "$exe" -c 'import test.libregrtest, test.support, test.test_dict' >/dev/null 2>&1; then echo "$exe"; return 0; fi
  done
  # Debian's python3 without its test suite: install libpython3.X-testsuite.
  if [ -x /usr/bin/python3 ] && command -v apt-get >/dev/null 2>&1; then
    local v
    v=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    apt_install "libpython$v-testsuite" >&2 || return 1
    exe=$(/usr/bin/python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
    "$exe" -c 'import test.libregrtest, test.test_dict' >/dev/null 2>&1 && { echo "$exe"; return 0; }
  fi
  return 1
}

run_cpython() {
  local t0 dir=$WORK/cpython rc=0 py
  t0=$(date +%s.%N)
  ensure_lib || return 1
  py=$(find_python) || { say "cpython: no python3 with the regression tests (test package)"; return 1; }
  rm -rf "$dir"; mkdir -p "$dir"
  local testdir tests=() t
  testdir=$("$py" -c 'import os, test; print(os.path.dirname(test.__file__))')
  for t in $CPY_TESTS; do
    [ -e "$testdir/$t.py" ] || [ -d "$testdir/$t" ] && tests+=("$t")
  done
  local pm=${RELIABILITY_PYTHONMALLOC:-malloc}
  say "cpython: $py ($("$py" -V 2>&1)), PYTHONMALLOC=$pm, ${#tests[@]} test files, -j2"
  local -a args=(-m test -j2 --timeout 600 -i "$CPY_IGNORE")
  # 1. without the preload; 2. with it. (No GOALLOC_DEBUG=stats=1 here: every process would print
  # its statistics on stderr, and the many tests that check a child's stderr is empty would fail.)
  ( cd "$dir" && unset GOALLOC_DEBUG && PYTHONMALLOC=$pm "$py" "${args[@]}" --junit-xml "$dir/without.xml" "${tests[@]}" ) > "$dir/without.log" 2>&1
  local rc_without=$?
  ( cd "$dir" && unset GOALLOC_DEBUG && PYTHONMALLOC=$pm LD_PRELOAD=$LIB "$py" "${args[@]}" --junit-xml "$dir/with.xml" "${tests[@]}" ) > "$dir/with.log" 2>&1
  local rc_with=$?
  # 3. The proof that the preload is in effect: tests that never look at a child's stderr, with
  # GOALLOC_DEBUG=stats=1 (each regrtest process prints its Mallocs at exit).
  local proof=(test_dict test_list test_set test_unicode test_pickle test_re)
  ( cd "$dir" && PYTHONMALLOC=$pm GOALLOC_DEBUG=stats=1 LD_PRELOAD=$LIB "$py" "${args[@]}" "${proof[@]}" ) > "$dir/with-stats.log" 2>&1
  local rc_stats=$?
  local pm_stats
  pm_stats=$(stat_sum Mallocs "$dir/with-stats.log")
  # Compare test case by test case (JUnit XML), with the interpreter running without the preload.
  "$py" - "$dir/without.xml" "$dir/with.xml" > "$dir/compare.txt" 2>&1 <<'EOF'
import sys, xml.etree.ElementTree as ET
def load(path):
    res = {}
    for tc in ET.parse(path).getroot().iter("testcase"):
        key = "%s.%s" % (tc.get("classname", ""), tc.get("name", ""))
        tags = {child.tag for child in tc}
        res[key] = "fail" if tags & {"failure", "error"} else "skip" if "skipped" in tags else "pass"
    return res
a, b = load(sys.argv[1]), load(sys.argv[2])
def count(r, s): return sum(1 for v in r.values() if v == s)
for name, r in (("without", a), ("with", b)):
    print("%s: %d cases, %d passed, %d failed, %d skipped" % (name, len(r), count(r, "pass"), count(r, "fail"), count(r, "skip")))
# A case that passes without the preload must pass with it; one that is skipped instead (a skip
# decided at run time, e.g. test_os's "couldn't allocate two consecutive fds" when fds are busy)
# is listed but does not fail the comparison.
lost = sorted(k for k, v in a.items() if v == "pass" and b.get(k) not in ("pass", "skip"))
skipped = sorted(k for k, v in a.items() if v == "pass" and b.get(k) == "skip")
both = sorted(k for k, v in a.items() if v == "fail" and b.get(k) == "fail")
extra = sorted(k for k, v in b.items() if v == "fail" and a.get(k) != "fail")
for k in lost: print("LOST (passes without, not with the preload): %s -> %s" % (k, b.get(k, "missing")))
for k in skipped: print("note: skipped with the preload only: %s" % k)
for k in extra: print("NEW FAILURE with the preload: %s" % k)
for k in both: print("fails in both (environment): %s" % k)
sys.exit(1 if lost or extra else 0)
EOF
  local cmp_rc=$?
  sed 's/^/reliability: cpython: /' "$dir/compare.txt" | head -30
  say "cpython: without: $(grep -E '^Total tests:|^Result:' "$dir/without.log" | paste -sd' ')"
  say "cpython: with:    $(grep -E '^Total tests:|^Result:' "$dir/with.log" | paste -sd' ')"
  say "cpython: stats run (${proof[*]}, GOALLOC_DEBUG=stats=1): $(grep -E '^Result:' "$dir/with-stats.log"); $(echo "$pm_stats" | awk '{print $1}') processes on GoAlloc, Mallocs total $(echo "$pm_stats" | awk '{print $2}'), largest $(echo "$pm_stats" | awk '{print $3}')"
  [ $rc_stats = 0 ] || { rc=1; say "cpython: the stats run failed (see $dir/with-stats.log)"; }
  if [ $cmp_rc != 0 ]; then rc=1; fi
  if [ $rc_with != 0 ] && [ $rc_without = 0 ]; then rc=1; say "cpython: the run with the preload failed"; fi
  [ "$(echo "$pm_stats" | awk '{print $2}')" -gt 0 ] || { rc=1; say "cpython: no GoAlloc statistics: the preload was not in effect"; }
  if grep -q "cannot be preloaded" "$dir/with.log" "$dir/with-stats.log"; then rc=1; say "cpython: ld.so could not preload $LIB"; fi
  if [ $rc_without != 0 ] && [ $rc_with != 0 ] && [ $cmp_rc = 0 ]; then
    say "cpython: both runs report failures, the same ones (environment); see $dir/compare.txt"
  fi
  CPYTHON_SUMMARY="${#tests[@]} files; $(sed -n 1,2p "$dir/compare.txt" | paste -sd';' | sed 's/;/; /'); Mallocs $(echo "$pm_stats" | awk '{print $2}') in the stats run; $(elapsed "$t0")s"
  return $rc
}

# MARK: driver

results=()
passed=0
failed=0
part() {  # part NAME FUNCTION ARGS...: runs one part, records its summary line
  local name=$1 fn=$2 t0 status
  shift 2
  t0=$(date +%s.%N)
  say "=== $name"
  if "$fn" "$@"; then status=PASS; passed=$((passed + 1)); else status=FAIL; failed=$((failed + 1)); fi
  local summary
  case $name in
    fuzz) summary=${FUZZ_SUMMARY:-} ;;
    limits) summary=${LIMITS_SUMMARY:-} ;;
    sqlite-git) summary=${SQLITE_GIT_SUMMARY:-} ;;
    cpython) summary=${CPYTHON_SUMMARY:-} ;;
  esac
  results+=("$(printf '%-4s %-10s %6ss  %s' "$status" "$name" "$(elapsed "$t0")" "$summary")")
}

finish() {
  echo
  say "summary:"
  local r
  for r in "${results[@]}"; do echo "  $r"; done
  echo "$passed passed, $failed failed"
  [ $failed = 0 ]
}

cmd=${1:-all}
shift || true
case $cmd in
  fuzz) part fuzz run_fuzz "${1:-20000}"; finish ;;
  limits) part limits run_limits; finish ;;
  sqlite-git) part sqlite-git run_sqlite_git; finish ;;
  cpython) part cpython run_cpython; finish ;;
  all)
    part fuzz run_fuzz "${RELIABILITY_FUZZ_RUNS_ALL:-5000}"
    part limits run_limits
    part sqlite-git run_sqlite_git
    part cpython run_cpython
    finish ;;
  replay)
    ensure_lib || exit 1
    mkdir -p "$WORK/fuzz"
    $CC $CFLAGS -DFUZZ_STANDALONE "$REL/fuzz_ops.c" -o "$WORK/fuzz/fuzz_replay" -lpthread -ldl || exit 1
    LD_PRELOAD=$LIB FUZZ_REQUIRE_GOALLOC=1 FUZZ_TRACE=${FUZZ_TRACE:-0} FUZZ_STRICT=${RELIABILITY_STRICT:-0} \
      "$WORK/fuzz/fuzz_replay" "$@" ;;
  corpus) python3 "$REL/make_corpus.py" "$REL/corpus" ;;
  -h|--help|help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) echo "usage: $0 {fuzz [RUNS]|limits|sqlite-git|cpython|all|replay FILE...|corpus}" >&2; exit 2 ;;
esac
