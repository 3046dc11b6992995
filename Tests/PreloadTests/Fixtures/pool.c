// Pools (goalloc_pool_*) through the C API, one scenario per argument (run under libgoalloc.so,
// linked with it). Each scenario prints "ok <name>" lines or "FAIL <name>: why" and exits 1 on
// a failure. The scenarios that count objects run with GOALLOC_DEBUG=scavenger=0, so that no
// rotation but theirs happens.
#define _GNU_SOURCE
#include <goalloc.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;
#define CHECK(name, cond, ...) do { if (cond) printf("ok %s\n", name); else { printf("FAIL %s: ", name); printf(__VA_ARGS__); printf("\n"); failures++; } fflush(stdout); } while (0)

// A pooled object: who holds it now (0: nobody, i.e. it is in the pool), and which one it is.
struct obj {
  uintptr_t owner;
  uint64_t id;
  unsigned char payload[48];
};

static struct goalloc_pool_stats stats(goalloc_pool *p) {
  struct goalloc_pool_stats s;
  goalloc_pool_stats(p, &s);
  return s;
}

static uint64_t frees(void) {
  struct goalloc_memstats m;
  goalloc_read_memstats(&m);
  return m.frees;
}

static int inits;
static void count_init(void *o, void *arg) {
  struct obj *b = o;
  b->owner = 0;
  b->id = (uint64_t)(uintptr_t)arg + (uint64_t)__atomic_fetch_add(&inits, 1, __ATOMIC_RELAXED);
  memset(b->payload, 0, sizeof b->payload);
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

/// Gets until the pool is empty (a pool without init); returns how many, and 1 in *dup when an
/// object came out twice.
static size_t drain(goalloc_pool *p, void ***out, int *dup) {
  size_t cap = 1024, n = 0;
  void **all = malloc(cap * sizeof *all);
  for (void *o; (o = goalloc_pool_get(p)) != NULL;) {
    if (n == cap) all = realloc(all, (cap *= 2) * sizeof *all);
    all[n++] = o;
  }
  qsort(all, n, sizeof *all, cmp_ptr);
  *dup = 0;
  for (size_t i = 1; i < n; i++) if (all[i] == all[i - 1]) *dup = 1;
  *out = all;
  return n;
}

// MARK: basic

static void basic(void) {
  goalloc_pool *p = goalloc_pool_create(sizeof(struct obj), count_init, (void *)1000);
  CHECK("create", p != NULL, "NULL");
  struct obj *a = goalloc_pool_get(p);
  CHECK("get on an empty pool calls init", a && inits == 1 && a->id == 1000 && malloc_usable_size(a) >= sizeof *a,
        "a=%p inits=%d", (void *)a, inits);
  memset(a->payload, 0xab, sizeof a->payload);
  goalloc_pool_put(p, a);
  struct goalloc_pool_stats s = stats(p);
  CHECK("stats after one put", s.size == sizeof(struct obj) && s.pooled == 1 && s.victims == 0 && s.created == 1,
        "size %llu pooled %llu created %llu", (unsigned long long)s.size, (unsigned long long)s.pooled,
        (unsigned long long)s.created);
  struct obj *b = goalloc_pool_get(p);
  CHECK("get returns the object put, bytes as they were", b == a && b->payload[47] == 0xab && inits == 1,
        "b=%p a=%p", (void *)b, (void *)a);
  // Many objects: puts beyond the private slot go to the thread's chain.
  enum { N = 1000 };
  static void *objs[N];
  objs[0] = b;
  for (int i = 1; i < N; i++) objs[i] = goalloc_pool_get(p);
  CHECK("1000 gets: 999 more inits", inits == N, "inits %d", inits);
  for (int i = 0; i < N; i++) goalloc_pool_put(p, objs[i]);
  s = stats(p);
  CHECK("1000 puts: 1000 pooled", s.pooled == N, "pooled %llu", (unsigned long long)s.pooled);
  static void *again[N];
  for (int i = 0; i < N; i++) again[i] = goalloc_pool_get(p);
  qsort(objs, N, sizeof *objs, cmp_ptr);
  qsort(again, N, sizeof *again, cmp_ptr);
  CHECK("1000 gets return the same 1000 objects, no init", memcmp(objs, again, sizeof objs) == 0 && inits == N,
        "inits %d", inits);
  s = stats(p);
  CHECK("empty again", s.pooled == 0 && s.victims == 0, "pooled %llu", (unsigned long long)s.pooled);
  for (int i = 0; i < N; i++) goalloc_pool_put(p, again[i]);
  uint64_t f0 = frees();
  goalloc_pool_destroy(p);
  CHECK("destroy frees what the pool holds", frees() - f0 >= N, "frees %llu", (unsigned long long)(frees() - f0));

  // Without init: NULL on empty; objects from malloc.
  goalloc_pool *q = goalloc_pool_create(32, NULL, NULL);
  CHECK("no init: get on empty returns NULL", q && goalloc_pool_get(q) == NULL, "q=%p", (void *)q);
  void *m = malloc(32);
  goalloc_pool_put(q, m);
  CHECK("no init: a malloc'd object comes back", goalloc_pool_get(q) == m && goalloc_pool_get(q) == NULL, "");
  free(m);
  goalloc_pool_put(q, NULL);
  CHECK("put of NULL: nothing", goalloc_pool_get(q) == NULL && stats(q).pooled == 0, "");
  goalloc_pool_destroy(q);

  // Bad arguments: documented behaviour.
  CHECK("NULL pool: get returns NULL, put and destroy do nothing", goalloc_pool_get(NULL) == NULL, "");
  goalloc_pool_put(NULL, NULL);
  goalloc_pool_destroy(NULL);
  errno = 0;
  goalloc_pool *huge = goalloc_pool_create(SIZE_MAX / 2, NULL, NULL);
  CHECK("an impossible size: NULL, ENOMEM", huge == NULL && errno == ENOMEM, "huge=%p errno=%d", (void *)huge, errno);
  goalloc_pool *z = goalloc_pool_create(0, NULL, NULL);
  CHECK("size 0 counts as 1", z && stats(z).size == 1, "");
  goalloc_pool_destroy(z);
  goalloc_pool_destroy(z);  // reported on stderr, ignored
  CHECK("destroy twice: ignored", 1, "");
}

// MARK: threads

enum { THREADS = 8, OBJECTS = 256, ITER = 20000 };
static goalloc_pool *shared_pool;
static volatile int stop_collecting;
static int double_handouts;

// A one-slot-per-thread mailbox: thread i gets objects and leaves some for thread (i+1) to put.
static struct { pthread_mutex_t lock; void *items[64]; int n; } mailbox[THREADS];

static void take(struct obj *o, uintptr_t me) {
  uintptr_t zero = 0;
  if (!__atomic_compare_exchange_n(&o->owner, &zero, me, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    __atomic_fetch_add(&double_handouts, 1, __ATOMIC_RELAXED);
}
static void give(struct obj *o) { __atomic_store_n(&o->owner, 0, __ATOMIC_RELEASE); }

static void *worker(void *arg) {
  int me = (int)(intptr_t)arg;
  uintptr_t tag = (uintptr_t)me + 1;
  struct obj *held[16];
  unsigned seed = (unsigned)me * 7919u + 1;
  for (int i = 0; i < ITER; i++) {
    seed = seed * 1103515245u + 12345u;
    int k = 1 + (int)((seed >> 16) % 16);  // a batch: beyond the private slot, into chains and steals
    int got = 0;
    for (int j = 0; j < k; j++) {
      struct obj *o = goalloc_pool_get(shared_pool);
      if (!o) break;
      take(o, tag);
      o->payload[0]++;
      held[got++] = o;
    }
    for (int j = 0; j < got; j++) {
      if ((seed >> 8) % 3 == 0 && j == 0) {
        // Across threads: the next thread puts this one.
        pthread_mutex_lock(&mailbox[(me + 1) % THREADS].lock);
        if (mailbox[(me + 1) % THREADS].n < 64) {
          give(held[j]);
          take(held[j], 0x1000 + tag);  // held by the mailbox
          mailbox[(me + 1) % THREADS].items[mailbox[(me + 1) % THREADS].n++] = held[j];
          pthread_mutex_unlock(&mailbox[(me + 1) % THREADS].lock);
          continue;
        }
        pthread_mutex_unlock(&mailbox[(me + 1) % THREADS].lock);
      }
      give(held[j]);
      goalloc_pool_put(shared_pool, held[j]);
    }
    pthread_mutex_lock(&mailbox[me].lock);
    while (mailbox[me].n > 0) {
      struct obj *o = mailbox[me].items[--mailbox[me].n];
      give(o);
      goalloc_pool_put(shared_pool, o);
    }
    pthread_mutex_unlock(&mailbox[me].lock);
  }
  return NULL;
}

/// OBJECTS objects (malloc'd) into a pool without init, THREADS threads getting and putting,
/// handing objects to each other, while `collections` collections run (GC mode), or `trims`
/// malloc_trim calls (each two rotations, racing the threads' private slots), or neither.
/// Afterwards every object is in the pool or was dropped by a rotation: none lost, none twice.
static void threads(int collections, int trims) {
  shared_pool = goalloc_pool_create(sizeof(struct obj), NULL, NULL);
  for (int i = 0; i < OBJECTS; i++) {
    struct obj *o = calloc(1, sizeof *o);
    o->id = (uint64_t)i;
    goalloc_pool_put(shared_pool, o);
  }
  for (int i = 0; i < THREADS; i++) { pthread_mutex_init(&mailbox[i].lock, NULL); mailbox[i].n = 0; }
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
  for (int c = 0; c < collections; c++) {
    if (goalloc_gc_collect() != 0) { printf("FAIL collect refused\n"); failures++; }
    usleep(1000);
  }
  for (int c = 0; c < trims; c++) {
    // Objects the threads put meanwhile: the pool would run dry after the first trims.
    for (int i = 0; i < 4; i++) {
      struct obj *o = calloc(1, sizeof *o);
      o->id = (uint64_t)(OBJECTS + c * 4 + i);
      goalloc_pool_put(shared_pool, o);
    }
    malloc_trim(0);
    usleep(200);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < THREADS; i++) {
    while (mailbox[i].n > 0) {
      struct obj *o = mailbox[i].items[--mailbox[i].n];
      give(o);
      goalloc_pool_put(shared_pool, o);
    }
  }
  CHECK("threads: no object handed to two callers at once", double_handouts == 0, "%d", double_handouts);
  struct goalloc_pool_stats s = stats(shared_pool);
  void **all;
  int dup;
  size_t n = drain(shared_pool, &all, &dup);
  CHECK("threads: no object came out twice", !dup, "");
  CHECK("threads: every object is in the pool or was dropped", n + s.dropped == (size_t)(OBJECTS + 4 * trims),
        "drained %zu + dropped %llu != %d (rotations %llu)", n, (unsigned long long)s.dropped, OBJECTS + 4 * trims,
        (unsigned long long)s.rotations);
  if (trims > 0) {
    CHECK("threads: malloc_trim rotated the pool twice each time", s.rotations == (uint64_t)(2 * trims) && s.dropped > 0,
          "rotations %llu dropped %llu", (unsigned long long)s.rotations, (unsigned long long)s.dropped);
  } else if (collections > 0) {
    CHECK("threads: collections rotated the pool", s.rotations >= (uint64_t)collections, "rotations %llu",
          (unsigned long long)s.rotations);
  } else {
    CHECK("threads: nothing dropped without rotations", s.dropped == 0 && s.rotations == 0, "dropped %llu",
          (unsigned long long)s.dropped);
  }
  for (size_t i = 0; i < n; i++) free(all[i]);
  free(all);
  goalloc_pool_destroy(shared_pool);
}

// MARK: the victim rule

static void victim(void) {
  enum { N = 100 };
  goalloc_pool *p = goalloc_pool_create(sizeof(struct obj), NULL, NULL);
  static void *mine[N];
  for (int i = 0; i < N; i++) {
    mine[i] = malloc(sizeof(struct obj));
    goalloc_pool_put(p, mine[i]);
  }
  uint64_t f0 = frees();
  goalloc_gc_collect();
  struct goalloc_pool_stats s = stats(p);
  CHECK("one collection: everything moves to the victim cache, nothing is freed",
        s.pooled == 0 && s.victims == N && s.dropped == 0 && s.rotations == 1,
        "pooled %llu victims %llu dropped %llu", (unsigned long long)s.pooled, (unsigned long long)s.victims,
        (unsigned long long)s.dropped);
  void *o = goalloc_pool_get(p);
  int ours = 0;
  for (int i = 0; i < N; i++) if (mine[i] == o) ours = 1;
  CHECK("get finds the victim cache", ours && stats(p).victims == N - 1, "o=%p", o);
  goalloc_pool_put(p, o);  // back into the primary: it survives the next collection
  goalloc_gc_collect();
  s = stats(p);
  CHECK("two collections: the old victims are freed, the object put since is the victim now",
        s.pooled == 0 && s.victims == 1 && s.dropped == N - 1 && frees() - f0 >= N - 1,
        "pooled %llu victims %llu dropped %llu frees %llu", (unsigned long long)s.pooled,
        (unsigned long long)s.victims, (unsigned long long)s.dropped, (unsigned long long)(frees() - f0));
  goalloc_gc_collect();
  s = stats(p);
  CHECK("three collections: nothing left", s.pooled == 0 && s.victims == 0 && s.dropped == N &&
        goalloc_pool_get(p) == NULL, "victims %llu dropped %llu", (unsigned long long)s.victims,
        (unsigned long long)s.dropped);
  goalloc_pool_destroy(p);
}

// MARK: trimming without the GC mode

static void trim(void) {
  enum { N = 300 };
  goalloc_pool *p = goalloc_pool_create(100, count_init, NULL);
  goalloc_pool *q = goalloc_pool_create(5000, count_init, NULL);
  static void *objs[N];
  for (int i = 0; i < N; i++) objs[i] = goalloc_pool_get(p);
  for (int i = 0; i < N; i++) goalloc_pool_put(p, objs[i]);
  goalloc_pool_put(q, goalloc_pool_get(q));
  uint64_t f0 = frees();
  malloc_trim(0);
  struct goalloc_pool_stats s = stats(p);
  CHECK("malloc_trim frees everything a pool holds", s.pooled == 0 && s.victims == 0 && s.dropped == N &&
        stats(q).dropped == 1 && frees() - f0 >= N + 1,
        "pooled %llu victims %llu dropped %llu", (unsigned long long)s.pooled, (unsigned long long)s.victims,
        (unsigned long long)s.dropped);
  int before = inits;
  void *o = goalloc_pool_get(p);
  CHECK("after the trim, get makes a new object", o && inits == before + 1, "");
  goalloc_pool_put(p, o);
  goalloc_release_free_memory();
  CHECK("goalloc_release_free_memory does the same", stats(p).pooled == 0 && stats(p).dropped == N + 1, "dropped %llu",
        (unsigned long long)stats(p).dropped);
  goalloc_pool_destroy(p);
  goalloc_pool_destroy(q);
}

// MARK: threads that exit

static goalloc_pool *exit_pool;
static void *put_and_exit(void *arg) {
  for (int i = 0; i < 50; i++) goalloc_pool_put(exit_pool, malloc(64));
  return arg;
}

static void exiting(void) {
  exit_pool = goalloc_pool_create(64, NULL, NULL);
  for (int round = 0; round < 20; round++) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, put_and_exit, NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  }
  void **all;
  int dup;
  size_t n = drain(exit_pool, &all, &dup);
  CHECK("objects put by threads that exited are all found", n == 20 * 4 * 50 && !dup, "drained %zu", n);
  for (size_t i = 0; i < n; i++) free(all[i]);
  free(all);
  goalloc_pool_destroy(exit_pool);
}

// MARK: fork

static volatile int forking = 1;
static void *churn(void *arg) {
  goalloc_pool *p = arg;
  while (__atomic_load_n(&forking, __ATOMIC_RELAXED)) {
    void *o[8];
    for (int i = 0; i < 8; i++) o[i] = goalloc_pool_get(p);
    for (int i = 0; i < 8; i++) goalloc_pool_put(p, o[i]);
  }
  return NULL;
}

static void forks(void) {
  goalloc_pool *p = goalloc_pool_create(40, count_init, NULL);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, churn, p);
  int bad = 0;
  for (int i = 0; i < 30; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      void *o[20];
      for (int j = 0; j < 20; j++) o[j] = goalloc_pool_get(p);
      for (int j = 0; j < 20; j++) goalloc_pool_put(p, o[j]);
      malloc_trim(0);
      goalloc_pool *c = goalloc_pool_create(16, NULL, NULL);
      goalloc_pool_put(c, malloc(16));
      goalloc_pool_destroy(c);
      _exit(stats(p).pooled == 0 ? 0 : 3);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
  }
  __atomic_store_n(&forking, 0, __ATOMIC_RELAXED);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  CHECK("fork while threads use a pool: the child gets, puts, trims", bad == 0, "%d children failed", bad);
  goalloc_pool_destroy(p);
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  if (!strcmp(what, "basic")) basic();
  else if (!strcmp(what, "threads")) threads(0, 0);
  else if (!strcmp(what, "threads-gc")) threads(40, 0);
  else if (!strcmp(what, "threads-trim")) threads(0, 200);
  else if (!strcmp(what, "victim")) victim();
  else if (!strcmp(what, "trim")) trim();
  else if (!strcmp(what, "exit")) exiting();
  else if (!strcmp(what, "fork")) forks();
  else { fprintf(stderr, "unknown scenario %s\n", what); return 2; }
  return failures ? 1 : 0;
}
