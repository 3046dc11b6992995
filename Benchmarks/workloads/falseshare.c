/* Active false sharing: THREADS threads (default 2) at once each allocate OBJS small blocks
 * (8 .. 64 B), write to each of them WRITES times (one 8-byte counter per block, in turns over the
 * blocks; volatile, so every write reaches memory), check the counters and free the blocks, ROUNDS
 * times. The threads never share a block; but when an allocator hands two threads neighbouring
 * blocks of one cache line, their writes contend for that line and the time climbs by up to an
 * order of magnitude. An allocator that keeps each thread's small blocks apart runs it at the
 * speed of the writes alone.
 * Usage: falseshare [threads] [rounds] [writes] [objs]. Prints M writes per second over all threads. */
#include "common.h"
#include <pthread.h>

typedef struct { long id, rounds, writes, nobjs; } worker_t;

static void *run(void *arg) {
  worker_t *w = arg;
  rng_t r;
  rng_seed(&r, 40 + (uint64_t)w->id);
  volatile uint64_t **objs = xmalloc(sizeof(*objs) * (size_t)w->nobjs);
  for (long k = 0; k < w->rounds; k++) {
    for (long i = 0; i < w->nobjs; i++) {
      objs[i] = xmalloc((size_t)rng_range(&r, 8, 64));
      *objs[i] = 0;
    }
    for (long n = 0; n < w->writes; n++)
      for (long i = 0; i < w->nobjs; i++) *objs[i] += 1;
    for (long i = 0; i < w->nobjs; i++) {
      if (*objs[i] != (uint64_t)w->writes)
        fail("falseshare: thread %ld counter %ld reads %lu after %ld writes", w->id, i, (unsigned long)*objs[i], w->writes);
      free((void *)objs[i]);
    }
  }
  free(objs);
  return NULL;
}

int main(int argc, char **argv) {
  long nthreads = arg_long(argc, argv, 1, 2);
  long rounds = arg_long(argc, argv, 2, 50000);
  long writes = arg_long(argc, argv, 3, 1000);
  long nobjs = arg_long(argc, argv, 4, 8);
  worker_t *ws = calloc((size_t)nthreads, sizeof *ws);
  pthread_t *th = calloc((size_t)nthreads, sizeof *th);
  if (!ws || !th) fail("calloc failed");
  double t0 = now_s();
  for (long i = 0; i < nthreads; i++) {
    ws[i] = (worker_t){ .id = i, .rounds = rounds, .writes = writes, .nobjs = nobjs };
    if (pthread_create(&th[i], NULL, run, &ws[i])) fail("pthread_create failed");
  }
  for (long i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
  double t1 = now_s();
  double total = (double)nthreads * (double)rounds * (double)writes * (double)nobjs;
  printf("falseshare: ops=%ld threads=%ld %.1f M writes/s, %ld writes per block\n", nthreads * rounds * nobjs, nthreads,
         total / (t1 - t0) / 1e6, writes);
  free(ws);
  free(th);
  return 0;
}
