/* Batches passed around a ring of threads: THREADS threads (default 4); in every round thread i
 * allocates a batch of BATCH blocks (1 .. 1000 B, uniform) and hands it to thread i+1, which frees
 * it while it allocates its own next batch (one free per malloc, interleaved). Even rounds free a
 * received batch last-allocated first (LIFO), odd rounds first-allocated first (FIFO). So every
 * free is of memory another thread allocated, moments ago. A hand-over waits (mutex and condition
 * variable) only when the next thread is two batches behind. Total work is fixed: THREADS * ROUNDS
 * batches.
 * Usage: xthread [threads] [rounds] [batch]. Prints blocks per second over all threads. */
#include "common.h"
#include <pthread.h>

#define INBOX_CAP 2                 /* batches waiting for a thread */
/* A worker's batch records, used in turn. Batch r is reused in round r + NBUF: by then the handing
 * over of batch r + NBUF - 1 has found room, so the next thread has taken batch r + 1, which it
 * does only after it has freed all of batch r. */
#define NBUF (INBOX_CAP + 2)

typedef struct {
  void **objs;                      /* the blocks, in allocation order */
  uint32_t *sizes;
  uint64_t first;                   /* tag generation of objs[0] */
} batch_t;

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t changed;
  batch_t *box[INBOX_CAP];
  int head, len;
  long id, nthreads, rounds, batch;
  long freed;                       /* stored at the end: the loop counts in a local */
  batch_t *mine[NBUF];              /* this worker's batch records */
} worker_t;

static worker_t *workers;

static void give(worker_t *to, batch_t *b) {
  pthread_mutex_lock(&to->mu);
  while (to->len == INBOX_CAP) pthread_cond_wait(&to->changed, &to->mu);
  to->box[(to->head + to->len) % INBOX_CAP] = b;
  to->len++;
  pthread_cond_broadcast(&to->changed);
  pthread_mutex_unlock(&to->mu);
}

static batch_t *take(worker_t *w) {
  pthread_mutex_lock(&w->mu);
  while (w->len == 0) pthread_cond_wait(&w->changed, &w->mu);
  batch_t *b = w->box[w->head];
  w->head = (w->head + 1) % INBOX_CAP;
  w->len--;
  pthread_cond_broadcast(&w->changed);
  pthread_mutex_unlock(&w->mu);
  return b;
}

/* The batch records are made once per worker (NBUF of them) and live for the whole run: only
 * the blocks come and go. */
static batch_t *new_batch(long n) {
  batch_t *b = xmalloc(sizeof *b);
  b->objs = xmalloc(sizeof(void *) * (size_t)n);
  b->sizes = xmalloc(sizeof(uint32_t) * (size_t)n);
  return b;
}

static void check_free(const worker_t *w, batch_t *in, long j) {
  uint64_t owner = (uint64_t)((w->id + w->nthreads - 1) % w->nthreads);
  if (!tag_ok(in->objs[j], in->sizes[j], tag_of(owner, in->first + (uint64_t)j)))
    fail("xthread: thread %ld got a corrupted block (%u B) from thread %lu", w->id, in->sizes[j], (unsigned long)owner);
  free(in->objs[j]);
}

static void *run(void *arg) {
  worker_t *w = arg;
  worker_t *next = &workers[(w->id + 1) % w->nthreads];
  rng_t rng;                                    /* private state stays off the shared worker array */
  rng_seed(&rng, 500 + (uint64_t)w->id);
  long freed = 0;
  for (int k = 0; k < NBUF; k++) w->mine[k] = new_batch(w->batch);
  uint64_t gen = 0;
  for (long r = 0; r < w->rounds; r++) {
    batch_t *out = w->mine[r % NBUF];
    batch_t *in = r > 0 ? take(w) : NULL;       /* round r-1's batch of the previous thread */
    int lifo = (r - 1) % 2 == 0;
    out->first = gen;
    for (long j = 0; j < w->batch; j++) {
      size_t size = (size_t)rng_range(&rng, 1, 1000);
      out->objs[j] = xmalloc(size);
      out->sizes[j] = (uint32_t)size;
      tag_write(out->objs[j], size, tag_of((uint64_t)w->id, gen++));
      if (in) { check_free(w, in, lifo ? w->batch - 1 - j : j); freed++; }
    }
    give(next, out);
  }
  batch_t *in = take(w);                        /* the last round's batch */
  for (long j = 0; j < w->batch; j++) { check_free(w, in, j); freed++; }
  w->freed = freed;
  return NULL;
}

int main(int argc, char **argv) {
  long nthreads = arg_long(argc, argv, 1, 4);
  long rounds = arg_long(argc, argv, 2, 20000);
  long batch = arg_long(argc, argv, 3, 100);
  workers = calloc((size_t)nthreads, sizeof *workers);
  pthread_t *th = calloc((size_t)nthreads, sizeof *th);
  if (!workers || !th) fail("calloc failed");
  for (long i = 0; i < nthreads; i++) {         /* every inbox exists before any thread starts */
    worker_t *w = &workers[i];
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->changed, NULL);
    w->id = i;
    w->nthreads = nthreads;
    w->rounds = rounds;
    w->batch = batch;
  }
  double t0 = now_s();
  for (long i = 0; i < nthreads; i++)
    if (pthread_create(&th[i], NULL, run, &workers[i])) fail("pthread_create failed");
  for (long i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
  double t1 = now_s();
  long ops = nthreads * rounds * batch;
  for (long i = 0; i < nthreads; i++)
    if (workers[i].freed != rounds * batch) fail("xthread: thread %ld freed %ld of %ld", i, workers[i].freed, rounds * batch);
  for (long i = 0; i < nthreads; i++)
    for (int k = 0; k < NBUF; k++) { free(workers[i].mine[k]->objs); free(workers[i].mine[k]->sizes); free(workers[i].mine[k]); }
  printf("xthread: ops=%ld threads=%ld batch=%ld %.2f M blocks/s (malloc + remote free)\n", ops, nthreads, batch,
         (double)ops / (t1 - t0) / 1e6);
  free(workers);
  free(th);
  return 0;
}
