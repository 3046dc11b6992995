// The allocator's settings from the environment (env.c): GOALLOC_DEBUG and GOALLOC_MEMLIMIT,
// checked once per process (one warning line on stderr per bad setting, which keeps its default).
// getenv does not allocate; before libc has set `environ` up (early in the dynamic loader) every
// reader answers "not available yet".
#ifndef GOALLOC_ENV_H
#define GOALLOC_ENV_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// GOALLOC_DEBUG=stats=1,badfree=warn,check=1,scavenger=0,fixedheap=1 (and key=value settings
// read with goalloc_debug_value); env.c's `settings` table lists every key.
enum {
  GOALLOC_DEBUG_STATS = 1u << 0,
  GOALLOC_DEBUG_BADFREE_WARN = 1u << 1,
  GOALLOC_DEBUG_CHECK = 1u << 2,
  GOALLOC_DEBUG_NO_SCAVENGER = 1u << 3,
  GOALLOC_DEBUG_FIXED_HEAP = 1u << 4,  // the heap at Go's 0x00c000000000, not at a random base
  GOALLOC_SECURE_MODE = 1u << 5,  /* GOALLOC_SECURE=1 (not a GOALLOC_DEBUG key) */
  GOALLOC_DEBUG_GCTRACE = 1u << 6,     // one line per collection on stderr
  GOALLOC_DEBUG_GC_OBJQUEUE = 1u << 7, // mark small objects through an object queue, not Green Tea's span queue
  GOALLOC_DEBUG_CLEANUP_CHECK = 1u << 8,  // GC mode: report objects kept alive by cleanup arguments
  GOALLOC_DEBUG_GC_CONC = 1u << 9,        // GC mode: concurrent marking (MGCConcurrent.swift)
  GOALLOC_DEBUG_GC_CHECKMARK = 1u << 10,  // GC mode: re-mark with the world stopped after each mark and compare
  GOALLOC_DEBUG_GC_CONC_BROKEN = 1u << 11,  // GC mode, tests only: mark termination skips the dirty-page rescan
  GOALLOC_DEBUG_GC_PRECLEAN = 1u << 12,   // GC mode, experimental: concurrent preclean of written pages
  GOALLOC_DEBUG_PARSED = 1u << 31,
};
/// Parses GOALLOC_DEBUG (when the environment is readable). Returns flags with PARSED set once the
/// environment was seen; 0 while it is not available yet (early in the dynamic loader).
uint32_t goalloc_debug_flags_from_env(void);
/// GOALLOC_DEBUG=fixedheap=1, read from /proc/self/environ while `environ` is not set up yet (the
/// heap's placement is decided at its creation, which may be the first malloc of the process).
int goalloc_debug_fixed_heap(void);
/// 1 when this code is built with ThreadSanitizer (whose shadow memory the random heap range
/// would overlap), else 0.
int goalloc_built_with_tsan(void);
/// Copies the value of `key` in GOALLOC_DEBUG (e.g. allocfreetrace=FILE; the last one given)
/// into buf. 1 if present and not refused by the check (a refused setting reads as absent).
int goalloc_debug_value(const char *key, char *buf, size_t len);
/// GOALLOC_DEBUG=gcsweep=lazy|eager|ondemand: 0, 1 or 2 (lazy, the default, when unset or bad).
int goalloc_debug_gcsweep(void);
/// GOALLOC_DEBUG=gcdirty=auto|uffd|softdirty|full|barrier|mprotect: 0..5 (auto when unset or bad): how the
/// concurrent mark finds the pages written while it ran (goalloc_dirty.h; barrier: none are
/// tracked, the program stores pointers into collected objects through goalloc_gc_write_barrier).
int goalloc_debug_gcdirty(void);
/// One warning line: the file of setting `key` (e.g. heapmap) could not be opened (errno `err`).
void goalloc_warn_output(const char *key, const char *path, int err);
/// GOALLOC_MEMLIMIT: bytes, or with a B/KiB/MiB/GiB/TiB (or K/M/G/T, KB/MB/GB/TB) unit. 0 = none
/// (also when it is malformed: the check warns once).
uint64_t goalloc_memlimit_from_env(void);

#ifdef __cplusplus
}
#endif
#endif
