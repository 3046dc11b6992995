/* Working-set churn on one thread: SLOTS live blocks of mixed sizes (8 B .. 4 KiB, log-uniform),
 * replaced at random OPS times. Before each free the block's tags are checked, so a block handed
 * out twice or overwritten by the allocator is caught.
 * Usage: churn [ops] [slots] [seed]. Prints ops, ns per replace, live bytes at the end. */
#include "common.h"

typedef struct { unsigned char *p; uint32_t size; uint32_t gen; } slot_t;

int main(int argc, char **argv) {
  long ops = arg_long(argc, argv, 1, 20000000);
  long nslots = arg_long(argc, argv, 2, 100000);
  long seed = arg_long(argc, argv, 3, 1);
  rng_t r;
  rng_seed(&r, (uint64_t)seed);
  slot_t *slots = calloc((size_t)nslots, sizeof *slots);
  if (!slots) fail("calloc of the slot table failed");

  for (long i = 0; i < nslots; i++) {            /* fill the working set */
    size_t size = rng_size(&r, 8, 4096);
    slots[i].p = xmalloc(size);
    slots[i].size = (uint32_t)size;
    slots[i].gen = 0;
    tag_write(slots[i].p, size, tag_of((uint64_t)i, 0));
  }

  double t0 = now_s();
  for (long k = 0; k < ops; k++) {
    long i = (long)rng_below(&r, (uint64_t)nslots);
    slot_t *s = &slots[i];
    if (!tag_ok(s->p, s->size, tag_of((uint64_t)i, s->gen)))
      fail("churn: slot %ld (%u B at %p) corrupted before free, op %ld", i, s->size, (void *)s->p, k);
    free(s->p);
    size_t size = rng_size(&r, 8, 4096);
    s->p = xmalloc(size);
    s->size = (uint32_t)size;
    s->gen++;
    tag_write(s->p, size, tag_of((uint64_t)i, s->gen));
  }
  double t1 = now_s();

  size_t live = 0;
  for (long i = 0; i < nslots; i++) {
    if (!tag_ok(slots[i].p, slots[i].size, tag_of((uint64_t)i, slots[i].gen)))
      fail("churn: slot %ld corrupted at the end", i);
    live += slots[i].size;
    free(slots[i].p);
  }
  free(slots);
  printf("churn: ops=%ld slots=%ld %.1f ns per replace, live %.1f MiB\n",
         ops, nslots, (t1 - t0) * 1e9 / (double)ops, (double)live / 1048576.0);
  return 0;
}
