// probe.c: checks that a preloaded libgoalloc.so is the process's allocator (its exports resolve,
// malloc returns heap addresses it knows, the heap checks out). Exit 0 when it is.
#include "rel_common.h"

int main(void) {
  if (!rel_goalloc_loaded()) { rel_say("probe: goalloc is not loaded\n"); return 1; }
  void *p = rel_malloc(100);
  size_t u = rel_usable(p);
  rel_free(p);
  if (u < 100) { rel_say("probe: malloc_usable_size = %zu\n", u); return 1; }
  if (!rel_check_heap()) { rel_say("probe: goalloc_check_heap() returned 0\n"); return 1; }
  rel_say("probe: goalloc loaded (malloc(100) at %p, usable %zu)\n", p, u);
  return 0;
}
