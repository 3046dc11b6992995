// limits_threads.c: many short-lived threads. THREADS threads (default 20000) run in batches of
// BATCH (default 50) concurrent threads; each allocates objects of many sizes (small classes, a
// few medium, now and then a large one), checks their contents, frees most of them, and leaves a
// few in a shared pool, where a later thread (usually after the allocating thread has exited)
// checks and frees them. VmRSS after the first batch and at the end are compared: the growth must
// stay under LIMIT_MIB (default 64) - thread caches and their spans must be given back when a
// thread exits, not leak. goalloc_check_heap() must hold after every 50 batches and at the end.
// Usage: limits_threads [THREADS] [BATCH] [LIMIT_MIB]
#include "rel_common.h"
#include <pthread.h>

#define POOL 2048
#define PER_THREAD 64

struct obj { unsigned char *p; size_t n; unsigned char v; };
static struct obj pool[POOL];
static size_t pool_next;
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile int corrupt;

static int check(const struct obj *o) {
  for (size_t i = 0; i < o->n; i++) if (o->p[i] != o->v) return 0;
  return 1;
}

static uint64_t mix(uint64_t x) {
  x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

static void *worker(void *arg) {
  uint64_t id = (uint64_t)(uintptr_t)arg, r = mix(id + 1);
  struct obj mine[PER_THREAD];
  for (int i = 0; i < PER_THREAD; i++) {
    r = mix(r);
    size_t n;
    switch (r % 16) {
    case 0: n = 16384 + r % 16384; break;                       // medium
    case 1: n = (r >> 8) % 64 == 0 ? 40000 + r % 200000 : 4096; break;  // now and then large
    default: n = 1 + (r >> 16) % 1024; break;                   // small classes
    }
    mine[i].p = rel_malloc(n);
    if (!mine[i].p) { corrupt = 1; rel_fail("thread %llu: malloc(%zu) = NULL", (unsigned long long)id, n); return NULL; }
    mine[i].n = n;
    mine[i].v = (unsigned char)(id * 7 + (uint64_t)i);
    memset(mine[i].p, mine[i].v, n);
  }
  // A realloc chain, a calloc and an aligned block on every thread.
  unsigned char *g = NULL;
  for (size_t n = 8; n < 100000; n = n * 3 + 1) {
    g = rel_realloc(g, n);
    if (!g) { corrupt = 1; return NULL; }
    g[n - 1] = 1;
  }
  rel_free(g);
  unsigned char *z = rel_calloc(100, 33);
  for (int i = 0; z && i < 3300; i++) if (z[i]) { corrupt = 1; rel_fail("calloc not zeroed"); break; }
  rel_free(z);
  void *a = NULL;
  if (rel_posix_memalign(&a, 256, 1000) != 0 || (rel_addr(a) & 255)) { corrupt = 1; rel_fail("posix_memalign"); }
  rel_free(a);

  for (int i = 0; i < PER_THREAD; i++)
    if (!check(&mine[i])) { corrupt = 1; rel_fail("thread %llu: own object %d corrupted", (unsigned long long)id, i); }
  // Keep 4 objects in the pool (freeing what was there: usually another, dead thread's objects).
  for (int i = 0; i < 4; i++) {
    pthread_mutex_lock(&pool_mu);
    struct obj old = pool[pool_next % POOL];
    pool[pool_next % POOL] = mine[i * 16];
    pool_next++;
    pthread_mutex_unlock(&pool_mu);
    mine[i * 16].p = NULL;
    if (old.p) {
      if (!check(&old)) { corrupt = 1; rel_fail("pooled object (%zu B) corrupted", old.n); }
      rel_free(old.p);
    }
  }
  for (int i = 0; i < PER_THREAD; i++) rel_free(mine[i].p);
  return NULL;
}

int main(int argc, char **argv) {
  long threads = argc > 1 ? atol(argv[1]) : 20000;
  long batch = argc > 2 ? atol(argv[2]) : 50;
  long limit_mib = argc > 3 ? atol(argv[3]) : 64;
  pthread_t *tids = calloc((size_t)batch, sizeof *tids);
  long rss0 = rel_status_kib("VmRSS"), rss1 = 0, peak = 0, started = 0, batches = 0;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 << 10);
  while (started < threads) {
    long n = threads - started < batch ? threads - started : batch;
    for (long i = 0; i < n; i++)
      if (pthread_create(&tids[i], &attr, worker, (void *)(uintptr_t)(started + i)) != 0) {
        rel_fail("pthread_create failed at thread %ld", started + i);
        return 1;
      }
    for (long i = 0; i < n; i++) pthread_join(tids[i], NULL);
    started += n;
    batches++;
    long rss = rel_status_kib("VmRSS");
    if (rss > peak) peak = rss;
    if (batches == 1) rss1 = rss;
    if (batches % 50 == 0 && !rel_check_heap()) rel_fail("goalloc_check_heap() returned 0 after batch %ld", batches);
    if (corrupt) break;
  }
  long rss_end = rel_status_kib("VmRSS");
  // The pool still holds objects of exited threads: check and free them from here.
  for (size_t i = 0; i < POOL; i++)
    if (pool[i].p) {
      if (!check(&pool[i])) rel_fail("pooled object corrupted at the end");
      rel_free(pool[i].p);
      pool[i].p = NULL;
    }
  if (!rel_check_heap()) rel_fail("goalloc_check_heap() returned 0 at the end");
  size_t released = rel_release();
  long rss_released = rel_status_kib("VmRSS");
  long growth = rss_end - rss1;
  rel_say("limits_threads: goalloc %s; %ld threads in %ld batches of %ld\n",
          rel_goalloc_loaded() ? "loaded" : "NOT loaded", started, batches, batch);
  rel_say("  VmRSS KiB: start %ld, after batch 1 %ld, peak %ld, end %ld (growth %ld KiB, limit %ld MiB); "
          "after freeing the pool and goalloc_release_free_memory() (returned %zu) %ld\n",
          rss0, rss1, peak, rss_end, growth, limit_mib, released, rss_released);
  if (started != threads) rel_fail("only %ld of %ld threads ran", started, threads);
  if (growth > limit_mib * 1024) rel_fail("VmRSS grew by %ld KiB after the first batch (limit %ld MiB)", growth, limit_mib);
  rel_say("limits_threads: %s\n", rel_failures ? "FAILED" : "OK");
  free(tids);
  return rel_failures ? 1 : 0;
}
