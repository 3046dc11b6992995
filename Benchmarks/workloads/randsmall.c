/* Random small blocks in a small window: each of THREADS threads (default 2) keeps SLOTS live
 * blocks (default 64) and replaces a random one OPS times: free it, allocate 8 .. 512 B (uniform),
 * write its first and last bytes. The window is small enough to stay in the cache, so the time is
 * the allocator's own fast paths with sizes that jump between size classes at random. The number
 * of operations is fixed (not the time), so every run does the same work.
 * Usage: randsmall [threads] [ops-per-thread] [slots]. Prints M replaces per second over all threads. */
#include "common.h"
#include <pthread.h>

typedef struct { unsigned char *p; uint32_t size; unsigned char mark; } slot_t;

/* The workers sit side by side in one array: the loop keeps its sum in a local and stores it at
 * the end, so no thread writes next to another's fields while the clock runs. */
typedef struct {
  long id, ops, nslots;
  uint64_t sum;                   /* marks read back before each free (so no write is dead) */
} worker_t;

static void *run(void *arg) {
  worker_t *w = arg;
  rng_t r;
  rng_seed(&r, 300 + (uint64_t)w->id);
  uint64_t sum = 0;
  slot_t *slots = xmalloc(sizeof(slot_t) * (size_t)w->nslots);
  for (long i = 0; i < w->nslots; i++) {
    size_t size = (size_t)rng_range(&r, 8, 512);
    slots[i] = (slot_t){ xmalloc(size), (uint32_t)size, (unsigned char)i };
    slots[i].p[0] = slots[i].p[size - 1] = slots[i].mark;
  }
  for (long k = 0; k < w->ops; k++) {
    uint64_t x = rng_next(&r);    /* one draw: the slot from the high bits, the size from the low */
    slot_t *s = &slots[(x >> 32) % (uint64_t)w->nslots];
    if (s->p[0] != s->mark || s->p[s->size - 1] != s->mark)
      fail("randsmall: thread %ld block (%u B) corrupted at op %ld", w->id, s->size, k);
    sum += s->p[0];
    free(s->p);
    size_t size = 8 + (size_t)((x & 0xffffffff) % 505);
    s->p = xmalloc(size);
    s->size = (uint32_t)size;
    s->mark = (unsigned char)(k + 1);
    s->p[0] = s->p[size - 1] = s->mark;
  }
  for (long i = 0; i < w->nslots; i++) free(slots[i].p);
  free(slots);
  w->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  long nthreads = arg_long(argc, argv, 1, 2);
  long ops = arg_long(argc, argv, 2, 30000000);
  long nslots = arg_long(argc, argv, 3, 64);
  worker_t *ws = calloc((size_t)nthreads, sizeof *ws);
  pthread_t *th = calloc((size_t)nthreads, sizeof *th);
  if (!ws || !th) fail("calloc failed");
  double t0 = now_s();
  for (long i = 0; i < nthreads; i++) {
    ws[i] = (worker_t){ .id = i, .ops = ops, .nslots = nslots };
    if (pthread_create(&th[i], NULL, run, &ws[i])) fail("pthread_create failed");
  }
  uint64_t sum = 0;
  for (long i = 0; i < nthreads; i++) { pthread_join(th[i], NULL); sum += ws[i].sum; }
  double t1 = now_s();
  printf("randsmall: ops=%ld threads=%ld slots=%ld %.2f M replaces/s (check %lu)\n", nthreads * ops, nthreads, nslots,
         (double)(nthreads * ops) / (t1 - t0) / 1e6, (unsigned long)(sum & 0xffff));
  free(ws);
  free(th);
  return 0;
}
