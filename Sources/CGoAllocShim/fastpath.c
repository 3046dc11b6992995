// The words the allocator's fast paths read (goalloc_fastpath.h): the per-thread cache pointers,
// the global heap pointer, and the page -> span table of the heap window (its base and extent).
#include "goalloc_fastpath.h"

// The idle cache's current spans: allocCache 0, so nextFreeFast finds no slot.
static uint64_t goalloc_idle_span[8] __attribute__((aligned(64)));
void *goalloc_idle_cache[GOALLOC_IDLE_CACHE_WORDS] __attribute__((visibility("hidden"), aligned(64))) = {
  [0 ... GOALLOC_IDLE_CACHE_SPANS - 1] = (void *)goalloc_idle_span,
};
__thread void *goalloc_tls_cache __attribute__((tls_model("initial-exec"))) = (void *)goalloc_idle_cache;
__thread uint32_t goalloc_tls_state __attribute__((tls_model("initial-exec"))) = 0;
__thread void *goalloc_tls_slow_cache __attribute__((tls_model("initial-exec"))) = 0;
void *goalloc_global_heap_ = 0;
uint32_t goalloc_gc_barrier_on = 0;  // (exported: goalloc.h's goalloc_gc_store)

void **goalloc_span_table __attribute__((visibility("hidden"))) = 0;
uintptr_t goalloc_span_base __attribute__((visibility("hidden"))) = 0;
uintptr_t goalloc_span_window __attribute__((visibility("hidden"))) = 0;

void goalloc_span_window_publish(uintptr_t base, void **table, uintptr_t window) {
  __atomic_store_n(&goalloc_span_table, table, __ATOMIC_RELAXED);
  __atomic_store_n(&goalloc_span_base, base, __ATOMIC_RELAXED);
  __atomic_store_n(&goalloc_span_window, window, __ATOMIC_RELEASE);
}
