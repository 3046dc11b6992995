// The words the allocator's fast paths read (goalloc_fastpath.h): the per-thread cache pointers,
// the global heap pointer, the page -> span table of the heap window and the arena address cursor.
#include "goalloc_fastpath.h"
#include "goalloc_os.h"

__thread void *goalloc_tls_cache __attribute__((tls_model("initial-exec"))) = 0;
__thread uint32_t goalloc_tls_state __attribute__((tls_model("initial-exec"))) = 0;
__thread void *goalloc_tls_slow_cache __attribute__((tls_model("initial-exec"))) = 0;
void *goalloc_global_heap_ = 0;

void **goalloc_span_table __attribute__((visibility("hidden"))) = 0;
uintptr_t goalloc_span_window __attribute__((visibility("hidden"))) = 0;

void **goalloc_span_table_init(void) {
  static int lock;
  while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE)) {}
  if (!goalloc_span_table) {
    void **t = goalloc_sys_map((GOALLOC_SPAN_WINDOW >> 13) * sizeof(void *));
    if (t) {
      goalloc_span_table = t;
      __atomic_store_n(&goalloc_span_window, GOALLOC_SPAN_WINDOW, __ATOMIC_RELEASE);
    }
  }
  __atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
  return goalloc_span_table;
}

static uintptr_t arena_hint = GOALLOC_WINDOW_BASE;
uintptr_t goalloc_arena_hint_take(size_t len) { return __atomic_fetch_add(&arena_hint, len, __ATOMIC_RELAXED); }
