// The words the allocator's inlined fast paths read (fastpath.c): the per-thread cache pointers
// as initial-exec TLS (one `mov %fs:` on the fast path), the published process-wide heap, the
// page -> span table of the heap window, and a few always-inline compiler helpers.
#ifndef GOALLOC_FASTPATH_H
#define GOALLOC_FASTPATH_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: thread-local cache pointer

extern __thread void *goalloc_tls_cache __attribute__((tls_model("initial-exec")));
extern __thread uint32_t goalloc_tls_state __attribute__((tls_model("initial-exec")));

/// The idle cache: what a thread's cache word holds while it has no cache (from the start, and
/// after its exit flush), instead of NULL, so the malloc fast path needs no null test: its lists
/// are empty and every current span is `goalloc_idle_span` (no free slot), so every malloc
/// misses into the slow path, which sees "no cache" (goalloc_tls_get). It covers the cache's
/// fast-path words (span pointers and class groups: MCache's layout, checked by a test); the
/// words between them (FreeList's link mask, Pool's offset word) read 0.
#define GOALLOC_IDLE_CACHE_SPANS 137
#define GOALLOC_IDLE_CACHE_WORDS 1240
extern void *goalloc_idle_cache[GOALLOC_IDLE_CACHE_WORDS] __attribute__((visibility("hidden")));

/// The cache word as the fast paths read it: the thread's cache or the idle cache, never NULL.
static inline __attribute__((always_inline)) void *goalloc_tls_fast(void) { return goalloc_tls_cache; }
/// The thread's cache, or NULL while it has none.
static inline __attribute__((always_inline)) void *goalloc_tls_get(void) {
  void *c = goalloc_tls_cache;
  return c == (void *)goalloc_idle_cache ? 0 : c;
}
static inline __attribute__((always_inline)) void goalloc_tls_set(void *p) {
  goalloc_tls_cache = p ? p : (void *)goalloc_idle_cache;
}
/// 0: alive; 1: the thread-exit flush ran (allocate without keeping a cache).
static inline __attribute__((always_inline)) uint32_t goalloc_tls_state_get(void) { return goalloc_tls_state; }
static inline __attribute__((always_inline)) void goalloc_tls_state_set(uint32_t s) { goalloc_tls_state = s; }
/// In instrumented mode (tracing, heap profile) a thread's cache lives here instead, so every
/// allocation misses the fast path and takes the instrumented slow path.
extern __thread void *goalloc_tls_slow_cache __attribute__((tls_model("initial-exec")));
static inline __attribute__((always_inline)) void *goalloc_tls_slow_get(void) { return goalloc_tls_slow_cache; }
static inline __attribute__((always_inline)) void goalloc_tls_slow_set(void *p) { goalloc_tls_slow_cache = p; }

/// Nonzero while a concurrent mark runs (stop 1 to stop 2): the write barrier shades
/// (MGCBarrier). Exported: goalloc.h's inline goalloc_gc_store reads it.
static inline uint32_t goalloc_gc_barrier_load(void) {
  extern uint32_t goalloc_gc_barrier_on;
  return __atomic_load_n(&goalloc_gc_barrier_on, __ATOMIC_RELAXED);
}
static inline void goalloc_gc_barrier_store(uint32_t v) {
  extern uint32_t goalloc_gc_barrier_on;
  __atomic_store_n(&goalloc_gc_barrier_on, v, __ATOMIC_SEQ_CST);
}
/// The process-wide heap (an `MHeap` in mmap'd memory), published once.
static inline void *goalloc_global_heap_get(void) {
  extern void *goalloc_global_heap_;
  return __atomic_load_n(&goalloc_global_heap_, __ATOMIC_ACQUIRE);
}
static inline void goalloc_global_heap_set(void *h) {
  extern void *goalloc_global_heap_;
  __atomic_store_n(&goalloc_global_heap_, h, __ATOMIC_RELEASE);
}

// MARK: the page -> span table of the heap window

/// Go's heap hint: with GOALLOC_DEBUG=fixedheap=1 the window (and the heap) starts here; otherwise
/// at a random address chosen once per process (HeapAddress.swift).
#define GOALLOC_FIXED_HEAP_BASE 0x00c000000000ull
/// The window: the first 64 GiB above its base have a flat page -> span table (one load per lookup).
#define GOALLOC_SPAN_WINDOW (64ull << 30)
extern void **goalloc_span_table __attribute__((visibility("hidden")));
extern uintptr_t goalloc_span_base __attribute__((visibility("hidden")));
extern uintptr_t goalloc_span_window __attribute__((visibility("hidden")));
/// Publishes the window: the entry of the page holding `a` is table[(a - base) >> 13] for
/// a - base < window. `base` and `table` never change once set; `window` (bytes of the window whose
/// table pages are mapped) only grows. Until the first call every lookup misses.
void goalloc_span_window_publish(uintptr_t base, void **table, uintptr_t window);
/// Bytes of address space the table is mapped with (0 until it is): MemStats' SysReserved.
static inline size_t goalloc_span_table_bytes(void) {
  return (size_t)(__atomic_load_n(&goalloc_span_window, __ATOMIC_ACQUIRE) >> 13) * sizeof(void *);
}

/// A compiler-only barrier (no instruction). After a call it keeps the call from becoming a tail
/// call, so the caller needs a stack frame only on that path (the free fast path has none).
static inline __attribute__((always_inline)) void goalloc_no_tail_call(void) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

/// The span slot of the page holding `a` if `a` lies in the window (else NULL). The slot may hold NULL.
/// Plain loads, so they fold into the compare and subtract (atomic loads, even relaxed ones, would
/// cost two more instructions on the free fast path): the window may be published or grown by
/// another thread meanwhile (word-sized, aligned stores), and a lookup that sees the old window
/// just misses. (The table and base are published before any other thread can free.) CI's
/// ThreadSanitizer run suppresses this read (Tests/tsan-suppressions.txt).
static inline __attribute__((always_inline)) void *goalloc_span_lookup(uintptr_t a) {
  uintptr_t off = a - goalloc_span_base;
  if (__builtin_expect(off >= goalloc_span_window, 0)) return 0;
  return goalloc_span_table[off >> 13];
}

/// A plain load of a word that another thread may store to meanwhile (an aligned word, so never
/// torn), for the free fast path: unlike a relaxed atomic load it folds into the compare that
/// uses it. For words whose stale value is safe (MSpan.home, MSpan.handedEnd: see Free.swift).
/// CI's ThreadSanitizer run suppresses it (Tests/tsan-suppressions.txt).
static inline __attribute__((always_inline)) uintptr_t goalloc_load_racy(const uintptr_t *p) { return *p; }

// MARK: compiler helpers

/// A spin-wait hint to the CPU (x86 `pause`, arm64 `yield`).
static inline __attribute__((always_inline)) void goalloc_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}
/// A compiler barrier (atomic_signal_fence(seq_cst)): no instruction, but neither compiler moves
/// a memory access across it. The pools' fast paths (Pool.swift) rely on it with membarrier(2).
static inline __attribute__((always_inline)) void goalloc_signal_fence(void) {
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
}
static inline __attribute__((always_inline)) void goalloc_memset(void *p, int c, size_t n) { __builtin_memset(p, c, n); }
/// A hint that p will be read soon (the mark's next object: MGCMark.scanSpan).
static inline __attribute__((always_inline)) void goalloc_prefetch(uintptr_t p) { __builtin_prefetch((const void *)p); }
static inline __attribute__((always_inline)) void goalloc_memcpy(void *d, const void *s, size_t n) { __builtin_memcpy(d, s, n); }

#ifdef __cplusplus
}
#endif
#endif
