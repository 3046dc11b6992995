// The Boehm-Demers-Weiser collector's allocation and collection API (bdwgc 8.2, gc.h), on
// GoAlloc's collector through the goalloc_gc_* calls: a program built against Debian's
// libgc.so.1 runs unchanged with LD_PRELOAD=libgoalloc.so (these names interpose libgc's), or
// with build/libgc.so.1 on LD_LIBRARY_PATH. Threads: bdwgc_threads.c; names that are not
// implemented abort with one line: bdwgc_unsupported.c.
//
// Mapping of bdwgc's contracts:
//   GC_malloc            goalloc_gc_malloc (zeroed, scanned)   of n + 1 bytes, as bdwgc adds one
//   GC_malloc_atomic     goalloc_gc_malloc_noscan              byte so that a pointer one past
//   GC_malloc_uncollectable  goalloc_gc_malloc_uncollectable   the end keeps the object
//   *_ignore_off_page    as without the hint (GoAlloc honours every interior pointer anyway)
//   out of memory        (*GC_oom_fn)(n), whose default returns NULL
//   GC_dont_gc / GC_disable  no collections (GOGC off, GC_gcollect does nothing) until enabled
//   finalizers, links    bdwgc_finalize.c; queued finalizers run (or the notifier is called)
//                        at the end of GC_gcollect and of the GC_malloc family, as bdwgc does
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "../../include/goalloc.h"

#define EXPORT __attribute__((visibility("default")))
typedef uintptr_t GC_word;
typedef void *(*GC_oom_func)(size_t);
typedef void (*GC_warn_proc)(char *, GC_word);
typedef int (*GC_stop_func)(void);

size_t goalloc_malloc_usable_size(void *);
void goalloc_bdwgc_finalizers_due(void);         // bdwgc_finalize.c
// goalloc_specials_bdwgc_counters()'s array (specials.c, this library): [0] bdwgc finalizers
// queued. Read here directly: every GC_malloc checks it.
extern __attribute__((visibility("hidden"))) uint32_t goalloc_bdwgc_counters_[2];

/// bdwgc runs queued finalizers (or calls its notifier) from its allocation calls; so do these.
static inline void *fin_check(void *p) {
  if (__builtin_expect(__atomic_load_n(&goalloc_bdwgc_counters_[0], __ATOMIC_RELAXED) != 0, 0))
    goalloc_bdwgc_finalizers_due();
  return p;
}

// ---- bdwgc's public variables (gc.h declares them; programs may read or set them) ----
static void *default_oom(size_t n) { (void)n; return NULL; }
EXPORT GC_word GC_gc_no;              // brought up to date by GC_gcollect and the GC_get_* calls
EXPORT int GC_dont_gc;                // != 0: no collections (a counter: GC_disable/GC_enable)
EXPORT int GC_all_interior_pointers = 1;  // GoAlloc always recognises interior pointers
EXPORT GC_oom_func GC_oom_fn = default_oom;
EXPORT int GC_java_finalization = 1;  // always in effect here (bdwgc_finalize.c)
EXPORT int GC_no_dls;                 // ignored: scanning libraries' data retains more, never less
EXPORT GC_word GC_non_gc_bytes;       // ignored (bdwgc's own bookkeeping figure)
EXPORT GC_word GC_free_space_divisor = 3;  // ignored: pacing is GOGC's (GOALLOC_GC)
EXPORT GC_word GC_max_retries;        // ignored: GoAlloc retries nothing before the OOM fn
EXPORT GC_word GC_time_limit = 50;    // ignored: no incremental mode

static void ignore_warn(char *msg, GC_word arg) { (void)msg; (void)arg; }
static void default_warn(char *msg, GC_word arg);
static GC_warn_proc warn_proc = default_warn;

static void default_warn(char *msg, GC_word arg) {
  // bdwgc's default prints the message (a printf format with one %lu-style argument) to stderr.
  // GoAlloc's collector issues none of bdwgc's warnings, so this is never called from here.
  (void)msg; (void)arg;
}

// GC_dont_gc, mirrored into GOGC: off while nonzero, the saved percent back when it drops to 0.
static int applied_dont_gc;   // the GC_dont_gc value last applied
static int saved_percent = 100;

static void sync_dont_gc(void) {
  int now = __atomic_load_n(&GC_dont_gc, __ATOMIC_RELAXED);
  int was = __atomic_load_n(&applied_dont_gc, __ATOMIC_RELAXED);
  if ((now != 0) == (was != 0)) { if (now != was) __atomic_store_n(&applied_dont_gc, now, __ATOMIC_RELAXED); return; }
  if (now != 0) saved_percent = goalloc_gc_set_percent(-1);
  else goalloc_gc_set_percent(saved_percent);
  __atomic_store_n(&applied_dont_gc, now, __ATOMIC_RELAXED);
}

static void refresh_gc_no(void) {
  struct goalloc_memstats m;
  goalloc_read_memstats(&m);
  __atomic_store_n(&GC_gc_no, (GC_word)m.num_gc, __ATOMIC_RELAXED);
}

static void *or_oom(void *p, size_t n) {
  if (p) return p;
  GC_oom_func f = __atomic_load_n(&GC_oom_fn, __ATOMIC_ACQUIRE);
  return f ? f(n) : NULL;
}

/// bdwgc adds one byte to every object (all interior pointers on) so that a pointer one past
/// the requested end still points into it; so does this. n + 1 overflowing is out of memory.
static size_t padded(size_t n) { return n == SIZE_MAX ? SIZE_MAX : n + 1; }

EXPORT void GC_init(void) { sync_dont_gc(); }
EXPORT int GC_is_init_called(void) { return 1; }

EXPORT void *GC_malloc(size_t n) { sync_dont_gc(); return fin_check(or_oom(goalloc_gc_malloc(padded(n)), n)); }
EXPORT void *GC_malloc_atomic(size_t n) { sync_dont_gc(); return fin_check(or_oom(goalloc_gc_malloc_noscan(padded(n)), n)); }
EXPORT void *GC_malloc_uncollectable(size_t n) {
  sync_dont_gc();
  return fin_check(or_oom(goalloc_gc_malloc_uncollectable(padded(n)), n));
}
EXPORT void *GC_malloc_ignore_off_page(size_t n) { return GC_malloc(n); }
EXPORT void *GC_malloc_atomic_ignore_off_page(size_t n) { return GC_malloc_atomic(n); }
EXPORT void *GC_malloc_atomic_uncollectable(size_t n) {
  // bdwgc: uncollectable and never scanned. GoAlloc's uncollectable objects are scanned: a
  // superset (it may retain more, never less).
  return GC_malloc_uncollectable(n);
}

EXPORT void *GC_realloc(void *p, size_t n) {
  sync_dont_gc();
  if (p == NULL) return GC_malloc(n);
  if (n == 0) { goalloc_gc_free(p); return NULL; }
  return or_oom(goalloc_gc_realloc(p, padded(n)), n);
}
EXPORT void GC_free(void *p) { if (p) goalloc_gc_free(p); }

EXPORT char *GC_strdup(const char *s) {
  if (s == NULL) return NULL;
  size_t n = strlen(s) + 1;
  char *d = GC_malloc_atomic(n);
  if (d) memcpy(d, s, n); else errno = ENOMEM;
  return d;
}
EXPORT char *GC_strndup(const char *s, size_t max) {
  size_t n = strnlen(s, max);
  char *d = GC_malloc_atomic(n + 1);
  if (d) { memcpy(d, s, n); d[n] = 0; } else errno = ENOMEM;
  return d;
}

EXPORT void *GC_base(void *p) { return goalloc_gc_base(p); }
/// The object's usable size (at least the size asked for, plus bdwgc's extra byte).
EXPORT size_t GC_size(const void *p) { return p ? goalloc_malloc_usable_size((void *)p) : 0; }

EXPORT void GC_gcollect(void) {
  sync_dont_gc();
  if (__atomic_load_n(&GC_dont_gc, __ATOMIC_RELAXED) == 0) goalloc_gc_collect();
  refresh_gc_no();
  goalloc_bdwgc_finalizers_due();
}
EXPORT void GC_gcollect_and_unmap(void) { GC_gcollect(); goalloc_release_free_memory(); }
/// The stop function is not polled: the collection always completes (1, as bdwgc on success).
EXPORT int GC_try_to_collect(GC_stop_func stop) { (void)stop; GC_gcollect(); return GC_dont_gc == 0; }
/// Stage 1 collects with the world stopped, never a little at a time: no work in progress (0).
EXPORT int GC_collect_a_little(void) { return 0; }
EXPORT void GC_disable(void) { __atomic_add_fetch(&GC_dont_gc, 1, __ATOMIC_RELAXED); sync_dont_gc(); }
EXPORT void GC_enable(void) { __atomic_sub_fetch(&GC_dont_gc, 1, __ATOMIC_RELAXED); sync_dont_gc(); }
EXPORT int GC_is_disabled(void) { return __atomic_load_n(&GC_dont_gc, __ATOMIC_RELAXED) != 0; }
/// bdwgc documents incremental mode as a request it may ignore; stage 1 ignores it.
EXPORT void GC_enable_incremental(void) {}

// ---- Collection events and timing ----
// GC_set_on_collection_event: the callback gets bdwgc's events (GC_EVENT_START, MARK_START,
// MARK_END, RECLAIM_START, RECLAIM_END, END, PRE/POST_STOP_WORLD, PRE/POST_START_WORLD; not the
// per-thread SUSPENDED ones) on the collecting thread. As bdwgc says, it must not allocate: from
// POST_STOP_WORLD to PRE_START_WORLD the world is stopped and the allocator's locks are held.
typedef void (*GC_on_collection_event_proc)(int);
extern void (*goalloc_gc_event_hook)(int);
EXPORT void GC_set_on_collection_event(GC_on_collection_event_proc f) {
  __atomic_store_n(&goalloc_gc_event_hook, f, __ATOMIC_RELEASE);
}
EXPORT GC_on_collection_event_proc GC_get_on_collection_event(void) {
  return __atomic_load_n(&goalloc_gc_event_hook, __ATOMIC_ACQUIRE);
}
/// Pause times are always measured (MemStats' PauseTotalNs); nothing to start.
EXPORT void GC_start_performance_measurement(void) {}
EXPORT unsigned long GC_get_full_gc_total_time(void) {
  struct goalloc_memstats m;
  goalloc_read_memstats(&m);
  return (unsigned long)(m.pause_total_ns / 1000000u);
}
EXPORT int GC_is_incremental_mode(void) { return 0; }

// ---- Figures (GoAlloc's MemStats; malloc and collected objects share the one heap) ----
static struct goalloc_memstats stats(void) {
  struct goalloc_memstats m;
  goalloc_read_memstats(&m);
  __atomic_store_n(&GC_gc_no, (GC_word)m.num_gc, __ATOMIC_RELAXED);
  return m;
}
/// Heap bytes held (mapped and not released).
EXPORT size_t GC_get_heap_size(void) {
  struct goalloc_memstats m = stats();
  return m.heap_sys > m.heap_released ? (size_t)(m.heap_sys - m.heap_released) : 0;
}
/// Held heap bytes not in live objects.
EXPORT size_t GC_get_free_bytes(void) {
  struct goalloc_memstats m = stats();
  uint64_t held = m.heap_sys > m.heap_released ? m.heap_sys - m.heap_released : 0;
  return held > m.heap_alloc ? (size_t)(held - m.heap_alloc) : 0;
}
EXPORT size_t GC_get_unmapped_bytes(void) { return (size_t)stats().heap_released; }
EXPORT size_t GC_get_memory_use(void) { return (size_t)stats().heap_alloc; }
EXPORT size_t GC_get_total_bytes(void) { return (size_t)stats().total_alloc; }
EXPORT GC_word GC_get_gc_no(void) { return (GC_word)stats().num_gc; }
/// The heap grows on demand from the page allocator; there is nothing to reserve ahead (1).
EXPORT int GC_expand_hp(size_t n) { (void)n; return 1; }

// ---- Callbacks and settings ----
EXPORT void GC_set_warn_proc(GC_warn_proc p) { if (p) __atomic_store_n(&warn_proc, p, __ATOMIC_RELEASE); }
EXPORT GC_warn_proc GC_get_warn_proc(void) { return __atomic_load_n(&warn_proc, __ATOMIC_ACQUIRE); }
EXPORT void GC_ignore_warn_proc(char *msg, GC_word arg) { ignore_warn(msg, arg); }
EXPORT void GC_set_oom_fn(GC_oom_func f) { if (f) __atomic_store_n(&GC_oom_fn, f, __ATOMIC_RELEASE); }
EXPORT GC_oom_func GC_get_oom_fn(void) { return __atomic_load_n(&GC_oom_fn, __ATOMIC_ACQUIRE); }
EXPORT void GC_set_all_interior_pointers(int v) { (void)v; /* always on here: retains more, never less */ }
EXPORT int GC_get_all_interior_pointers(void) { return 1; }
/// Every displacement is already valid (all interior pointers are recognised).
EXPORT void GC_register_displacement(size_t off) { (void)off; }
EXPORT void GC_set_no_dls(int v) { GC_no_dls = v; }
EXPORT int GC_get_no_dls(void) { return GC_no_dls; }
/// fork is safe during and between GoAlloc's collections, whatever this says.
EXPORT void GC_set_handle_fork(int v) { (void)v; }

// ---- Roots ----
EXPORT void GC_add_roots(void *lo, void *hi) { goalloc_gc_add_roots(lo, hi); }
EXPORT void GC_remove_roots(void *lo, void *hi) { goalloc_gc_remove_roots(lo, hi); }
EXPORT void GC_clear_roots(void) { goalloc_gc_remove_roots((void *)0, (void *)UINTPTR_MAX); }
/// Excluding a range only lessens retention; scanning it anyway keeps more, never less.
EXPORT void GC_exclude_static_roots(void *lo, void *hi) { (void)lo; (void)hi; }

// ---- Stores (bdwgc's incremental-mode hooks: no dirty bits here; a pointer store goes through
// GoAlloc's write barrier, which gcdirty=barrier relies on) ----
EXPORT void GC_end_stubborn_change(const void *p) { (void)p; }
EXPORT void GC_change_stubborn(const void *p) { (void)p; }
EXPORT void GC_ptr_store_and_dirty(void *p, const void *q) { goalloc_gc_write_barrier((void **)p, (void *)q); }
EXPORT void GC_noop1(GC_word x) { static volatile GC_word sink; sink = x; }

// ---- GC_DEBUG's names: the same objects, without bdwgc's debug headers and checks ----
EXPORT void *GC_debug_malloc(size_t n, const char *s, int i) { (void)s; (void)i; return GC_malloc(n); }
EXPORT void *GC_debug_malloc_atomic(size_t n, const char *s, int i) { (void)s; (void)i; return GC_malloc_atomic(n); }
EXPORT void *GC_debug_malloc_uncollectable(size_t n, const char *s, int i) {
  (void)s; (void)i; return GC_malloc_uncollectable(n);
}
EXPORT void *GC_debug_malloc_atomic_uncollectable(size_t n, const char *s, int i) {
  (void)s; (void)i; return GC_malloc_atomic_uncollectable(n);
}
EXPORT void *GC_debug_malloc_ignore_off_page(size_t n, const char *s, int i) {
  (void)s; (void)i; return GC_malloc(n);
}
EXPORT void *GC_debug_malloc_atomic_ignore_off_page(size_t n, const char *s, int i) {
  (void)s; (void)i; return GC_malloc_atomic(n);
}
EXPORT void *GC_debug_realloc(void *p, size_t n, const char *s, int i) { (void)s; (void)i; return GC_realloc(p, n); }
EXPORT void GC_debug_free(void *p) { GC_free(p); }
EXPORT char *GC_debug_strdup(const char *str, const char *s, int i) { (void)s; (void)i; return GC_strdup(str); }
EXPORT char *GC_debug_strndup(const char *str, size_t n, const char *s, int i) {
  (void)s; (void)i; return GC_strndup(str, n);
}
EXPORT void *GC_debug_malloc_replacement(size_t n) { return GC_malloc(n); }
EXPORT void *GC_debug_realloc_replacement(void *p, size_t n) { return GC_realloc(p, n); }
EXPORT void GC_debug_end_stubborn_change(const void *p) { (void)p; }
EXPORT void GC_debug_change_stubborn(const void *p) { (void)p; }
EXPORT void GC_debug_ptr_store_and_dirty(void *p, const void *q) { GC_ptr_store_and_dirty(p, q); }
