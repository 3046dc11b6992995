/* Producer/consumer: PAIRS producer threads allocate objects (16 B .. 1 KiB), tag them and pass
 * them in batches to their consumer thread, which checks and frees them. Every free is a free of
 * memory another thread allocated (the xmalloc-test pattern). Each pair has a bounded queue of
 * batches, so memory in flight stays small.
 * Usage: prodcons [pairs] [objects-per-pair] [batch]. Prints objects/s over all pairs. */
#include "common.h"
#include <pthread.h>

#define QUEUE_CAP 16              /* batches in flight per pair */

typedef struct {
  void **objs;                    /* allocated by the producer (with malloc: part of the test) */
  uint32_t *sizes;
  long first;                     /* index of objs[0] in the producer's sequence */
  int count;
} batch_t;

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full;
  batch_t *q[QUEUE_CAP];
  int head, len, closed;
  long objects, id;
  int batch;
  long consumed;
} pair_t;

static void push(pair_t *p, batch_t *b) {
  pthread_mutex_lock(&p->mu);
  while (p->len == QUEUE_CAP) pthread_cond_wait(&p->not_full, &p->mu);
  p->q[(p->head + p->len) % QUEUE_CAP] = b;
  p->len++;
  pthread_cond_signal(&p->not_empty);
  pthread_mutex_unlock(&p->mu);
}

static batch_t *pop(pair_t *p) {
  pthread_mutex_lock(&p->mu);
  while (p->len == 0 && !p->closed) pthread_cond_wait(&p->not_empty, &p->mu);
  batch_t *b = NULL;
  if (p->len > 0) {
    b = p->q[p->head];
    p->head = (p->head + 1) % QUEUE_CAP;
    p->len--;
    pthread_cond_signal(&p->not_full);
  }
  pthread_mutex_unlock(&p->mu);
  return b;
}

static void *producer(void *arg) {
  pair_t *p = arg;
  rng_t r;
  rng_seed(&r, 1000 + (uint64_t)p->id);
  for (long next = 0; next < p->objects;) {
    batch_t *b = xmalloc(sizeof *b);
    int n = (int)(p->objects - next < p->batch ? p->objects - next : p->batch);
    b->objs = xmalloc(sizeof(void *) * (size_t)n);
    b->sizes = xmalloc(sizeof(uint32_t) * (size_t)n);
    b->first = next;
    b->count = n;
    for (int i = 0; i < n; i++) {
      size_t size = rng_size(&r, 16, 1024);
      b->objs[i] = xmalloc(size);
      b->sizes[i] = (uint32_t)size;
      tag_write(b->objs[i], size, tag_of((uint64_t)p->id, (uint64_t)(next + i)));
    }
    next += n;
    push(p, b);
  }
  pthread_mutex_lock(&p->mu);
  p->closed = 1;
  pthread_cond_broadcast(&p->not_empty);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static void *consumer(void *arg) {
  pair_t *p = arg;
  batch_t *b;
  while ((b = pop(p)) != NULL) {
    for (int i = 0; i < b->count; i++) {
      if (!tag_ok(b->objs[i], b->sizes[i], tag_of((uint64_t)p->id, (uint64_t)(b->first + i))))
        fail("prodcons: pair %ld object %ld (%u B) corrupted", p->id, b->first + i, b->sizes[i]);
      free(b->objs[i]);
    }
    p->consumed += b->count;
    free(b->objs);
    free(b->sizes);
    free(b);
  }
  return NULL;
}

int main(int argc, char **argv) {
  long pairs = arg_long(argc, argv, 1, 2);
  long objects = arg_long(argc, argv, 2, 5000000);
  long batch = arg_long(argc, argv, 3, 64);
  pair_t *ps = calloc((size_t)pairs, sizeof *ps);
  pthread_t *th = calloc((size_t)pairs * 2, sizeof *th);
  if (!ps || !th) fail("calloc failed");
  double t0 = now_s();
  for (long i = 0; i < pairs; i++) {
    pthread_mutex_init(&ps[i].mu, NULL);
    pthread_cond_init(&ps[i].not_empty, NULL);
    pthread_cond_init(&ps[i].not_full, NULL);
    ps[i].objects = objects;
    ps[i].id = i;
    ps[i].batch = (int)batch;
    if (pthread_create(&th[2 * i], NULL, consumer, &ps[i]) || pthread_create(&th[2 * i + 1], NULL, producer, &ps[i]))
      fail("pthread_create failed");
  }
  for (long i = 0; i < pairs * 2; i++) pthread_join(th[i], NULL);
  double t1 = now_s();
  for (long i = 0; i < pairs; i++)
    if (ps[i].consumed != objects) fail("prodcons: pair %ld consumed %ld of %ld", i, ps[i].consumed, objects);
  printf("prodcons: ops=%ld pairs=%ld %.2f M objects/s\n", pairs * objects, pairs,
         (double)(pairs * objects) / (t1 - t0) / 1e6);
  free(ps);
  free(th);
  return 0;
}
