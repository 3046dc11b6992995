/* A shared table of requests' buffers, as in a server: THREADS worker threads (default 4) each
 * replace a random block in one shared array of SLOTS blocks OPS times: allocate 16 B .. 4 KiB
 * (log-uniform), write a header (its size and a tag) and a trailer (the tag again), swap it into the slot with an
 * atomic exchange, check the old block's header and trailer and free it. The old block was most
 * likely allocated by another thread, so most frees are remote, and blocks move between threads in
 * no particular order.
 * Usage: server [threads] [ops-per-thread] [slots]. Prints M replaces per second over all threads. */
#include "common.h"
#include <pthread.h>

typedef struct { uint64_t size, tag; } header_t;   /* at the start of every block; 16 B */

typedef struct { long id, ops; } worker_t;

static void **slots;
static long nslots;

static uint64_t tag_for(uint64_t size) { return tag_of(size, 0xC0FFEE); }

static void *make(rng_t *r) {
  size_t size = rng_size(r, 16, 4096);
  header_t h = { size, tag_for(size) };
  unsigned char *p = xmalloc(size);
  memcpy(p, &h, sizeof h);
  if (size >= 24) memcpy(p + size - 8, &h.tag, 8);   /* a trailer, where it misses the header */
  return p;
}

static void check(const void *block, long thread) {
  header_t h;
  uint64_t t;
  memcpy(&h, block, sizeof h);
  if (h.size < 16 || h.size > 4096 || h.tag != tag_for(h.size))
    fail("server: thread %ld found a corrupted block header at %p", thread, block);
  if (h.size < 24) return;
  memcpy(&t, (const unsigned char *)block + h.size - 8, 8);
  if (t != h.tag) fail("server: thread %ld found a corrupted block (%lu B) at %p", thread, (unsigned long)h.size, block);
}

static void *run(void *arg) {
  worker_t *w = arg;
  rng_t r;
  rng_seed(&r, 4242 + (uint64_t)w->id);
  for (long k = 0; k < w->ops; k++) {
    void *fresh = make(&r);
    void *old = __atomic_exchange_n(&slots[rng_below(&r, (uint64_t)nslots)], fresh, __ATOMIC_ACQ_REL);
    check(old, w->id);
    free(old);
  }
  return NULL;
}

int main(int argc, char **argv) {
  long nthreads = arg_long(argc, argv, 1, 4);
  long ops = arg_long(argc, argv, 2, 1000000);
  nslots = arg_long(argc, argv, 3, 10000);
  slots = calloc((size_t)nslots, sizeof *slots);
  worker_t *ws = calloc((size_t)nthreads, sizeof *ws);
  pthread_t *th = calloc((size_t)nthreads, sizeof *th);
  if (!slots || !ws || !th) fail("calloc failed");
  rng_t r;
  rng_seed(&r, 4241);
  for (long i = 0; i < nslots; i++) slots[i] = make(&r);
  double t0 = now_s();
  for (long i = 0; i < nthreads; i++) {
    ws[i] = (worker_t){ .id = i, .ops = ops };
    if (pthread_create(&th[i], NULL, run, &ws[i])) fail("pthread_create failed");
  }
  for (long i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
  double t1 = now_s();
  for (long i = 0; i < nslots; i++) { check(slots[i], -1); free(slots[i]); }
  printf("server: ops=%ld threads=%ld slots=%ld %.2f M replaces/s\n", nthreads * ops, nthreads, nslots,
         (double)(nthreads * ops) / (t1 - t0) / 1e6);
  free(slots);
  free(ws);
  free(th);
  return 0;
}
