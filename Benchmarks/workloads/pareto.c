/* Pareto-distributed sizes with a live set: each of THREADS threads keeps SLOTS live blocks and
 * replaces a random one OPS times. Sizes follow a Pareto law of shape 1 from 8 B, cut at 1 KiB:
 * P(size >= s) = 8 / s (half the blocks are 8..16 B, a quarter 16..32 B, and so on, and 1 in 128
 * would be over 1 KiB: those are drawn again). Many tiny blocks and a long tail, as in programs that
 * allocate strings and small records. Every block is tagged and checked before its free.
 * Usage: pareto [threads] [ops-per-thread] [slots]. Prints M replaces per second over all threads. */
#include "common.h"
#include <pthread.h>

typedef struct { void *p; uint32_t size; uint64_t gen; } slot_t;

/* The workers sit side by side in one array: the loops keep their counts in locals and store them
 * at the end, so no thread writes next to another's fields while the clock runs. */
typedef struct { long id, ops, nslots; uint64_t bytes; } worker_t;

/* A size with P(size >= s) = 8 / s for 8 <= s <= 1024: s = 8 / u for u uniform in (0, 1]. */
static size_t pareto_size(rng_t *r) {
  for (;;) {
    uint64_t u = (rng_next(r) >> 11) + 1;          /* 1 .. 2^53: u / 2^53 is in (0, 1] */
    uint64_t s = (8ull << 53) / u;
    if (s <= 1024) return (size_t)s;
  }
}

static void *run(void *arg) {
  worker_t *w = arg;
  rng_t r;
  rng_seed(&r, 900 + (uint64_t)w->id);
  uint64_t bytes = 0;
  slot_t *slots = xmalloc(sizeof(slot_t) * (size_t)w->nslots);
  for (long i = 0; i < w->nslots; i++) {
    size_t size = pareto_size(&r);
    slots[i] = (slot_t){ xmalloc(size), (uint32_t)size, 0 };
    tag_write(slots[i].p, size, tag_of((uint64_t)w->id, 0));
  }
  for (long k = 1; k <= w->ops; k++) {
    slot_t *s = &slots[rng_below(&r, (uint64_t)w->nslots)];
    if (!tag_ok(s->p, s->size, tag_of((uint64_t)w->id, s->gen)))
      fail("pareto: thread %ld block (%u B) corrupted at op %ld", w->id, s->size, k);
    free(s->p);
    size_t size = pareto_size(&r);
    s->p = xmalloc(size);
    s->size = (uint32_t)size;
    s->gen = (uint64_t)k;
    tag_write(s->p, size, tag_of((uint64_t)w->id, s->gen));
    bytes += size;
  }
  w->bytes = bytes;
  for (long i = 0; i < w->nslots; i++) free(slots[i].p);
  free(slots);
  return NULL;
}

int main(int argc, char **argv) {
  long nthreads = arg_long(argc, argv, 1, 1);
  long ops = arg_long(argc, argv, 2, 10000000);
  long nslots = arg_long(argc, argv, 3, 10000);
  worker_t *ws = calloc((size_t)nthreads, sizeof *ws);
  pthread_t *th = calloc((size_t)nthreads, sizeof *th);
  if (!ws || !th) fail("calloc failed");
  double t0 = now_s();
  for (long i = 0; i < nthreads; i++) {
    ws[i] = (worker_t){ .id = i, .ops = ops, .nslots = nslots };
    if (pthread_create(&th[i], NULL, run, &ws[i])) fail("pthread_create failed");
  }
  uint64_t bytes = 0;
  for (long i = 0; i < nthreads; i++) { pthread_join(th[i], NULL); bytes += ws[i].bytes; }
  double t1 = now_s();
  printf("pareto: ops=%ld threads=%ld slots=%ld %.2f M replaces/s, mean size %.1f B\n", nthreads * ops, nthreads,
         nslots, (double)(nthreads * ops) / (t1 - t0) / 1e6, (double)bytes / (double)(nthreads * ops));
  free(ws);
  free(th);
  return 0;
}
