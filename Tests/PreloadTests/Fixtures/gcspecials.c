// Finalizers, cleanups and weak pointers through the C API (run under libgoalloc.so, linked
// with it), one scenario per argument. Each prints "ok <name>" lines or "FAIL <name>: why" and
// exits 1 on a failure. Waiting is bounded polling around explicit collections (never a sleep
// that must be long enough): `settle` collects, then waits up to 20 s for the cleanup thread.
#define _GNU_SOURCE
#include <goalloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;
#define CHECK(name, cond, ...) do { if (cond) printf("ok %s\n", name); else { printf("FAIL %s: ", name); printf(__VA_ARGS__); printf("\n"); failures++; } fflush(stdout); } while (0)

static long tid(void) { return (long)syscall(SYS_gettid); }

/// Zeroes a stretch of the stack below the caller, so dead frames hold no stale pointers.
__attribute__((noinline)) static void clear_stack(void) {
  volatile char buf[32 * 1024];
  memset((char *)buf, 0, sizeof buf);
}
/// Waits (bounded: 20 s) until no cleanup or finalizer is queued or running. 1 when idle.
static int wait_idle(void) {
  for (int i = 0; i < 40000; i++) {
    if (goalloc_gc_cleanups_pending() == 0) return 1;
    usleep(500);
  }
  return 0;
}
__attribute__((noinline)) static void settle(void) {
  clear_stack();
  if (goalloc_gc_collect() != 0) { printf("FAIL collect refused\n"); failures++; }
  if (!wait_idle()) { printf("FAIL the cleanup thread did not go idle within 20 s\n"); failures++; }
}

// A pointer hidden from the collector (so a test can remember an address without keeping it),
// unhidden through a volatile (no plain copy stays in a callee-saved register).
static uintptr_t hide(void *p) { return (uintptr_t)p ^ 0x5a5a5a5a5a5a5a5aull; }
static void *unhide(uintptr_t h) { volatile uintptr_t x = h; return (void *)(x ^ 0x5a5a5a5a5a5a5a5aull); }

#define MAGIC 0x600dcafe5eedf00dull
struct node {
  uint64_t magic;
  uint64_t id;
  struct node *e[3];
};

// ---- cleanups ----
static int cl_runs[64];
static long cl_tid[64];
static void count_cleanup(void *arg) {
  intptr_t i = (intptr_t)arg;
  cl_tid[i] = tid();
  __atomic_add_fetch(&cl_runs[i], 1, __ATOMIC_SEQ_CST);
}
static int runs(int i) { return __atomic_load_n(&cl_runs[i], __ATOMIC_SEQ_CST); }

// Roots in the data segment: not static, so the compiler keeps every store to them.
void *held;

/// An object with n cleanups (ids first..first+n-1), each set at another interior address.
__attribute__((noinline)) static uintptr_t with_cleanups(int first, int n, goalloc_gc_cleanup *handles) {
  char *p = goalloc_gc_malloc(48);
  for (int k = 0; k < n; k++) handles[k] = goalloc_gc_add_cleanup(p + 8 * k, count_cleanup, (void *)(intptr_t)(first + k));
  return hide(p);
}

__attribute__((noinline)) static void large_and_freed(void) {
  char *big = goalloc_gc_malloc(100 << 10);
  goalloc_gc_add_cleanup(big + 50000, count_cleanup, (void *)(intptr_t)20);
  char *gone = goalloc_gc_malloc(48), *gone2 = goalloc_gc_malloc(200 << 10);
  goalloc_gc_add_cleanup(gone, count_cleanup, (void *)(intptr_t)21);
  goalloc_gc_add_cleanup(gone2, count_cleanup, (void *)(intptr_t)22);
  goalloc_gc_free(gone);
  free(gone2);
}

static void scenario_cleanup(void) {
  long me = tid();
  goalloc_gc_cleanup hs[4];  // on the stack: the handles hold the address hidden
  held = unhide(with_cleanups(0, 3, hs));
  CHECK("add_cleanup returns distinct handles", hs[0].id != 0 && hs[1].id != hs[0].id && hs[2].id != hs[1].id, "ids %llu %llu %llu",
        (unsigned long long)hs[0].id, (unsigned long long)hs[1].id, (unsigned long long)hs[2].id);
  for (int i = 0; i < 3; i++) settle();
  CHECK("no cleanup runs while its object is reachable", runs(0) + runs(1) + runs(2) == 0, "ran %d %d %d", runs(0), runs(1), runs(2));
  held = NULL;
  for (int i = 0; i < 10 && runs(0) + runs(1) + runs(2) < 3; i++) settle();
  CHECK("each cleanup of an unreachable object runs once", runs(0) == 1 && runs(1) == 1 && runs(2) == 1, "ran %d %d %d", runs(0), runs(1), runs(2));
  CHECK("cleanups run on one dedicated thread, not the allocating one", cl_tid[0] != me && cl_tid[0] == cl_tid[1] && cl_tid[1] == cl_tid[2],
        "tids main %ld: %ld %ld %ld", me, cl_tid[0], cl_tid[1], cl_tid[2]);
  settle(); settle();
  CHECK("and never again", runs(0) == 1 && runs(1) == 1 && runs(2) == 1, "ran %d %d %d", runs(0), runs(1), runs(2));

  held = unhide(with_cleanups(10, 2, hs));
  CHECK("cancel of a pending cleanup", goalloc_gc_cancel_cleanup(hs[0]) == 1, "returned 0");
  CHECK("a second cancel finds nothing", goalloc_gc_cancel_cleanup(hs[0]) == 0, "returned 1");
  held = NULL;
  for (int i = 0; i < 10 && runs(11) == 0; i++) settle();
  CHECK("a cancelled cleanup never runs, its sibling does", runs(10) == 0 && runs(11) == 1, "ran %d %d", runs(10), runs(11));
  CHECK("cancel after the run finds nothing", goalloc_gc_cancel_cleanup(hs[1]) == 0, "returned 1");
  goalloc_gc_cleanup none = {0, 0};
  CHECK("cancel of a refused handle finds nothing", goalloc_gc_cancel_cleanup(none) == 0, "returned 1");

  // Refusals (each writes one line on stderr).
  char *q = goalloc_gc_malloc(32);
  goalloc_gc_cleanup self = goalloc_gc_add_cleanup(q, count_cleanup, q);
  goalloc_gc_cleanup inner = goalloc_gc_add_cleanup(q + 8, count_cleanup, q + 16);
  void *m = malloc(32);
  goalloc_gc_cleanup mal = goalloc_gc_add_cleanup(m, count_cleanup, NULL);
  goalloc_gc_cleanup nofn = goalloc_gc_add_cleanup(q, NULL, NULL);
  CHECK("arg pointing into the object, malloc memory and a NULL fn are refused",
        self.id == 0 && inner.id == 0 && mal.id == 0 && nofn.id == 0, "ids %llu %llu %llu %llu",
        (unsigned long long)self.id, (unsigned long long)inner.id, (unsigned long long)mal.id, (unsigned long long)nofn.id);
  free(m);

  // A large object, and explicit frees (their cleanups are dropped, not run).
  large_and_freed();
  for (int i = 0; i < 10 && runs(20) == 0; i++) settle();
  CHECK("a large object's cleanup runs once it is unreachable", runs(20) == 1, "ran %d", runs(20));
  CHECK("goalloc_gc_free and free drop an object's cleanups", runs(21) == 0 && runs(22) == 0, "ran %d %d", runs(21), runs(22));
}

// ---- finalizers ----
void *saved;  // where the finalizer resurrects its object
static int fin_runs, fin_intact, fin_order_ok, after_fin;
goalloc_gc_weak *gw;  // (data segment: the handle stays)
static void resurrect(void *obj, void *arg) {
  struct node *n = obj;
  fin_intact = n->magic == MAGIC && arg == (void *)7 && n->e[0] && n->e[0]->magic == MAGIC;
  fin_order_ok = runs(30) == 0;  // the object's cleanup waits for the finalizer
  saved = obj;
  __atomic_add_fetch(&fin_runs, 1, __ATOMIC_SEQ_CST);
}
static void never(void *obj, void *arg) { (void)obj; (void)arg; __atomic_add_fetch(&after_fin, 1, __ATOMIC_SEQ_CST); }

__attribute__((noinline)) static void make_finalizable(void) {
  struct node *n = goalloc_gc_malloc(sizeof *n), *child = goalloc_gc_malloc(sizeof *child);
  n->magic = child->magic = MAGIC;
  n->e[0] = child;
  if (goalloc_gc_set_finalizer(n, resurrect, (void *)7) != 0) { printf("FAIL set_finalizer refused\n"); failures++; }
  goalloc_gc_add_cleanup(n, count_cleanup, (void *)(intptr_t)30);
  gw = goalloc_gc_weak_make(n);
}

__attribute__((noinline)) static int saved_intact(void) {
  struct node *n = saved;
  return n && n->magic == MAGIC && n->e[0]->magic == MAGIC;
}
__attribute__((noinline)) static void finalizer_misuse(int *first, int *second, int *removed, int *interior, int *self) {
  char *p = goalloc_gc_malloc(64);
  *first = goalloc_gc_set_finalizer(p, never, NULL);
  *second = goalloc_gc_set_finalizer(p, never, NULL);
  *removed = goalloc_gc_set_finalizer(p, NULL, NULL);
  *interior = goalloc_gc_set_finalizer(p + 8, never, NULL);
  *self = goalloc_gc_set_finalizer(p, never, p + 8);
  char *f = goalloc_gc_malloc(64);
  goalloc_gc_set_finalizer(f, never, NULL);
  goalloc_gc_free(f);
}

static void scenario_finalizer(void) {
  make_finalizable();
  for (int i = 0; i < 10 && __atomic_load_n(&fin_runs, __ATOMIC_SEQ_CST) == 0; i++) settle();
  CHECK("the finalizer runs once its object is unreachable", fin_runs == 1, "ran %d", fin_runs);
  CHECK("the object and what it reaches are intact for the finalizer", fin_intact, "damaged");
  CHECK("the object's cleanup waits for its finalizer", fin_order_ok && runs(30) == 0, "cleanup ran %d", runs(30));
  CHECK("a weak pointer is cleared when the finalizer is queued", goalloc_gc_weak_get(gw) == NULL && saved != NULL, "weak %p", goalloc_gc_weak_get(gw));
  for (int i = 0; i < 3; i++) settle();
  CHECK("the resurrected object survives, the finalizer does not run again",
        saved_intact() && fin_runs == 1 && runs(30) == 0, "runs %d cleanup %d", fin_runs, runs(30));
  saved = NULL;
  for (int i = 0; i < 10 && runs(30) == 0; i++) settle();
  CHECK("once unreachable again, the cleanup runs (after the finalizer)", runs(30) == 1 && fin_runs == 1, "cleanup %d finalizer %d", runs(30), fin_runs);

  int first, second, removed, interior, self;
  finalizer_misuse(&first, &second, &removed, &interior, &self);
  CHECK("one finalizer per object; NULL removes it; the start only; arg not into the object",
        first == 0 && second == -1 && removed == 0 && interior == -1 && self == -1, "%d %d %d %d %d", first, second, removed, interior, self);
  for (int i = 0; i < 3; i++) settle();
  CHECK("a removed finalizer and a freed object's finalizer never run", after_fin == 0, "ran %d", after_fin);
}

// ---- ordering: a chain a -> b -> c of finalizable objects, a self-cycle ----
static int order[8], norder;
static void record(void *obj, void *arg) {
  (void)obj;
  int k = __atomic_fetch_add(&norder, 1, __ATOMIC_SEQ_CST);
  if (k < 8) order[k] = (int)(intptr_t)arg;
}
__attribute__((noinline)) static void make_chain(void) {
  struct node *a = goalloc_gc_malloc(sizeof *a), *b = goalloc_gc_malloc(sizeof *b), *c = goalloc_gc_malloc(sizeof *c);
  struct node *x = goalloc_gc_malloc(sizeof *x);
  a->e[0] = b;
  b->e[0] = c;
  x->e[1] = x;  // reaches itself
  // Registered in the reverse order, so the order seen is the collector's, not the queue's.
  goalloc_gc_set_finalizer(c, record, (void *)3);
  goalloc_gc_set_finalizer(b, record, (void *)2);
  goalloc_gc_set_finalizer(a, record, (void *)1);
  goalloc_gc_set_finalizer(x, record, (void *)9);
}
static void scenario_chain(void) {
  make_chain();
  for (int i = 0; i < 20 && __atomic_load_n(&norder, __ATOMIC_SEQ_CST) < 3; i++) settle();
  for (int i = 0; i < 3; i++) settle();
  CHECK("a chain is finalized from its head: a, then b, then c", norder == 3 && order[0] == 1 && order[1] == 2 && order[2] == 3,
        "%d finalized: %d %d %d %d", norder, order[0], order[1], order[2], order[3]);
  CHECK("an object with a finalizer that reaches itself is never finalized", norder == 3, "%d finalized", norder);
}

// ---- weak pointers ----
goalloc_gc_weak *w1, *w2, *wq, *wi, *wl, *wf, *wf2;
static uintptr_t hidden_handle;
__attribute__((noinline)) static void forget_handle(void) { hidden_handle = hide(goalloc_gc_weak_make(held)); }
__attribute__((noinline)) static void make_large(void) {
  char *l = goalloc_gc_malloc(300 << 10);
  wl = goalloc_gc_weak_make(l + 1000);
  goalloc_gc_add_cleanup(l, count_cleanup, (void *)(intptr_t)40);
}
__attribute__((noinline)) static void make_weak(void) {
  held = goalloc_gc_malloc(64);
  w1 = goalloc_gc_weak_make(held);
  w2 = goalloc_gc_weak_make(held);
  wq = goalloc_gc_weak_make(goalloc_gc_malloc(64));
  wi = goalloc_gc_weak_make((char *)held + 8);
}
__attribute__((noinline)) static void free_weak(void) {
  char *f = goalloc_gc_malloc(64), *g = goalloc_gc_malloc(64);
  wf = goalloc_gc_weak_make(f);
  wf2 = goalloc_gc_weak_make(g);
  goalloc_gc_free(f);
  free(g);
}
static void scenario_weak(void) {
  make_weak();
  CHECK("two weak pointers from one pointer are equal", w1 && w1 == w2, "%p %p", (void *)w1, (void *)w2);
  CHECK("other objects, other addresses: other weak pointers", wq != w1 && wi != w1 && wi != NULL, "%p %p %p", (void *)w1, (void *)wq, (void *)wi);
  CHECK("get returns the pointer while the object lives", goalloc_gc_weak_get(w1) == held && goalloc_gc_weak_get(wi) == (char *)held + 8, "got %p", goalloc_gc_weak_get(w1));
  void *m = malloc(16);
  CHECK("NULL and malloc memory give no weak pointer", goalloc_gc_weak_make(NULL) == NULL && goalloc_gc_weak_make(m) == NULL && goalloc_gc_weak_get(NULL) == NULL, "made one");
  free(m);
  forget_handle();
  for (int i = 0; i < 3; i++) settle();
  CHECK("the object keeps its handle: the same weak pointer later", goalloc_gc_weak_make(held) == unhide(hidden_handle) && goalloc_gc_weak_get(w1) == held,
        "handle changed");
  held = NULL;
  for (int i = 0; i < 10 && goalloc_gc_weak_get(w1) != NULL; i++) settle();
  CHECK("cleared once the object is unreachable (every address of it)", goalloc_gc_weak_get(w1) == NULL && goalloc_gc_weak_get(wi) == NULL, "still %p", goalloc_gc_weak_get(w1));
  for (int i = 0; i < 10 && goalloc_gc_weak_get(wq) != NULL; i++) settle();
  CHECK("the other object's too", goalloc_gc_weak_get(wq) == NULL, "still %p", goalloc_gc_weak_get(wq));

  make_large();
  clear_stack();
  for (int i = 0; i < 10 && goalloc_gc_weak_get(wl) != NULL; i++) settle();
  CHECK("a large object's weak pointer is cleared with its cleanup queued", goalloc_gc_weak_get(wl) == NULL && runs(40) == 1, "weak %p cleanup %d",
        goalloc_gc_weak_get(wl), runs(40));

  free_weak();
  CHECK("goalloc_gc_free and free clear the weak pointers at once", goalloc_gc_weak_get(wf) == NULL && goalloc_gc_weak_get(wf2) == NULL, "%p %p",
        goalloc_gc_weak_get(wf), goalloc_gc_weak_get(wf2));
}

// ---- the fuzzer: random graphs, cleanups, finalizers, weak pointers, explicit frees ----
// Classes: N objects point anywhere (cycles), D objects are noscan leaves, F objects have a
// finalizer and point only at D objects (so no finalizable object ever reaches itself). The
// model (edges as indices, roots) mirrors the heap exactly; an object the model cannot reach
// is dead and never touched again; a freed one is removed from the graph first.
#define FZ_MAX 8000
#define FZ_ROOTS 24
enum { CN, CD, CF };
enum { LIVE, DEAD, FREED };
void *fz_roots[FZ_ROOTS];                  // the roots (data segment)
goalloc_gc_weak *fz_weak[FZ_MAX];          // handles (data segment: kept)
static uintptr_t fz_addr[FZ_MAX];          // hidden addresses
static int fz_edge[FZ_MAX][3], fz_root[FZ_ROOTS];
static unsigned char fz_cls[FZ_MAX], fz_state[FZ_MAX], fz_seen[FZ_MAX];
static int fz_cleanups[FZ_MAX], fz_fins[FZ_MAX];
static int fz_n, fz_violations;
static int fz_queue[FZ_MAX];
static uint64_t fz_rng;

static uint32_t rnd(uint32_t n) {
  fz_rng ^= fz_rng << 13; fz_rng ^= fz_rng >> 7; fz_rng ^= fz_rng << 17;
  return (uint32_t)(fz_rng % n);
}
static struct node *obj(int i) { return unhide(fz_addr[i]); }

static void fz_cleanup(void *arg) {
  int i = (int)(intptr_t)arg - 1;
  if (fz_cls[i] == CF && __atomic_load_n(&fz_fins[i], __ATOMIC_SEQ_CST) != 1) __atomic_add_fetch(&fz_violations, 1, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&fz_cleanups[i], 1, __ATOMIC_SEQ_CST);
}
static void fz_finalizer(void *o, void *arg) {
  int i = (int)(intptr_t)arg - 1;
  struct node *n = o;
  int bad = n->magic != MAGIC || n->id != (uint64_t)i;
  for (int k = 0; k < 3; k++) if (n->e[k] && (n->e[k]->magic != MAGIC)) bad = 1;  // its D children are kept for it
  if (bad) __atomic_add_fetch(&fz_violations, 1, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&fz_fins[i], 1, __ATOMIC_SEQ_CST);
}

/// Marks what the model reaches; the live objects it does not reach die.
static void fz_reach(void) {
  memset(fz_seen, 0, (size_t)fz_n);
  int head = 0, tail = 0;
  for (int r = 0; r < FZ_ROOTS; r++) {
    int i = fz_root[r];
    if (i >= 0 && !fz_seen[i]) { fz_seen[i] = 1; fz_queue[tail++] = i; }
  }
  while (head < tail) {
    int i = fz_queue[head++];
    for (int k = 0; k < 3; k++) {
      int j = fz_edge[i][k];
      if (j >= 0 && !fz_seen[j]) { fz_seen[j] = 1; fz_queue[tail++] = j; }
    }
  }
  for (int i = 0; i < fz_n; i++) if (fz_state[i] == LIVE && !fz_seen[i]) fz_state[i] = DEAD;
}
/// A random reachable object (of class `cls`, or any when -1), or -1.
static int fz_pick(int cls) {
  if (fz_n == 0) return -1;
  for (int t = 0; t < 64; t++) {
    int i = (int)rnd((uint32_t)fz_n);
    if (fz_seen[i] && (cls < 0 || fz_cls[i] == cls)) return i;
  }
  return -1;
}
static void fz_set_edge(int i, int k, int j) {
  fz_edge[i][k] = j;
  obj(i)->e[k] = j >= 0 ? obj(j) : NULL;
}
static void fz_set_root(int r, int j) {
  fz_root[r] = j;
  fz_roots[r] = j >= 0 ? obj(j) : NULL;
}

__attribute__((noinline)) static void fz_new(void) {
  if (fz_n == FZ_MAX) return;
  int i = fz_n, cls = rnd(10) < 5 ? CN : rnd(2) ? CD : CF;
  size_t size = sizeof(struct node) + rnd(cls == CD ? 480 : cls == CN ? 220 : 40);
  if (cls == CN && rnd(150) == 0) size = 40 << 10;  // a large object now and then
  struct node *n = cls == CD ? goalloc_gc_malloc_noscan(size) : goalloc_gc_malloc(size);
  if (!n) { printf("FAIL fuzz: out of memory\n"); failures++; return; }
  memset(n, 0, sizeof *n);
  n->magic = MAGIC;
  n->id = (uint64_t)i;
  fz_addr[i] = hide(n);
  fz_cls[i] = (unsigned char)cls;
  fz_state[i] = LIVE;
  fz_edge[i][0] = fz_edge[i][1] = fz_edge[i][2] = -1;
  fz_n++;
  if (goalloc_gc_add_cleanup((char *)n + rnd((uint32_t)size), fz_cleanup, (void *)(intptr_t)(i + 1)).id == 0) {
    printf("FAIL fuzz: add_cleanup refused\n");
    failures++;
  }
  if (rnd(2)) fz_weak[i] = goalloc_gc_weak_make(n);
  if (cls == CF) goalloc_gc_set_finalizer(n, fz_finalizer, (void *)(intptr_t)(i + 1));
  // Reachable from a root or from a reachable N object (an F object also from its D children's
  // side is not allowed: F only points at D).
  int from = fz_pick(CN);
  if (from >= 0 && rnd(3)) fz_set_edge(from, (int)rnd(3), i);
  else fz_set_root((int)rnd(FZ_ROOTS), i);
  fz_seen[i] = 1;
  if (cls == CF) {  // its D children, fresh or existing
    int d = fz_pick(CD);
    if (d >= 0) fz_set_edge(i, 0, d);
  }
  n = NULL;
  fz_reach();
}

__attribute__((noinline)) static void fz_mutate(void) {
  uint32_t op = rnd(100);
  if (op < 40) { fz_new(); return; }
  if (op < 60) {  // a root to another reachable object or to nothing
    int j = rnd(4) ? fz_pick(-1) : -1;
    fz_set_root((int)rnd(FZ_ROOTS), j);
  } else if (op < 90) {  // an edge of an N object to anything, of an F object to a D object
    int i = fz_pick(rnd(4) ? CN : CF);
    if (i < 0) return;
    int j = rnd(5) ? fz_pick(fz_cls[i] == CF ? CD : -1) : -1;
    fz_set_edge(i, fz_cls[i] == CF ? 0 : (int)rnd(3), j);
  } else {  // an explicit free: every reference to it goes first
    int x = fz_pick(rnd(3) ? CN : CD);
    if (x < 0) return;
    for (int r = 0; r < FZ_ROOTS; r++) if (fz_root[r] == x) fz_set_root(r, -1);
    for (int i = 0; i < fz_n; i++)
      if (fz_seen[i]) for (int k = 0; k < 3; k++) if (fz_edge[i][k] == x) fz_set_edge(i, k, -1);
    goalloc_gc_free(obj(x));
    fz_state[x] = FREED;
    fz_seen[x] = 0;
    if (fz_weak[x] && goalloc_gc_weak_get(fz_weak[x]) != NULL) { printf("FAIL fuzz: free left a weak pointer set\n"); failures++; }
  }
  fz_reach();
}

/// After a settle: nothing reachable was finalized, cleaned up or cleared; nothing ran twice;
/// a weak pointer is cleared exactly when its object died (its finalizer or cleanup ran).
static int fz_check(int round) {
  int bad = 0;
  for (int i = 0; i < fz_n; i++) {
    int c = __atomic_load_n(&fz_cleanups[i], __ATOMIC_SEQ_CST), f = __atomic_load_n(&fz_fins[i], __ATOMIC_SEQ_CST);
    void *w = fz_weak[i] ? goalloc_gc_weak_get(fz_weak[i]) : NULL;
    const char *why = NULL;
    if (c > 1 || f > 1) why = "ran twice";
    else if (fz_state[i] == LIVE && (c || f)) why = "ran while reachable";
    else if (fz_state[i] == LIVE && obj(i)->magic != MAGIC) why = "reachable object damaged";
    else if (fz_state[i] == LIVE && fz_weak[i] && w != obj(i)) why = "weak pointer of a reachable object cleared";
    else if (fz_state[i] == FREED && (c || f || w)) why = "freed object's specials not dropped";
    else if (fz_state[i] == DEAD && fz_weak[i] && (w == NULL) != (fz_cls[i] == CF ? f == 1 : c == 1)) why = "weak pointer out of step with the object's death";
    else if (fz_cls[i] == CF && c && !f) why = "cleanup before the finalizer";
    if (why) {
      if (bad < 5) printf("FAIL fuzz round %d: object %d (class %d, state %d, cleanups %d, finalizers %d, weak %p): %s\n",
                          round, i, fz_cls[i], fz_state[i], c, f, w, why);
      bad++;
    }
  }
  return bad;
}

static void scenario_fuzz(uint64_t seed, int rounds) {
  fz_rng = seed * 2654435761u + 1;
  for (int r = 0; r < FZ_ROOTS; r++) fz_root[r] = -1;
  int bad = 0;
  for (int round = 0; round < rounds && !bad; round++) {
    for (int k = 0; k < 150; k++) fz_mutate();
    settle();
    bad += fz_check(round);
  }
  CHECK("fuzz: never early, never twice, weak pointers in step (every round)", bad == 0 && fz_violations == 0,
        "%d bad objects, %d violations seen by the callbacks", bad, fz_violations);
  // The end: F objects let go of their children, the roots go; everything dies.
  for (int i = 0; i < fz_n; i++) if (fz_seen[i] && fz_cls[i] == CF) fz_set_edge(i, 0, -1);
  for (int r = 0; r < FZ_ROOTS; r++) fz_set_root(r, -1);
  fz_reach();
  int dead = 0, done = 0, last = -1;
  for (int i = 0; i < fz_n; i++) dead += fz_state[i] == DEAD;
  for (int t = 0; t < 30 && done != last; t++) {
    last = done;
    for (int k = 0; k < 3; k++) settle();
    done = 0;
    for (int i = 0; i < fz_n; i++) done += fz_state[i] == DEAD && fz_cleanups[i] == 1;
  }
  bad = fz_check(rounds);
  CHECK("fuzz: at the end the checks hold", bad == 0 && fz_violations == 0, "%d bad, %d violations", bad, fz_violations);
  CHECK("fuzz: the cleanups of dead objects ran (conservative roots may keep a few)", done * 100 >= dead * 97,
        "%d of %d", done, dead);
  printf("fuzz: %d objects, %d dead, %d cleaned up\n", fz_n, dead, done);
}

// ---- threads adding cleanups and weak pointers while others collect ----
#define ST_THREADS 3
#define ST_EACH 20000
static int st_runs[ST_THREADS * ST_EACH];
static long st_tids[ST_THREADS], st_cleanup_tid;
static int st_twice;
static void st_cleanup(void *arg) {
  int i = (int)(intptr_t)arg - 1;
  st_cleanup_tid = tid();
  if (__atomic_add_fetch(&st_runs[i], 1, __ATOMIC_SEQ_CST) > 1) __atomic_add_fetch(&st_twice, 1, __ATOMIC_SEQ_CST);
}
static void *st_worker(void *arg) {
  int t = (int)(intptr_t)arg;
  st_tids[t] = tid();
  void *keep[8] = {0};
  for (int k = 0; k < ST_EACH; k++) {
    char *p = goalloc_gc_malloc(24 + (size_t)(k % 7) * 16);
    int id = t * ST_EACH + k;
    goalloc_gc_add_cleanup(p, st_cleanup, (void *)(intptr_t)(id + 1));
    if (k % 3 == 0) {
      goalloc_gc_weak *w = goalloc_gc_weak_make(p);
      if (goalloc_gc_weak_get(w) != p) __atomic_add_fetch(&st_twice, 1000000, __ATOMIC_SEQ_CST);
    }
    if (k % 5 == 0) {
      goalloc_gc_cleanup c = goalloc_gc_add_cleanup(p, st_cleanup, (void *)(intptr_t)(id + 1));
      goalloc_gc_cancel_cleanup(c);
    }
    keep[k % 8] = p;  // a few stay reachable for a while
    if (k % 2000 == 0) goalloc_gc_collect();
  }
  (void)keep;
  return NULL;
}
static void scenario_threads(void) {
  pthread_t th[ST_THREADS];
  for (int t = 0; t < ST_THREADS; t++) pthread_create(&th[t], NULL, st_worker, (void *)(intptr_t)t);
  for (int t = 0; t < ST_THREADS; t++) pthread_join(th[t], NULL);
  int done = 0, last = -1;
  for (int t = 0; t < 10 && done != last; t++) {
    last = done;
    settle(); settle();
    done = 0;
    for (int i = 0; i < ST_THREADS * ST_EACH; i++) done += st_runs[i] == 1;
  }
  CHECK("threads: no cleanup ran twice (a cancelled twin never ran)", st_twice == 0, "%d", st_twice);
  CHECK("threads: the cleanups of unreachable objects ran", done * 100 >= ST_THREADS * ST_EACH * 97, "%d of %d", done, ST_THREADS * ST_EACH);
  int other = 1;
  for (int t = 0; t < ST_THREADS; t++) other &= st_tids[t] != st_cleanup_tid;
  CHECK("threads: cleanups ran on none of the allocating threads", other && st_cleanup_tid != tid(), "tid %ld", st_cleanup_tid);
}

// ---- fork: the child gets a cleanup thread of its own ----
__attribute__((noinline)) static void child_object(void) {
  char *p = goalloc_gc_malloc(40);
  goalloc_gc_add_cleanup(p, count_cleanup, (void *)(intptr_t)50);
}
static void scenario_fork(void) {
  held = goalloc_gc_malloc(40);
  goalloc_gc_add_cleanup(held, count_cleanup, (void *)(intptr_t)51);  // the parent's thread starts
  settle();
  pid_t pid = fork();
  if (pid == 0) {
    child_object();
    held = NULL;
    for (int i = 0; i < 10 && (runs(50) == 0 || runs(51) == 0); i++) settle();
    _exit(runs(50) == 1 && runs(51) == 1 ? 0 : 3);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  CHECK("fork: the child runs its cleanups on its own cleanup thread", WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
  CHECK("fork: the parent's object is still reachable here", runs(51) == 0, "ran %d", runs(51));
}

// ---- README's weak-keyed cache, as printed there ----
#define SLOTS 1024
struct entry { goalloc_gc_weak *key; void *value; };
static struct entry *table;  /* collected and scanned: it keeps the values and handles, never the keys */

void *cache_get(void *key, void *(*compute)(void *key)) {
  if (!table) table = goalloc_gc_malloc(SLOTS * sizeof *table);
  goalloc_gc_weak *w = goalloc_gc_weak_make(key);            /* one handle per key: compare with == */
  size_t i = ((uintptr_t)w >> 4) % SLOTS, reuse = SLOTS;
  for (size_t n = 0; n < SLOTS && table[i].key; n++, i = (i + 1) % SLOTS) {
    if (table[i].key == w) return table[i].value;                         /* a hit */
    if (reuse == SLOTS && !goalloc_gc_weak_get(table[i].key)) reuse = i;  /* a dead key's slot */
  }
  if (reuse == SLOTS) reuse = i;  /* (a table full of live keys would grow: not shown) */
  table[reuse].key = w;
  return table[reuse].value = compute(key);                  /* the value must not reach the key */
}

static int computed;
static void *derive(void *key) {
  computed++;
  long *v = goalloc_gc_malloc_noscan(sizeof(long));
  *v = *(long *)key * 2;
  return v;
}
void *cache_keys[100];  // live keys (data segment)
__attribute__((noinline)) static void cache_fill(int n, long base) {
  for (int i = 0; i < n; i++) {
    long *k = goalloc_gc_malloc(sizeof(long));
    *k = base + i;
    cache_keys[i] = k;
    cache_get(k, derive);
  }
}
__attribute__((noinline)) static int cache_hits(int n) {
  int ok = 0;
  for (int i = 0; i < n; i++) ok += *(long *)cache_get(cache_keys[i], derive) == *(long *)cache_keys[i] * 2;
  return ok;
}
static int cache_used(void) {
  int used = 0;
  for (int i = 0; i < SLOTS; i++) used += table[i].key && goalloc_gc_weak_get(table[i].key);
  return used;
}
static void scenario_cache(void) {
  cache_fill(100, 1000);
  int before = computed;
  CHECK("cache: live keys hit, nothing computed again", cache_hits(100) == 100 && computed == before, "computed %d", computed - before);
  memset(cache_keys, 0, sizeof cache_keys);  // every key dies
  for (int i = 0; i < 10 && cache_used() > 0; i++) settle();
  CHECK("cache: the entries of dead keys die with them", cache_used() == 0, "%d live entries", cache_used());
  for (int round = 0; round < 20; round++) {  // 2000 keys through 1024 slots: dead slots are reused
    cache_fill(100, round * 100);
    memset(cache_keys, 0, sizeof cache_keys);
    settle();
  }
  CHECK("cache: 2000 keys later the table still takes new ones", cache_used() <= 200 && computed == 2100, "%d live, %d computed", cache_used(), computed);
}

// ---- GOALLOC_DEBUG=cleanupcheck=1: an object kept only by a cleanup's argument ----
static void ignore(void *arg) { (void)arg; }
__attribute__((noinline)) static void kept_by_arg(void) {
  struct node *a = goalloc_gc_malloc(sizeof *a), *b = goalloc_gc_malloc(sizeof *b);
  b->e[0] = a;                                  // the argument reaches the object
  goalloc_gc_add_cleanup(a, ignore, b);
  struct node *c = goalloc_gc_malloc(sizeof *c), *d = goalloc_gc_malloc(sizeof *d);
  goalloc_gc_add_cleanup(c, count_cleanup, (void *)(intptr_t)60);  // a fine one
  (void)d;
}
static void scenario_cleanupcheck(void) {
  kept_by_arg();
  for (int i = 0; i < 10 && runs(60) == 0; i++) settle();
  settle();
  CHECK("cleanupcheck: the fine cleanup ran", runs(60) == 1, "ran %d", runs(60));
  // The report itself is on stderr (checked by the test): one line for the object kept by b.
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *what = argc > 1 ? argv[1] : "cleanup";
  if (!strcmp(what, "cleanup")) scenario_cleanup();
  else if (!strcmp(what, "finalizer")) scenario_finalizer();
  else if (!strcmp(what, "chain")) scenario_chain();
  else if (!strcmp(what, "weak")) scenario_weak();
  else if (!strcmp(what, "fuzz")) scenario_fuzz(argc > 2 ? strtoull(argv[2], 0, 10) : 1, argc > 3 ? atoi(argv[3]) : 30);
  else if (!strcmp(what, "threads")) scenario_threads();
  else if (!strcmp(what, "fork")) scenario_fork();
  else if (!strcmp(what, "cleanupcheck")) scenario_cleanupcheck();
  else if (!strcmp(what, "cache")) scenario_cache();
  else { printf("FAIL unknown scenario %s\n", what); return 2; }
  return failures ? 1 : 0;
}
