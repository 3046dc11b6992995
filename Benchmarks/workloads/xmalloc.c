/* Many threads allocating at once (xmalloc-style): THREADS threads each own SLOTS blocks
 * (16 B .. 2 KiB) and replace random ones. Mostly a thread frees its own blocks; one replaced
 * block in 32 is instead handed to the next thread's mailbox (a lock-free stack), which that
 * thread empties and frees every 256 operations. Total work is fixed: OPS replaces over all threads.
 * A thread that has done its share keeps emptying its mailbox until every thread has, so the
 * blocks in flight stay bounded whatever order the scheduler finishes the threads in.
 * Usage: xmalloc [threads] [total-ops] [slots]. Prints replaces per second. */
#include "common.h"
#include <pthread.h>

typedef struct { void *p; uint32_t size; uint64_t gen; } slot_t;
typedef struct node { struct node *next; } node_t;     /* a handed-over block, reused as a node */

typedef struct {
  _Alignas(64) node_t *mailbox;   /* blocks other threads handed over; freed by this thread */
  long id, ops, nslots, nthreads, handed, received;
  slot_t *slots;
} worker_t;

static worker_t *workers;
static long finished;   /* threads done with their replaces */

static long drain(worker_t *w) {
  node_t *n = __atomic_exchange_n(&w->mailbox, NULL, __ATOMIC_ACQUIRE);
  long k = 0;
  while (n) { node_t *next = n->next; free(n); n = next; k++; }
  return k;
}

static void *run(void *arg) {
  worker_t *w = arg;
  worker_t *next = &workers[(w->id + 1) % w->nthreads];
  rng_t r;
  rng_seed(&r, 77 + (uint64_t)w->id);
  w->slots = xmalloc(sizeof(slot_t) * (size_t)w->nslots);
  for (long i = 0; i < w->nslots; i++) {
    size_t size = rng_size(&r, 16, 2048);
    w->slots[i] = (slot_t){ xmalloc(size), (uint32_t)size, 0 };
    tag_write(w->slots[i].p, size, tag_of((uint64_t)w->id, 0));
  }
  for (long k = 1; k <= w->ops; k++) {
    slot_t *s = &w->slots[rng_below(&r, (uint64_t)w->nslots)];
    if (!tag_ok(s->p, s->size, tag_of((uint64_t)w->id, s->gen)))
      fail("xmalloc: thread %ld block (%u B) corrupted at op %ld", w->id, s->size, k);
    if ((k & 31) == 0) {          /* hand it over: the next thread frees it */
      node_t *n = s->p, *head = __atomic_load_n(&next->mailbox, __ATOMIC_RELAXED);
      do { n->next = head; } while (!__atomic_compare_exchange_n(&next->mailbox, &head, n, 1,
                                                                  __ATOMIC_RELEASE, __ATOMIC_RELAXED));
      w->handed++;
    } else {
      free(s->p);
    }
    if ((k & 255) == 0) w->received += drain(w);
    size_t size = rng_size(&r, 16, 2048);
    s->p = xmalloc(size);
    s->size = (uint32_t)size;
    s->gen = (uint64_t)k;
    tag_write(s->p, size, tag_of((uint64_t)w->id, s->gen));
  }
  /* Keep emptying the mailbox until every thread has stopped handing over, so the blocks in
     flight do not pile up behind a thread that happened to finish first. */
  __atomic_add_fetch(&finished, 1, __ATOMIC_ACQ_REL);
  while (__atomic_load_n(&finished, __ATOMIC_ACQUIRE) < w->nthreads) {
    w->received += drain(w);
    struct timespec ts = { 0, 100000 };
    nanosleep(&ts, NULL);
  }
  for (long i = 0; i < w->nslots; i++) {
    if (!tag_ok(w->slots[i].p, w->slots[i].size, tag_of((uint64_t)w->id, w->slots[i].gen)))
      fail("xmalloc: thread %ld slot %ld corrupted at the end", w->id, i);
    free(w->slots[i].p);
  }
  free(w->slots);
  return NULL;
}

int main(int argc, char **argv) {
  long nthreads = arg_long(argc, argv, 1, 8);
  long total = arg_long(argc, argv, 2, 8000000);
  long nslots = arg_long(argc, argv, 3, 1000);
  workers = calloc((size_t)nthreads, sizeof *workers);
  pthread_t *th = calloc((size_t)nthreads, sizeof *th);
  if (!workers || !th) fail("calloc failed");
  double t0 = now_s();
  for (long i = 0; i < nthreads; i++)   /* all mailboxes exist before any thread hands over */
    workers[i] = (worker_t){ .id = i, .ops = total / nthreads, .nslots = nslots, .nthreads = nthreads };
  for (long i = 0; i < nthreads; i++)
    if (pthread_create(&th[i], NULL, run, &workers[i])) fail("pthread_create failed");
  for (long i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
  double t1 = now_s();
  long handed = 0, received = 0;
  for (long i = 0; i < nthreads; i++) { received += workers[i].received + drain(&workers[i]); handed += workers[i].handed; }
  if (handed != received) fail("xmalloc: %ld blocks handed over but %ld received", handed, received);
  long ops = (total / nthreads) * nthreads;
  printf("xmalloc: ops=%ld threads=%ld %.2f M replaces/s, %ld handed over\n", ops, nthreads,
         (double)ops / (t1 - t0) / 1e6, handed);
  free(workers);
  free(th);
  return 0;
}
