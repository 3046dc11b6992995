/* Server-like mix (larson-style): LANES threads run at once. Each owns an array of SLOTS blocks
 * (16 B .. 1 KiB); it replaces random blocks OPS times (check tags, free, allocate, tag), then
 * starts its successor, hands it the array (with live blocks this thread allocated) and exits.
 * The successor frees its predecessor's blocks as it goes: memory allocated by dead threads is
 * freed by new ones. Each lane runs GENS generations; total work is fixed: LANES*GENS*OPS.
 * Usage: larson [lanes] [generations] [ops-per-generation] [slots]. Prints replaces per second. */
#include "common.h"
#include <pthread.h>

typedef struct { void *p; uint32_t size; uint32_t owner; uint64_t gen; } slot_t;

typedef struct {
  slot_t *slots;
  long nslots, ops, gens_left, lane, generation;
  rng_t rng;
} lane_t;

static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static long lanes_running;
static uint64_t serial;           /* per-block generation numbers come from here */

static void *generation(void *arg) {
  lane_t *l = arg;
  uint64_t g = __atomic_fetch_add(&serial, (uint64_t)l->ops, __ATOMIC_RELAXED);
  for (long k = 0; k < l->ops; k++) {
    long i = (long)rng_below(&l->rng, (uint64_t)l->nslots);
    slot_t *s = &l->slots[i];
    if (!tag_ok(s->p, s->size, tag_of(s->owner, s->gen)))
      fail("larson: lane %ld gen %ld slot %ld (%u B) corrupted", l->lane, l->generation, i, s->size);
    free(s->p);
    size_t size = rng_size(&l->rng, 16, 1024);
    s->p = xmalloc(size);
    s->size = (uint32_t)size;
    s->owner = (uint32_t)l->lane;
    s->gen = g + (uint64_t)k;
    tag_write(s->p, size, tag_of(s->owner, s->gen));
  }
  l->generation++;
  if (--l->gens_left > 0) {       /* hand the array to a new thread, then die */
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &a, generation, l)) fail("pthread_create failed");
    pthread_attr_destroy(&a);
  } else {
    pthread_mutex_lock(&done_mu);
    if (--lanes_running == 0) pthread_cond_signal(&done_cv);
    pthread_mutex_unlock(&done_mu);
  }
  return NULL;
}

int main(int argc, char **argv) {
  long nlanes = arg_long(argc, argv, 1, 4);
  long gens = arg_long(argc, argv, 2, 100);
  long ops = arg_long(argc, argv, 3, 20000);
  long nslots = arg_long(argc, argv, 4, 2000);
  lane_t *lanes = calloc((size_t)nlanes, sizeof *lanes);
  if (!lanes) fail("calloc failed");
  for (long j = 0; j < nlanes; j++) {            /* the first generation's blocks, from main */
    lane_t *l = &lanes[j];
    l->slots = calloc((size_t)nslots, sizeof *l->slots);
    if (!l->slots) fail("calloc failed");
    l->nslots = nslots;
    l->ops = ops;
    l->gens_left = gens;
    l->lane = j;
    rng_seed(&l->rng, 500 + (uint64_t)j);
    for (long i = 0; i < nslots; i++) {
      size_t size = rng_size(&l->rng, 16, 1024);
      l->slots[i] = (slot_t){ xmalloc(size), (uint32_t)size, (uint32_t)j, 0 };
      tag_write(l->slots[i].p, size, tag_of((uint64_t)j, 0));
    }
  }
  lanes_running = nlanes;
  double t0 = now_s();
  for (long j = 0; j < nlanes; j++) {
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &a, generation, &lanes[j])) fail("pthread_create failed");
    pthread_attr_destroy(&a);
  }
  pthread_mutex_lock(&done_mu);
  while (lanes_running > 0) pthread_cond_wait(&done_cv, &done_mu);
  pthread_mutex_unlock(&done_mu);
  double t1 = now_s();
  for (long j = 0; j < nlanes; j++) {
    for (long i = 0; i < nslots; i++) {
      slot_t *s = &lanes[j].slots[i];
      if (!tag_ok(s->p, s->size, tag_of(s->owner, s->gen))) fail("larson: lane %ld slot %ld corrupted at the end", j, i);
      free(s->p);
    }
    free(lanes[j].slots);
  }
  free(lanes);
  long total = nlanes * gens * ops;
  printf("larson: ops=%ld lanes=%ld threads=%ld %.2f M replaces/s\n", total, nlanes, nlanes * gens,
         (double)total / (t1 - t0) / 1e6);
  return 0;
}
