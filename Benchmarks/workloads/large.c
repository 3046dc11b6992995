/* Large objects: a working set of SLOTS blocks of 64 KiB .. 4 MiB (log-uniform); OPS times a random
 * block is checked and freed and a new one allocated, with one byte written per 4 KiB page (so the
 * memory is really faulted in) plus its last byte. Stresses the page heap: span reuse, coalescing,
 * and whether memory goes back to the OS too eagerly (page-fault storms) or not at all (RSS).
 * Usage: large [ops] [slots]. Prints microseconds per replace. */
#include "common.h"

typedef struct { unsigned char *p; size_t size; uint32_t gen; } slot_t;

static inline unsigned char mark(long i, uint32_t gen, size_t off) { return (unsigned char)(i * 31 + gen * 7 + off / 4096 + 1); }

static void touch(slot_t *s, long i) {
  for (size_t off = 0; off < s->size; off += 4096) s->p[off] = mark(i, s->gen, off);
  s->p[s->size - 1] = mark(i, s->gen, s->size - 1);
}

static int intact(const slot_t *s, long i) {
  for (size_t off = 0; off < s->size; off += 4096) if (s->p[off] != mark(i, s->gen, off)) return 0;
  return s->p[s->size - 1] == mark(i, s->gen, s->size - 1);
}

int main(int argc, char **argv) {
  long ops = arg_long(argc, argv, 1, 20000);
  long nslots = arg_long(argc, argv, 2, 16);
  rng_t r;
  rng_seed(&r, 99);
  slot_t *slots = calloc((size_t)nslots, sizeof *slots);
  if (!slots) fail("calloc failed");
  for (long i = 0; i < nslots; i++) {
    slots[i].size = rng_size(&r, 64 << 10, 4 << 20);
    slots[i].p = xmalloc(slots[i].size);
    touch(&slots[i], i);
  }
  double t0 = now_s();
  for (long k = 0; k < ops; k++) {
    long i = (long)rng_below(&r, (uint64_t)nslots);
    slot_t *s = &slots[i];
    if (!intact(s, i)) fail("large: slot %ld (%zu B at %p) corrupted before free, op %ld", i, s->size, (void *)s->p, k);
    free(s->p);
    s->size = rng_size(&r, 64 << 10, 4 << 20);
    s->p = xmalloc(s->size);
    s->gen++;
    touch(s, i);
  }
  double t1 = now_s();
  for (long i = 0; i < nslots; i++) {
    if (!intact(&slots[i], i)) fail("large: slot %ld corrupted at the end", i);
    free(slots[i].p);
  }
  free(slots);
  printf("large: ops=%ld slots=%ld %.2f us per replace\n", ops, nslots, (t1 - t0) * 1e6 / (double)ops);
  return 0;
}
