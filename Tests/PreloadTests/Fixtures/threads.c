// Multithreaded allocation stress. Phase 1: 8 threads do random malloc/calloc/realloc/free with
// sizes from 1 B to 64 KiB (and some 1 MiB) and pass objects to each other through a shared,
// mutex-protected exchange, so objects are often freed by a thread other than the one that
// allocated them. Every object is filled with a pattern derived from its address and size and
// checked before it is freed (or reallocated). Phase 2: 200 short-lived threads, 8 at a time,
// each allocating and freeing and leaving objects behind for later threads to free.
// Ends with goalloc_check_heap() when the allocator provides it. Prints "threads: ok ..." and
// exits 0 only if every check held.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NTHREADS = 8, OPS_PER_THREAD = 40000, LOCAL_SLOTS = 128, EXCHANGE_SLOTS = 512 };
enum { SHORT_LIVED = 200, BATCH = 8, SHORT_OPS = 400, LEFT_BEHIND = 16, ORPHAN_CAP = 4096 };

typedef struct { unsigned char *p; size_t n; } obj_t;

static pthread_mutex_t exchange_lock = PTHREAD_MUTEX_INITIALIZER;
static obj_t exchange[EXCHANGE_SLOTS];
static pthread_mutex_t orphan_lock = PTHREAD_MUTEX_INITIALIZER;
static obj_t orphans[ORPHAN_CAP];
static int norphans;
static long errors;        // updated atomically
static long total_ops;     // updated atomically
static long cross_frees;   // objects freed by a thread that took them from the exchange

static uint64_t next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13; x ^= x >> 7; x ^= x << 17;
  return *s = x;
}

static uint64_t word_at(uintptr_t base, size_t n, size_t i) {
  return (base * 0x9E3779B97F4A7C15ull) ^ (n << 20) ^ (i * 0xBF58476D1CE4E5B9ull);
}

// The pattern depends on the object's address and size only, so any thread can check it.
static void fill(unsigned char *p, size_t n) {
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w = word_at((uintptr_t)p, n, i);
    memcpy(p + 8 * i, &w, 8);
  }
  for (size_t i = words * 8; i < n; i++) p[i] = (unsigned char)(((uintptr_t)p >> 4) + i + n);
}

// Checks the first `n` bytes of a pattern written for an object of `n0` bytes at `base`.
static int check_prefix(const unsigned char *p, uintptr_t base, size_t n0, size_t n) {
  size_t words = n0 / 8;
  for (size_t i = 0; i < words && 8 * i + 8 <= n; i++) {
    uint64_t w;
    memcpy(&w, p + 8 * i, 8);
    if (w != word_at(base, n0, i)) return 0;
  }
  for (size_t i = words * 8; i < n; i++)
    if (p[i] != (unsigned char)((base >> 4) + i + n0)) return 0;
  return 1;
}

static void bad(const char *what, const obj_t *o) {
  __atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
  fprintf(stderr, "threads: %s: object %p (%zu bytes) corrupted\n", what, (void *)o->p, o->n);
}

static void release(obj_t *o) {
  if (!o->p) return;
  if (!check_prefix(o->p, (uintptr_t)o->p, o->n, o->n)) bad("free", o);
  free(o->p);
  o->p = NULL;
  o->n = 0;
}

static size_t random_size(uint64_t *s) {
  uint64_t r = next(s);
  unsigned k = (unsigned)(r % 1000);
  r >>= 10;
  if (k == 0) return (1 << 20) + r % 4096;  // about one in a thousand: 1 MiB
  if (k < 700) return 1 + r % 256;
  if (k < 950) return 257 + r % (8192 - 256);
  return 8193 + r % (65536 - 8192);
}

static int allocate(obj_t *o, uint64_t *s) {
  size_t n = random_size(s);
  unsigned char *p;
  if (next(s) % 8 == 0) {
    p = calloc(1, n);
    if (p)
      for (size_t i = 0; i < n; i++)
        if (p[i] != 0) { obj_t t = {p, n}; bad("calloc not zero", &t); break; }
  } else {
    p = malloc(n);
  }
  if (!p) {
    __atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
    fprintf(stderr, "threads: allocation of %zu bytes failed\n", n);
    return 0;
  }
  fill(p, n);
  o->p = p;
  o->n = n;
  return 1;
}

static void reallocate(obj_t *o, uint64_t *s) {
  size_t m = random_size(s);
  uintptr_t old = (uintptr_t)o->p;
  size_t n0 = o->n;
  if (!check_prefix(o->p, old, n0, n0)) bad("before realloc", o);
  unsigned char *q = realloc(o->p, m);
  if (!q) {
    __atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
    fprintf(stderr, "threads: realloc to %zu bytes failed\n", m);
    return;
  }
  obj_t t = {q, m};
  if (!check_prefix(q, old, n0, n0 < m ? n0 : m)) bad("realloc lost contents", &t);
  fill(q, m);
  o->p = q;
  o->n = m;
}

static void *worker(void *arg) {
  uint64_t seed = 0x243F6A8885A308D3ull * ((uintptr_t)arg + 1);
  obj_t local[LOCAL_SLOTS] = {{0}};
  for (int op = 0; op < OPS_PER_THREAD; op++) {
    uint64_t r = next(&seed);
    obj_t *o = &local[r % LOCAL_SLOTS];
    unsigned action = (unsigned)((r >> 16) % 10);
    if (!o->p) {
      allocate(o, &seed);
    } else if (action < 5) {
      release(o);
    } else if (action < 6) {
      reallocate(o, &seed);
    } else {
      // Swap with a random exchange slot: what we take was probably allocated elsewhere.
      size_t e = (size_t)((r >> 24) % EXCHANGE_SLOTS);
      pthread_mutex_lock(&exchange_lock);
      obj_t mine = *o;
      *o = exchange[e];
      exchange[e] = mine;
      pthread_mutex_unlock(&exchange_lock);
      if (o->p) {
        __atomic_add_fetch(&cross_frees, 1, __ATOMIC_RELAXED);
        release(o);
      }
    }
  }
  for (int i = 0; i < LOCAL_SLOTS; i++) release(&local[i]);
  __atomic_add_fetch(&total_ops, OPS_PER_THREAD, __ATOMIC_RELAXED);
  return NULL;
}

static void *short_lived(void *arg) {
  uint64_t seed = 0x13198A2E03707344ull ^ ((uintptr_t)arg * 0x9E3779B97F4A7C15ull);
  obj_t mine[32] = {{0}};
  // Free some of what earlier threads left behind.
  pthread_mutex_lock(&orphan_lock);
  int take = norphans < LEFT_BEHIND ? norphans : LEFT_BEHIND;
  obj_t taken[LEFT_BEHIND];
  for (int i = 0; i < take; i++) taken[i] = orphans[--norphans];
  pthread_mutex_unlock(&orphan_lock);
  for (int i = 0; i < take; i++) release(&taken[i]);
  for (int op = 0; op < SHORT_OPS; op++) {
    obj_t *o = &mine[next(&seed) % 32];
    if (o->p) release(o);
    else allocate(o, &seed);
  }
  // Leave up to LEFT_BEHIND live objects for others; free the rest.
  int left = 0;
  pthread_mutex_lock(&orphan_lock);
  for (int i = 0; i < 32; i++) {
    if (mine[i].p && left < LEFT_BEHIND && norphans < ORPHAN_CAP) {
      orphans[norphans++] = mine[i];
      mine[i].p = NULL;
      left++;
    }
  }
  pthread_mutex_unlock(&orphan_lock);
  for (int i = 0; i < 32; i++) release(&mine[i]);
  __atomic_add_fetch(&total_ops, SHORT_OPS, __ATOMIC_RELAXED);
  return NULL;
}

int main(void) {
  pthread_t t[NTHREADS];
  for (uintptr_t i = 0; i < NTHREADS; i++)
    if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) { fprintf(stderr, "threads: pthread_create failed\n"); return 2; }
  for (int i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);

  int started = 0;
  for (int b = 0; b < SHORT_LIVED / BATCH; b++) {
    pthread_t s[BATCH];
    for (int i = 0; i < BATCH; i++) {
      if (pthread_create(&s[i], NULL, short_lived, (void *)(uintptr_t)started++) != 0) {
        fprintf(stderr, "threads: pthread_create failed\n");
        return 2;
      }
    }
    for (int i = 0; i < BATCH; i++) pthread_join(s[i], NULL);
  }

  int leftover = norphans;
  while (norphans > 0) release(&orphans[--norphans]);
  int exchanged = 0;
  for (int e = 0; e < EXCHANGE_SLOTS; e++) {
    if (exchange[e].p) exchanged++;
    release(&exchange[e]);
  }

  int (*check_heap)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "goalloc_check_heap");
  const char *heap = "unchecked";
  if (check_heap) {
    int ok = check_heap();
    heap = ok ? "consistent" : "BROKEN";
    if (!ok) errors++;
  }
  printf("threads: %s ops=%ld threads=%d cross_frees=%s orphans=%s exchange=%s heap=%s errors=%ld\n",
         errors == 0 ? "ok" : "FAILED", total_ops, NTHREADS + started,
         cross_frees > 1000 ? "many" : "few", leftover > 0 ? "yes" : "no", exchanged > 0 ? "yes" : "no",
         heap, errors);
  return errors == 0 ? 0 : 1;
}
