// The GC mode's C contract, one scenario per argument (run under libgoalloc.so, linked with it).
// Each scenario prints "ok <name>" lines or "FAIL <name>: why" and exits 1 on a failure.
// Objects of one scenario use a size class of their own, so "was it freed?" is answered by
// whether its slot comes back from allocations of that size ("reused").
#define _GNU_SOURCE
#include <goalloc.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;
#define CHECK(name, cond, ...) do { if (cond) printf("ok %s\n", name); else { printf("FAIL %s: ", name); printf(__VA_ARGS__); printf("\n"); failures++; } fflush(stdout); } while (0)

static struct goalloc_memstats ms;
static int conc_mode(void);
static uint64_t gc_frees(void) { goalloc_read_memstats(&ms); return ms.gc_frees; }
static uint64_t num_gc(void) { goalloc_read_memstats(&ms); return ms.num_gc; }

/// Zeroes a stretch of the stack below the caller, so dead frames hold no stale pointers.
__attribute__((noinline)) static void clear_stack(void) {
  volatile char buf[32 * 1024];
  memset((char *)buf, 0, sizeof buf);
}
__attribute__((noinline)) static void collect(void) {
  clear_stack();
  if (goalloc_gc_collect() != 0) { printf("FAIL collect refused\n"); failures++; }
}

/// Whether the object at `addr` was freed: allocating up to n objects of `size` hands out
/// `addr` again, or its span went back to the page heap (the address is no longer that object's
/// start). (The objects allocated here are garbage at once.)
__attribute__((noinline)) static int reused(uintptr_t addr, size_t size, int n) {
  int found = 0;
  for (int i = 0; i < n && !found; i++) {
    uintptr_t p = (uintptr_t)goalloc_gc_malloc(size);
    if (p == addr) found = 1;
  }
  return found || (uintptr_t)goalloc_gc_base((void *)addr) != addr;
}

static void fill(void *p, size_t n, unsigned char v) { memset(p, v, n); }
static int holds(void *p, size_t n, unsigned char v) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) if (b[i] != v) return 0;
  return 1;
}

// A pointer hidden from the collector (so a test can remember an address without keeping it).
// Unhidden through a volatile, so the compiler cannot keep the plain pointer in a callee-saved
// register across a collection (which, scanned conservatively, would keep the object).
static uintptr_t hide(void *p) { return (uintptr_t)p ^ 0x5a5a5a5a5a5a5a5aull; }
static void *unhide(uintptr_t h) { volatile uintptr_t x = h; return (void *)(x ^ 0x5a5a5a5a5a5a5a5aull); }

// ---- reachability ----------------------------------------------------------------------------

static void *volatile g_root;

__attribute__((noinline)) static uintptr_t alloc_into_global(size_t size) {
  void *p = goalloc_gc_malloc(size);
  fill((char *)p + 16, size - 16, 0x33);
  g_root = p;
  return hide(p);
}

static void reach_global(void) {
  uintptr_t h = alloc_into_global(1024);
  collect();
  CHECK("global keeps", !reused((uintptr_t)unhide(h), 1024, 200) && holds((char *)unhide(h) + 16, 1008, 0x33), "object reused");
  g_root = 0;
  collect();
  CHECK("global dropped reclaims", reused((uintptr_t)unhide(h), 1024, 2000), "not reused");
}

static uintptr_t deep_result;
__attribute__((noinline)) static int deep(int depth, size_t size) {
  volatile uintptr_t keep[2];
  if (depth > 0) return deep(depth - 1, size) + (int)keep[0] * 0;
  void *p = goalloc_gc_malloc(size);
  fill(p, size, 0x44);
  keep[0] = (uintptr_t)p;
  keep[1] = 0;
  deep_result = hide(p);
  p = 0;
  collect();
  int ok = !reused((uintptr_t)unhide(deep_result), size, 200) && holds((void *)keep[0], size, 0x44);
  keep[0] = 0;
  return ok;
}

static void reach_stack(void) {
  CHECK("deep stack frame keeps", deep(100, 1152), "object reused or overwritten");
  collect();
  CHECK("stack dropped reclaims", reused((uintptr_t)unhide(deep_result), 1152, 2000), "not reused");
}

__attribute__((noinline)) static uintptr_t alloc_chain(void) {
  void **a = goalloc_gc_malloc(1280);
  void *b = goalloc_gc_malloc(1408);
  fill(b, 1408, 0x55);
  a[5] = b;  // b is reachable only through a
  g_root = a;
  return hide(b);
}

static void reach_object(void) {
  uintptr_t hb = alloc_chain();
  collect();
  CHECK("another GC object keeps", !reused((uintptr_t)unhide(hb), 1408, 200) && holds(unhide(hb), 1408, 0x55), "reused");
  ((void **)g_root)[5] = 0;
  collect();
  CHECK("dropped from the object reclaims", reused((uintptr_t)unhide(hb), 1408, 2000), "not reused");
  g_root = 0;
}

static void **g_uncollectable;
__attribute__((noinline)) static uintptr_t alloc_under_uncollectable(void) {
  g_uncollectable = goalloc_gc_malloc_uncollectable(64);
  void *b = goalloc_gc_malloc(1536);
  fill(b, 1536, 0x66);
  g_uncollectable[3] = b;
  uintptr_t h = hide(g_uncollectable);
  g_uncollectable = (void **)h;  // the uncollectable object itself is held only hidden: still a root
  return hide(b);
}

static void reach_uncollectable(void) {
  uintptr_t hb = alloc_under_uncollectable();
  collect();
  CHECK("uncollectable object keeps", !reused((uintptr_t)unhide(hb), 1536, 200) && holds(unhide(hb), 1536, 0x66), "reused");
  void **u = unhide((uintptr_t)g_uncollectable);
  u[3] = 0;
  goalloc_gc_free(u);
  collect();
  CHECK("uncollectable dropped reclaims", reused((uintptr_t)unhide(hb), 1536, 2000), "not reused");
}

static void **g_mmap;
__attribute__((noinline)) static uintptr_t alloc_into_mmap(void) {
  void *b = goalloc_gc_malloc(1792);
  fill(b, 1792, 0x77);
  g_mmap[7] = b;
  return hide(b);
}

static void reach_added_root(void) {
  g_mmap = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK("add_roots", goalloc_gc_add_roots(g_mmap, (char *)g_mmap + 4096) == 0, "refused");
  uintptr_t hb = alloc_into_mmap();
  collect();
  CHECK("added root keeps", !reused((uintptr_t)unhide(hb), 1792, 200) && holds(unhide(hb), 1792, 0x77), "reused");
  CHECK("remove_roots", goalloc_gc_remove_roots(g_mmap, (char *)g_mmap + 4096) == 0, "refused");
  collect();
  CHECK("mmap memory is not a root", reused((uintptr_t)unhide(hb), 1792, 2000), "not reused");
  CHECK("add_roots lo > hi refused", goalloc_gc_add_roots((char *)g_mmap + 8, g_mmap) == -1, "accepted");
}

// A thread that holds an object while the main thread collects: `fn` allocates it, then calls
// holder_wait (blocked in read, a system call); start_holder returns once it waits, and
// finish_holder lets it check the object and end (its result: intact or not).
static int pipe_go[2], pipe_done[2];
static void holder_wait(void) {
  char c = 1;
  if (write(pipe_done[1], &c, 1) != 1) abort();
  if (read(pipe_go[0], &c, 1) != 1) abort();  // blocked in a system call while main collects
}
static pthread_t start_holder(void *(*fn)(void *)) {
  if (!pipe_go[0] && (pipe(pipe_go) || pipe(pipe_done))) abort();
  pthread_t t;
  pthread_create(&t, 0, fn, 0);
  char c;
  if (read(pipe_done[0], &c, 1) != 1) abort();
  return t;
}
static int finish_holder(pthread_t t) {
  char c = 1;
  if (write(pipe_go[1], &c, 1) != 1) abort();
  void *ok;
  pthread_join(t, &ok);
  return ok != 0;
}

static uintptr_t thread_obj;
static void *holder(void *arg) {
  (void)arg;
  volatile uintptr_t keep = (uintptr_t)goalloc_gc_malloc(2048);
  fill((void *)keep, 2048, 0x88);
  thread_obj = hide((void *)keep);
  holder_wait();
  int ok = holds((void *)keep, 2048, 0x88);
  keep = 0;
  return (void *)(intptr_t)ok;
}

static void reach_thread(void) {
  pthread_t t = start_holder(holder);
  collect();
  CHECK("another thread's stack keeps (thread blocked in read)", !reused((uintptr_t)unhide(thread_obj), 2048, 100), "reused");
  CHECK("the kept object is intact", finish_holder(t), "overwritten");
  collect();
  CHECK("thread gone: reclaimed", reused((uintptr_t)unhide(thread_obj), 2048, 2000), "not reused");
}

// Static TLS: the main thread's block lies outside its stack (ld.so allocates it at start-up);
// a pthread's sits at the top of its stack mapping.
static __thread void *volatile t_root;
__attribute__((noinline)) static uintptr_t alloc_into_tls(size_t size, int byte) {
  void *b = goalloc_gc_malloc(size);
  fill(b, size, byte);
  t_root = b;
  return hide(b);
}

static uintptr_t tls_thread_obj;
static void *tls_holder(void *arg) {
  (void)arg;
  tls_thread_obj = alloc_into_tls(2176, 0x99);
  clear_stack();
  holder_wait();
  int ok = holds(t_root, 2176, 0x99);
  t_root = 0;
  return (void *)(intptr_t)ok;
}

static void reach_tls(void) {
  uintptr_t h = alloc_into_tls(1664, 0xaa);
  clear_stack();
  collect();
  CHECK("the main thread's static TLS keeps", !reused((uintptr_t)unhide(h), 1664, 200) && holds(unhide(h), 1664, 0xaa), "reused");
  t_root = 0;
  collect();
  CHECK("TLS dropped reclaims", reused((uintptr_t)unhide(h), 1664, 2000), "not reused");
  pthread_t t = start_holder(tls_holder);
  collect();
  CHECK("another thread's static TLS keeps", !reused((uintptr_t)unhide(tls_thread_obj), 2176, 100), "reused");
  CHECK("the object kept by TLS is intact", finish_holder(t), "overwritten");
}

static void reach(void) {
  uint64_t n0 = num_gc();
  reach_global();
  reach_stack();
  reach_object();
  reach_uncollectable();
  reach_added_root();
  reach_thread();
  reach_tls();
  goalloc_read_memstats(&ms);
  CHECK("NumGC counts collections", ms.num_gc >= n0 + 12 && ms.num_forced_gc >= 12, "num_gc %llu forced %llu",
        (unsigned long long)ms.num_gc, (unsigned long long)ms.num_forced_gc);
  static uint64_t pause_ns[256], pause_end[256];
  goalloc_gc_read_pauses(pause_ns, pause_end);
  CHECK("pauses recorded", ms.pause_total_ns > 0 && pause_ns[(ms.num_gc + 255) % 256] > 0
        && pause_end[(ms.num_gc + 255) % 256] > 0 && ms.last_gc > 0, "no pause");
}

// ---- noscan, interior, zeroing, free ---------------------------------------------------------

__attribute__((noinline)) static void fill_holders(void **block, int n, size_t size) {
  for (int i = 0; i < n; i++) block[i] = goalloc_gc_malloc(size);
}

static void noscan(void) {
  enum { N = 500 };
  void **scan = goalloc_gc_malloc(N * sizeof(void *));
  void **plain = goalloc_gc_malloc_noscan(N * sizeof(void *));
  g_root = scan;
  void *volatile keep_plain = plain;
  fill_holders(scan, N, 2304);
  fill_holders(plain, N, 2560);
  uint64_t f0 = gc_frees();
  collect();
  uint64_t freed = gc_frees() - f0;
  // Every object held only by the noscan block is freed; those in the scan block are kept.
  CHECK("noscan block retains nothing", freed >= N - 2, "freed %llu of %d", (unsigned long long)freed, N);
  CHECK("scan block retains its objects", !reused((uintptr_t)scan[N / 2], 2304, 200), "reused");
  (void)keep_plain;
  g_root = 0;
}

static void interior(void) {
  char *a = goalloc_gc_malloc(3072);
  char *b = goalloc_gc_malloc(3072);  // the next slot: one past the end of a
  uintptr_t ha = hide(a), hb = hide(b);
  g_root = a + 100;  // interior: keeps a
  a = b = 0;
  collect();
  CHECK("interior pointer keeps", !reused((uintptr_t)unhide(ha), 3072, 100), "reused");
  CHECK("gc_base of an interior pointer", goalloc_gc_base((char *)unhide(ha) + 100) == unhide(ha), "wrong base");
  g_root = (char *)unhide(hb) + 3072;  // one past the end of b (not another object of ours)
  collect();
  CHECK("one past the end does not keep", reused((uintptr_t)unhide(hb), 3072, 2000), "kept");
  g_root = 0;
  int local;
  CHECK("gc_base of a stack address is NULL", goalloc_gc_base(&local) == 0, "not NULL");
}

__attribute__((noinline)) static void dirty(int n, size_t size) {
  for (int i = 0; i < n; i++) {
    void **p = goalloc_gc_malloc(size);
    memset(p, 0xab, size);
    p[0] = p;  // a pointer, so the garbage even looks live
  }
}

static void zeroing(void) {
  dirty(2000, 896);
  collect();
  int bad = 0;
  for (int i = 0; i < 4000; i++) {
    unsigned char *p = goalloc_gc_malloc(896);
    for (int j = 0; j < 896; j++) if (p[j]) { bad++; break; }
  }
  CHECK("scan memory is zeroed on reuse", bad == 0, "%d objects not zeroed", bad);
  void *big = goalloc_gc_malloc(200000);
  memset(big, 0xcd, 200000);
  big = 0;
  collect();
  unsigned char *p = goalloc_gc_malloc(200000);
  int z = 1;
  for (int j = 0; j < 200000; j++) if (p[j]) { z = 0; break; }
  CHECK("large scan memory is zeroed", z, "not zeroed");
}

static void frees(void) {
  void *a = goalloc_gc_malloc(5120);
  uintptr_t ha = hide(a);
  free(a);  // plain free of a collected object
  a = 0;
  collect();
  CHECK("free() of a collected object", reused((uintptr_t)unhide(ha), 5120, 100), "not reused");
  void *sm = goalloc_gc_malloc(32);  // under a cache line: free()'s path for other threads'
  uintptr_t hs = hide(sm);           // small objects must still see a collected span
  free(sm);
  sm = 0;
  collect();
  CHECK("free() of a small collected object", reused((uintptr_t)unhide(hs), 32, 1000), "not reused");
  void *b = goalloc_gc_malloc(6144);
  g_root = b;  // still reachable, but freed explicitly: it goes
  uintptr_t hb = hide(b);
  goalloc_gc_free(b);
  b = 0;
  collect();
  CHECK("goalloc_gc_free frees a reachable object", reused((uintptr_t)unhide(hb), 6144, 100), "not reused");
  g_root = 0;
  void *big = goalloc_gc_malloc(1 << 20);
  free(big);
  CHECK("free() of a large collected object", 1, "");
  void *r = goalloc_gc_malloc_noscan(100);
  memset(r, 7, 100);
  r = goalloc_gc_realloc(r, 10000);
  CHECK("realloc keeps contents", holds(r, 100, 7), "lost");
  void *u = goalloc_gc_malloc_uncollectable(32);
  u = goalloc_gc_realloc(u, 4000);
  goalloc_gc_free(u);
  CHECK("realloc of an uncollectable object", 1, "");
  int old = goalloc_gc_set_percent(50);
  CHECK("set_percent returns the old value", goalloc_gc_set_percent(old) == 50, "wrong");
}

// ---- signal handler --------------------------------------------------------------------------

static volatile int handler_result = 99;
static void on_usr1(int sig) { (void)sig; handler_result = goalloc_gc_collect(); }

static void sighandler(void) {
  (void)goalloc_gc_malloc(100);
  signal(SIGUSR1, on_usr1);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &set, 0);  // (the test runner may start us with it blocked)
  raise(SIGUSR1);
  CHECK("collect from a signal handler is refused", handler_result == -1, "returned %d", handler_result);
  CHECK("collect outside it works", goalloc_gc_collect() == 0, "refused");
}

// ---- stop-the-world torture ------------------------------------------------------------------

static volatile int stop_torture;
static volatile long progress[8];

struct node { struct node *next; long value; long pad[4]; };

static void *malloc_loop(void *arg) {
  long id = (long)arg;
  void *keep[64] = {0};
  unsigned s = (unsigned)id * 2654435761u;
  while (!stop_torture) {
    for (int i = 0; i < 64; i++) {
      s = s * 1103515245u + 12345u;
      free(keep[i]);
      keep[i] = malloc(16 + (s >> 16) % 600);
      ((char *)keep[i])[0] = 1;
    }
    progress[id]++;
  }
  for (int i = 0; i < 64; i++) free(keep[i]);
  return 0;
}

static void *gc_loop(void *arg) {
  long id = (long)arg;
  long bad = 0;
  while (!stop_torture) {
    struct node *head = 0;
    for (long i = 0; i < 500; i++) {
      struct node *n = goalloc_gc_malloc(sizeof *n + (i % 3) * 16);
      n->next = head;
      n->value = i;
      head = n;
    }
    long expect = 499;
    for (struct node *n = head; n; n = n->next, expect--) if (n->value != expect) bad++;
    if (expect != -1) bad++;
    progress[id]++;
  }
  return (void *)bad;
}

static void *blocked(void *arg) {
  (void)arg;
  (void)goalloc_gc_malloc(10);  // registered
  char c;
  while (read(pipe_go[0], &c, 1) == -1 && errno == EINTR) {}
  return 0;
}

static void torture(int rounds) {
  if (pipe(pipe_go)) abort();
  pthread_t t[6];
  pthread_create(&t[0], 0, malloc_loop, (void *)0);
  pthread_create(&t[1], 0, malloc_loop, (void *)1);
  pthread_create(&t[2], 0, gc_loop, (void *)2);
  pthread_create(&t[3], 0, gc_loop, (void *)3);
  pthread_create(&t[4], 0, blocked, 0);
  struct timespec ts = { 0, 2 * 1000 * 1000 };
  for (int i = 0; i < rounds; i++) {
    if (goalloc_gc_collect() != 0) failures++;
    nanosleep(&ts, 0);
  }
  stop_torture = 1;
  char c = 1;
  if (write(pipe_go[1], &c, 1) != 1) abort();
  long bad = 0;
  for (int i = 0; i < 5; i++) {
    void *r;
    pthread_join(t[i], &r);
    if (i == 2 || i == 3) bad += (long)r;
  }
  CHECK("torture: lists intact", bad == 0, "%ld bad nodes", bad);
  CHECK("torture: every thread ran", progress[0] && progress[1] && progress[2] && progress[3], "%ld %ld %ld %ld",
        progress[0], progress[1], progress[2], progress[3]);
  goalloc_read_memstats(&ms);
  CHECK("torture: collections ran", ms.num_gc >= (uint64_t)rounds, "%llu", (unsigned long long)ms.num_gc);
  CHECK("torture: heap check", goalloc_check_heap() == 1, "broken");
}

// ---- lazy sweep ------------------------------------------------------------------------------
// Run with GOALLOC_DEBUG=gcsweep=ondemand (goalloc_gc_collect returns with the collected spans
// unswept, and no background sweeper runs), badfree=warn (a free of an object the collector
// freed is counted, not fatal), scavenger=0.

static uint64_t bad_frees(void) { goalloc_read_memstats(&ms); return ms.bad_frees; }

enum { LN = 4000, LSIZE = 704 };

__attribute__((noinline)) static void lazy_fill(void **table) {
  for (long i = 0; i < LN; i++) {
    long *p = goalloc_gc_malloc(LSIZE);
    p[0] = i; p[1] = ~i; p[LSIZE / 8 - 1] = i;
    table[i] = p;
  }
}

static int lazy_intact(void **table) {
  for (long i = 0; i < LN; i++) {
    long *p = table[i];
    if (p && (p[0] != i || p[1] != ~i || p[LSIZE / 8 - 1] != i)) return 0;
  }
  return 1;
}

__attribute__((noinline)) static uintptr_t lazy_large(int keep) {
  char *p = goalloc_gc_malloc(100000);
  memset(p, keep ? 0x31 : 0x32, 100000);
  if (keep) g_mmap = (void **)p;  // (a global: kept)
  return hide(p);
}

static void lazy(void) {
  void **table = goalloc_gc_malloc(LN * sizeof(void *));
  g_root = table;
  lazy_fill(table);
  uintptr_t dead = hide(table[1]), live = hide(table[2]), victim = hide(table[4]);
  for (int i = 1; i < LN; i += 2) table[i] = 0;  // odd ones die
  uint64_t f0 = gc_frees();
  collect();
  uint64_t f1 = gc_frees();
  CHECK("lazy: the collection leaves dead objects unswept", f1 - f0 < LN / 4, "freed %llu at once", (unsigned long long)(f1 - f0));
  CHECK("lazy: gc_base of a live object in an unswept span", goalloc_gc_base((char *)unhide(live) + 100) == unhide(live), "wrong base");
  CHECK("lazy: heap check with spans unswept", goalloc_check_heap() == 1, "broken");
  uint64_t b0 = bad_frees();
  table[4] = 0;  // live at the collection, freed now
  goalloc_gc_free(unhide(victim));
  CHECK("lazy: free of a live object in an unswept span", bad_frees() == b0, "reported");
  goalloc_gc_free(unhide(dead));
  CHECK("lazy: free of an object the collector freed (unswept) is a double free", bad_frees() == b0 + 1, "bad frees %llu -> %llu",
        (unsigned long long)b0, (unsigned long long)bad_frees());
  CHECK("lazy: heap check after those frees", goalloc_check_heap() == 1, "broken");
  // Allocation reaches the unswept spans: their dead slots come back, zeroed; live ones stay.
  int dirty = 0, found_dead = 0, found_victim = 0;
  for (int i = 0; i < 2 * LN; i++) {
    unsigned char *p = goalloc_gc_malloc(LSIZE);
    for (int j = 0; j < LSIZE; j++) if (p[j]) { dirty++; break; }
    if ((uintptr_t)p == (uintptr_t)unhide(dead)) found_dead = 1;
    if ((uintptr_t)p == (uintptr_t)unhide(victim)) found_victim = 1;
  }
  CHECK("lazy: the lazy sweep hands out dead slots again", found_dead, "not reused");
  CHECK("lazy: and the explicitly freed one", found_victim, "not reused");
  CHECK("lazy: reused slots are zeroed", dirty == 0, "%d not zeroed", dirty);
  CHECK("lazy: live objects intact", lazy_intact(table), "overwritten");
  collect();  // sweep termination finishes the last cycle's sweep first
  CHECK("lazy: every dead object counted once swept", gc_frees() - f0 >= LN / 2, "freed %llu", (unsigned long long)(gc_frees() - f0));
  CHECK("lazy: heap check after the next cycle", goalloc_check_heap() == 1, "broken");
  // Large objects: a live one stays and can be freed; a dead one's free is a double free.
  uintptr_t big = lazy_large(1), gone = lazy_large(0);
  collect();
  CHECK("lazy: gc_base inside a live large object in an unswept span", goalloc_gc_base((char *)unhide(big) + 5000) == unhide(big), "wrong base");
  b0 = bad_frees();
  goalloc_gc_free(unhide(gone));
  CHECK("lazy: free of a large object the collector freed is a double free", bad_frees() == b0 + 1, "not reported");
  g_mmap = 0;
  goalloc_gc_free(unhide(big));
  CHECK("lazy: free of a live large object in an unswept span", bad_frees() == b0 + 1, "reported");
  CHECK("lazy: heap check at the end", goalloc_check_heap() == 1, "broken");
  g_root = 0;
}

// A random interleaving of allocations (small and large, scan and noscan), drops, explicit
// frees, reallocs and collections against a model: every held object keeps its contents.
enum { FN = 3000 };
struct fobj { uint64_t tag; size_t size; };
static struct fobj model[FN];

static void fz_fill(void *p, size_t size, uint64_t tag) {
  uint64_t *w = p;
  w[0] = tag;
  w[size / 8 - 1] = tag ^ 0xfeed;
}
static int fz_ok(void *p, size_t size, uint64_t tag) {
  uint64_t *w = p;
  return w[0] == tag && w[size / 8 - 1] == (tag ^ 0xfeed);
}

static void fuzz(int ops) {
  void **table = goalloc_gc_malloc(FN * sizeof(void *));
  g_root = table;
  uint64_t rng = 88172645463325252ull, tag = 1;
  long bad = 0, collections = 0, heapbad = 0;
  for (int op = 0; op < ops; op++) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    int i = (int)(rng % FN);
    int what = (int)((rng >> 20) % 100);
    if (table[i] && !fz_ok(table[i], model[i].size, model[i].tag)) bad++;
    if (what < 55) {  // allocate (the old one, if any, is dropped)
      size_t size = (rng >> 32) % 16 == 0 ? 33000 + (rng >> 40) % 90000 : 16 + ((rng >> 40) % 2000) / 8 * 8;
      void *p = (rng >> 50) & 1 ? goalloc_gc_malloc_noscan(size) : goalloc_gc_malloc(size);
      fz_fill(p, size, tag);
      table[i] = p; model[i].tag = tag++; model[i].size = size;
    } else if (what < 75) {
      table[i] = 0;
    } else if (what < 90) {
      if (table[i]) { void *p = table[i]; table[i] = 0; goalloc_gc_free(p); }
    } else if (what < 98) {
      if (table[i]) {
        size_t size = 16 + ((rng >> 40) % 3000) / 8 * 8;
        uint64_t *p = goalloc_gc_realloc(table[i], size);
        if (p[0] != model[i].tag) bad++;  // (realloc keeps the first min(old, new) bytes)
        fz_fill(p, size, tag);
        table[i] = p; model[i].tag = tag++; model[i].size = size;
      }
    } else {
      clear_stack();
      goalloc_gc_collect();
      collections++;
      if (collections % 8 == 0 && goalloc_check_heap() != 1) heapbad++;
    }
  }
  for (int i = 0; i < FN; i++) if (table[i] && !fz_ok(table[i], model[i].size, model[i].tag)) bad++;
  CHECK("fuzz: every held object intact", bad == 0, "%ld bad", bad);
  CHECK("fuzz: collections ran", collections > 10, "%ld", collections);
  CHECK("fuzz: heap checks", heapbad == 0 && goalloc_check_heap() == 1, "%ld failed", heapbad);
  g_root = 0;
}

// Threads allocate, drop and free their own collected objects (held on their stacks) while the
// main thread collects: spans are unswept whenever a thread refills.
static void *lazy_worker(void *arg) {
  long id = (long)arg;
  void *keep[128] = {0};
  uint64_t tags[128] = {0};
  size_t sizes[128] = {0};
  uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1), tag = (uint64_t)id << 40;
  long bad = 0;
  while (!stop_torture) {
    for (int k = 0; k < 256; k++) {
      rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
      int i = (int)(rng % 128);
      if (keep[i] && !fz_ok(keep[i], sizes[i], tags[i])) bad++;
      if ((rng >> 30) % 4 == 0 && keep[i]) { goalloc_gc_free(keep[i]); keep[i] = 0; continue; }
      size_t size = 16 + ((rng >> 40) % 1200) / 8 * 8;
      keep[i] = goalloc_gc_malloc(size);
      fz_fill(keep[i], size, ++tag);
      tags[i] = tag; sizes[i] = size;
    }
    progress[id]++;
  }
  for (int i = 0; i < 128; i++) if (keep[i] && !fz_ok(keep[i], sizes[i], tags[i])) bad++;
  return (void *)bad;
}

static void lazythreads(int rounds) {
  pthread_t t[4];
  for (long i = 0; i < 4; i++) pthread_create(&t[i], 0, lazy_worker, (void *)i);
  struct timespec ts = { 0, 1000 * 1000 };
  for (int i = 0; i < rounds; i++) {
    if (goalloc_gc_collect() != 0) failures++;
    nanosleep(&ts, 0);
    if (i % 25 == 0 && goalloc_check_heap() != 1) { printf("FAIL lazythreads: heap check in round %d\n", i); failures++; }
  }
  // Every worker finishes a batch at least once, however the threads were scheduled meanwhile.
  while (!(progress[0] && progress[1] && progress[2] && progress[3])) {
    if (goalloc_gc_collect() != 0) failures++;
    nanosleep(&ts, 0);
  }
  stop_torture = 1;
  long bad = 0;
  for (int i = 0; i < 4; i++) { void *r; pthread_join(t[i], &r); bad += (long)r; }
  CHECK("lazythreads: objects intact", bad == 0, "%ld bad", bad);
  CHECK("lazythreads: every thread ran", progress[0] && progress[1] && progress[2] && progress[3], "no progress");
  CHECK("lazythreads: heap check", goalloc_check_heap() == 1, "broken");
}

// ---- fork ------------------------------------------------------------------------------------

static void forks(void) {
  pthread_t t[3];
  pthread_create(&t[0], 0, malloc_loop, (void *)0);
  pthread_create(&t[1], 0, gc_loop, (void *)2);
  pthread_create(&t[2], 0, gc_loop, (void *)3);
  int ok = 1;
  for (int i = 0; i < 20; i++) {
    if (i % 2) goalloc_gc_collect();
    pid_t pid = fork();
    if (pid == 0) {
      struct node *head = 0;
      for (int j = 0; j < 1000; j++) {
        struct node *n = goalloc_gc_malloc(sizeof *n);
        n->next = head; n->value = j; head = n;
      }
      if (goalloc_gc_collect() != 0) _exit(2);
      // More allocation: a list the collection freed (its thread's stack unscanned) is reused.
      for (int j = 0; j < 2000; j++) { struct node *g = goalloc_gc_malloc(sizeof *g); g->value = -1; }
      long expect = 999;
      for (struct node *n = head; n; n = n->next, expect--) if (n->value != expect) _exit(3);
      free(malloc(100));
      _exit(goalloc_check_heap() == 1 ? 0 : 4);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { ok = 0; printf("child %d: status %d\n", i, st); }
  }
  stop_torture = 1;
  for (int i = 0; i < 3; i++) pthread_join(t[i], 0);
  CHECK("fork while threads allocate and collect", ok, "a child failed");
}

// ---- pacing ----------------------------------------------------------------------------------

static void pacing(void) {
  // Live: 2000 x 4 KiB ~ 8 MiB held in a scan array; churn 200 MiB of garbage.
  enum { L = 2000 };
  void **live = goalloc_gc_malloc(L * sizeof(void *));
  g_root = live;
  for (int i = 0; i < L; i++) live[i] = goalloc_gc_malloc(4096);
  uint64_t peak = 0, n0 = num_gc();
  for (int i = 0; i < 50000; i++) {
    void *p = goalloc_gc_malloc(4096);
    ((char *)p)[0] = 1;
    if (i % 64 == 0) {
      goalloc_read_memstats(&ms);
      if (ms.gc_heap_live > peak) peak = ms.gc_heap_live;
    }
  }
  goalloc_read_memstats(&ms);
  uint64_t l = (uint64_t)L * 4096;
  printf("pacing: live %llu peak %llu cycles %llu goal %llu\n", (unsigned long long)l, (unsigned long long)peak,
         (unsigned long long)(ms.num_gc - n0), (unsigned long long)ms.next_gc);
  CHECK("pacing: collections ran", ms.num_gc - n0 >= 5, "%llu", (unsigned long long)(ms.num_gc - n0));
  // Concurrent marking: objects allocated during the mark are marked (black), so the next goal
  // counts them too (as Go's heapMarked does), and the heap may pass the goal while the mark runs.
  // (Concurrent: everything allocated while a mark runs counts as marked, and the background
  // workers take only Go's 25 % of the CPUs, so the marked heap, and the goal, run higher.)
  uint64_t slack = conc_mode() ? 3 * l : l / 2;
  CHECK("pacing: peak near 2 x live", peak < 2 * l + slack + (4u << 20) && peak > l, "peak %llu live %llu",
        (unsigned long long)peak, (unsigned long long)l);
  g_root = 0;
}

// One thread allocates flat out while concurrent marks trace a 16 MiB linked heap: its
// allocation is charged and paid by mark assists (gcconc=1), and the heap stays within 10 % of
// its goal. Stopped-world mode: the same work, no assists expected.
struct anode { struct anode *next; uint64_t pad[7]; };
static void assist(long n) {
  enum { LISTS = 64, PER = 4096 };  // 64 x 4096 x 64 B = 16 MiB live, linked
  struct anode **heads = goalloc_gc_malloc(LISTS * sizeof *heads);
  g_root = heads;
  for (int l = 0; l < LISTS; l++)
    for (int i = 0; i < PER; i++) {
      struct anode *a = goalloc_gc_malloc(sizeof *a);
      a->next = heads[l];
      heads[l] = a;
    }
  goalloc_read_memstats(&ms);
  uint64_t n0 = ms.num_gc, a0 = ms.gc_assists, s0 = ms.gc_stalls;
  double worst = 0;
  for (long i = 0; i < n; i++) {
    struct anode *a = goalloc_gc_malloc(sizeof *a);  // garbage at once, but scanned memory
    a->pad[0] = (uint64_t)i;
    if (i % 256 == 0) {
      goalloc_read_memstats(&ms);
      double r = ms.next_gc ? (double)ms.gc_heap_live / (double)ms.next_gc : 0;
      if (r > worst) worst = r;
    }
  }
  long count = 0;
  for (int l = 0; l < LISTS; l++)
    for (struct anode *a = heads[l]; a; a = a->next) count++;
  goalloc_read_memstats(&ms);
  printf("assist: %llu cycles, %llu assists, %.1f ms, %llu bytes marked by them; %llu stalls (%.2f ms, the longest %.2f ms); "
         "heap at most %.3f of its goal\n",
         (unsigned long long)(ms.num_gc - n0), (unsigned long long)(ms.gc_assists - a0), ms.gc_assist_ns / 1e6,
         (unsigned long long)ms.gc_assist_bytes, (unsigned long long)(ms.gc_stalls - s0), ms.gc_stall_ns / 1e6,
         ms.gc_stall_max_ns / 1e6, worst);
  CHECK("assist: stalls' waits counted (in all, and the longest)",
        (ms.gc_stalls == 0) == (ms.gc_stall_ns == 0) && ms.gc_stall_max_ns <= ms.gc_stall_ns
        && (ms.gc_stalls == 0 || ms.gc_stall_max_ns > 0), "%llu stalls, %llu ns, max %llu ns",
        (unsigned long long)ms.gc_stalls, (unsigned long long)ms.gc_stall_ns, (unsigned long long)ms.gc_stall_max_ns);
  CHECK("assist: the linked heap is intact", count == LISTS * PER, "%ld nodes", count);
  CHECK("assist: collections ran", ms.num_gc - n0 >= 3, "%llu", (unsigned long long)(ms.num_gc - n0));
  CHECK("assist: the allocating thread assisted (concurrent mode only)",
        conc_mode() ? ms.gc_assists > a0 : ms.gc_assists == 0, "%llu assists", (unsigned long long)(ms.gc_assists - a0));
  CHECK("assist: the heap stays within 10 % of its goal", worst <= 1.10, "%.3f", worst);
  g_root = 0;
}

// The GC CPU limiter: GOGC off, a 24 MiB memory limit over 20 MiB of live scanned objects, so
// each cycle frees about 1 MiB and marks 20: without the limiter the collector would take nearly
// all the time. Once its bucket fills (about a second of collector time per CPU) it holds the
// collector near half: each cycle waits until the program has run as long as the last one's
// pause. The share is taken over the whole periods (a pause and the run after it, from the pause
// rings) of the cycles that ended limited, the last pause left out (its run is cut off); the run
// goes on past `seconds` until 8 cycles ended limited (at most 10x: a loaded machine fills the
// bucket late and has few, long pauses). The heap's bound is 4x the limit (about 2x on an idle
// machine; more when long pauses leave long runs). (Stopped-world marking: the limiter's checks
// are for that mode.)
static uint64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}
static void limiter(double seconds) {
  goalloc_gc_set_percent(-1);
  goalloc_gc_set_memory_limit(24u << 20);
  enum { L = 5000 };  // 5000 x 4 KiB = 20 MiB, each pointing at the next
  void **live = goalloc_gc_malloc(L * sizeof(void *));
  g_root = live;
  for (int i = 0; i < L; i++) live[i] = goalloc_gc_malloc(4096);
  for (int i = 0; i + 1 < L; i++) *(void **)live[i] = live[i + 1];
  uint64_t t0 = mono_ns(), end = t0 + (uint64_t)(seconds * 1e9), last = t0 + (uint64_t)(seconds * 1e10), peak = 0;
  long n = 0;
  for (;;) {
    void *p = goalloc_gc_malloc(4096);
    ((char *)p)[0] = 1;
    if (++n % 64 == 0) {
      uint64_t now = mono_ns();
      goalloc_read_memstats(&ms);
      if (ms.gc_heap_live > peak) peak = ms.gc_heap_live;
      if ((now >= end && ms.gc_limited_cycles >= 8) || now >= last) break;
    }
  }
  goalloc_read_memstats(&ms);
  // The limited cycles' pauses, oldest first (one per cycle: stopped-world marking).
  static uint64_t pause_ns[256], pause_end[256];
  goalloc_gc_read_pauses(pause_ns, pause_end);
  uint64_t k0 = ms.num_pauses - (ms.gc_limited_cycles < 256 ? ms.gc_limited_cycles : 256);
#define PAUSE_START(k) (pause_end[(k) % 256] - pause_ns[(k) % 256])
  double sum = 0;
  long periods = ms.num_pauses > k0 ? (long)(ms.num_pauses - k0) - 1 : 0;  // (the last pause's run is cut off)
  for (uint64_t k = k0; k + 1 < ms.num_pauses; k++) sum += (double)pause_ns[k % 256];
  double share = periods > 0 ? sum / (double)(PAUSE_START(ms.num_pauses - 1) - PAUSE_START(k0)) : 0;
#undef PAUSE_START
  printf("limiter: %llu cycles, %llu limited; pauses %.0f %% of the limited cycles' %ld whole periods; "
         "heap peak %.1f MiB (limit 24); %.1f s\n", (unsigned long long)ms.num_gc, (unsigned long long)ms.gc_limited_cycles,
         share * 100, periods, peak / 1048576.0, (double)(mono_ns() - t0) / 1e9);
  CHECK("limiter: the limiter turned on", ms.gc_limited_cycles > 0, "%llu", (unsigned long long)ms.gc_limited_cycles);
  CHECK("limiter: the collector's share held near half", share < 0.7, "%.0f %% over %ld periods", share * 100, periods);
  CHECK("limiter: the heap stayed bounded", peak < (96u << 20), "%.1f MiB", peak / 1048576.0);
  for (int i = 0; i + 1 < L; i++)
    if (*(void **)live[i] != live[i + 1]) { CHECK("limiter: the live objects are intact", 0, "object %d", i); break; }
  g_root = 0;
  goalloc_gc_set_memory_limit(0);
  goalloc_gc_set_percent(100);
}

static void memlimit(void) {
  // GOGC off, a 32 MiB limit: only the limit triggers, and the heap stays under it.
  goalloc_gc_set_percent(-1);
  CHECK("set_memory_limit returns the old limit", goalloc_gc_set_memory_limit(32u << 20) == 0, "not 0");
  enum { L = 1000 };
  void **live = goalloc_gc_malloc(L * sizeof(void *));
  g_root = live;
  for (int i = 0; i < L; i++) live[i] = goalloc_gc_malloc(4096);
  uint64_t peak = 0, n0 = num_gc();
  for (int i = 0; i < 50000; i++) {
    void *p = goalloc_gc_malloc(4096);
    ((char *)p)[0] = 1;
    if (i % 64 == 0) {
      goalloc_read_memstats(&ms);
      if (ms.heap_inuse > peak) peak = ms.heap_inuse;
    }
  }
  goalloc_read_memstats(&ms);
  printf("memlimit: peak heap_inuse %llu cycles %llu\n", (unsigned long long)peak, (unsigned long long)(ms.num_gc - n0));
  CHECK("memory limit triggers collections with GOGC off", ms.num_gc - n0 >= 3, "%llu", (unsigned long long)(ms.num_gc - n0));
  CHECK("memory limit holds the heap", peak <= (32u << 20), "peak %llu", (unsigned long long)peak);
  g_root = 0;
}

// A random graph against a shadow model: nodes (collected, scan) point at each other; the model
// knows every node's edges by number only (no pointers), and where each node is (hidden). Edges
// are added, redirected and dropped, roots replaced, and after each collection every node the
// model reaches from the roots is checked: its number, tag and edges. Meant for several mark
// workers (GOALLOC_GC_PROCS), with big fan-out so work is shared.
enum { GK = 4, GR = 32, GMAX = 200000 };
struct gnode { uint64_t id, tag; struct gnode *e[GK]; uint64_t pad[2]; };
static int32_t g_edges[GMAX][GK];
static uint64_t g_tags[GMAX];
static uintptr_t g_where[GMAX];
static int32_t g_roots[GR];
static uint32_t g_seen[GMAX], g_epoch;
static int32_t g_queue[GMAX];
static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static uint64_t grand(void) { g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17; return g_rng; }
static struct gnode *gnode_at(int32_t id) { return id < 0 ? 0 : unhide(g_where[id]); }

/// A node reachable in the model (a random walk from a random root), or -1.
static int32_t g_walk(void) {
  int32_t at = g_roots[grand() % GR];
  if (at < 0) return -1;
  for (int steps = (int)(grand() % 6); steps > 0; steps--) {
    int32_t next = g_edges[at][grand() % GK];
    if (next < 0) break;
    at = next;
  }
  return at;
}

/// Checks every node the model reaches; returns the number of bad ones.
__attribute__((noinline)) static long g_verify(long *reached) {
  long bad = 0, n = 0, head = 0;
  g_epoch++;
  for (int r = 0; r < GR; r++) {
    int32_t id = g_roots[r];
    if (id < 0 || g_seen[id] == g_epoch) continue;
    g_seen[id] = g_epoch;
    g_queue[n++] = id;
  }
  while (head < n) {
    int32_t id = g_queue[head++];
    struct gnode *p = gnode_at(id);
    if (p->id != (uint64_t)id || p->tag != g_tags[id]) { bad++; continue; }
    for (int k = 0; k < GK; k++) {
      int32_t t = g_edges[id][k];
      if (p->e[k] != gnode_at(t)) { bad++; break; }
      if (t >= 0 && g_seen[t] != g_epoch) { g_seen[t] = g_epoch; g_queue[n++] = t; }
    }
  }
  *reached = n;
  return bad;
}

static void graph(int ops) {
  struct gnode **rt = goalloc_gc_malloc(GR * sizeof(void *));
  g_root = rt;
  for (int r = 0; r < GR; r++) g_roots[r] = -1;
  int32_t next = 0;
  long bad = 0, collections = 0, reachedMax = 0;
  uint64_t f0 = gc_frees();
  for (int op = 0; op < ops && next < GMAX; op++) {
    int what = (int)(grand() % 100);
    if (what < 55) {  // a new node with edges to reachable ones, hung from a root or a node
      int32_t id = next++;
      struct gnode *p = goalloc_gc_malloc(sizeof *p);
      p->id = (uint64_t)id; p->tag = grand(); g_tags[id] = p->tag;
      g_where[id] = hide(p);
      for (int k = 0; k < GK; k++) {
        int32_t t = grand() % 3 ? g_walk() : -1;
        g_edges[id][k] = t;
        p->e[k] = gnode_at(t);
      }
      int32_t host = grand() % 2 ? g_walk() : -1;
      if (host >= 0) {
        int k = (int)(grand() % GK);
        g_edges[host][k] = id;
        gnode_at(host)->e[k] = p;
      } else {
        int r = (int)(grand() % GR);
        g_roots[r] = id;
        rt[r] = p;
      }
    } else if (what < 85) {  // redirect or drop an edge
      int32_t a = g_walk();
      if (a < 0) continue;
      int k = (int)(grand() % GK);
      int32_t t = grand() % 4 ? g_walk() : -1;
      g_edges[a][k] = t;
      gnode_at(a)->e[k] = gnode_at(t);
    } else if (what < 88) {  // drop a root
      int r = (int)(grand() % GR);
      g_roots[r] = -1;
      rt[r] = 0;
    }
    if (op % 4000 == 3999) {
      clear_stack();
      goalloc_gc_collect();
      collections++;
      long reached = 0;
      bad += g_verify(&reached);
      if (reached > reachedMax) reachedMax = reached;
    }
  }
  clear_stack();
  goalloc_gc_collect();
  long reached = 0;
  bad += g_verify(&reached);
  CHECK("graph: every reachable node intact", bad == 0, "%ld bad", bad);
  CHECK("graph: collections ran and freed garbage", collections > 5 && gc_frees() > f0, "%ld collections, %llu freed", collections, (unsigned long long)(gc_frees() - f0));
  CHECK("graph: the graph was big", reachedMax > 1000, "at most %ld reachable", reachedMax);
  CHECK("graph: heap check", goalloc_check_heap() == 1, "broken");
  g_root = 0;
}

// ---- concurrent marking (GOALLOC_DEBUG=gcconc=1) ---------------------------------------------

// bdwgc's collection-event hook (libgoalloc.so exports it; GOALLOC_GC_EVENT_* numbers).
void GC_set_on_collection_event(void (*fn)(int));
enum { EV_MARK_START = 1, EV_PRE_STOP_WORLD = 6 };

static int conc_mode(void) {
  const char *d = getenv("GOALLOC_DEBUG");
  return d && strstr(d, "gcconc=1") != 0;
}

// An object unreachable while the concurrent mark runs, made reachable again before mark
// termination by a store of a pointer the program kept (here hidden, as a register would keep
// it) into an object the mark already scanned: the dirty-page rescan must find it. The store is
// made from the collection's event hook on the collecting thread, after the concurrent mark
// (the second PRE_STOP_WORLD of the cycle), where the world runs.
// With `barrier` the store goes through goalloc_gc_write_barrier, which shades the object (what
// GOALLOC_DEBUG=gcdirty=barrier rests on: no page is rescanned there).
static void **volatile r_holder;
static volatile uintptr_t r_hidden;
static volatile int r_marking, r_stored, r_barrier;
static void resurrect_hook(int ev) {
  if (ev == EV_MARK_START) r_marking = 1;
  else if (ev == EV_PRE_STOP_WORLD && r_marking && !r_stored) {
    if (r_barrier) goalloc_gc_write_barrier(&r_holder[1], unhide(r_hidden));
    else r_holder[1] = unhide(r_hidden);
    r_stored = 1;
  }
}
__attribute__((noinline)) static void resurrect_setup(void) {
  r_holder = goalloc_gc_malloc(64);
  void *x = goalloc_gc_malloc(48);
  fill(x, 48, 0x77);
  r_hidden = hide(x);
}
static void resurrect(int rounds) {
  if (!conc_mode()) { CHECK("resurrect: (stopped mode: nothing to check)", 1, ""); return; }
  int bad = 0, stored = 0;
  for (int r = 0; r < rounds; r++) {
    resurrect_setup();
    r_marking = r_stored = 0;
    GC_set_on_collection_event(resurrect_hook);
    collect();
    GC_set_on_collection_event(0);
    stored += r_stored;
    void *x = unhide(r_hidden);
    if (r_holder[1] != x || !holds(x, 48, 0x77) || reused((uintptr_t)x, 48, 3000)) bad++;
  }
  CHECK("resurrect: the hook stored during each concurrent mark", stored == rounds, "%d of %d", stored, rounds);
  CHECK("resurrect: an object stored into a scanned object during the mark survives", bad == 0,
        "%d of %d freed", bad, rounds);
  r_holder = 0;
}

// Deep stacks: ST_THREADS threads each hold ST_DEPTH frames of 4 KiB, every frame's array
// holding the one pointer to a collected object (and its own pattern in it); the main thread
// collects `rounds` times (concurrent marking scans the other threads' stacks one thread at a
// time after its first stop: MGCConcurrent.gcScanStacksOneByOne) while the threads allocate
// garbage that would reuse any object freed. Each object must survive intact. Prints the
// longest first and second stop (concurrent) or pause (stopped world).
enum { ST_THREADS = 8, ST_DEPTH = 64 };
static volatile int st_done, st_ready;
static int st_bad[ST_THREADS];
__attribute__((noinline)) static void st_frame(int t, int d) {
  void *volatile words[512];
  for (int i = 0; i < 512; i++) words[i] = 0;
  unsigned char pat = (unsigned char)(1 + t * ST_DEPTH + d);
  void *o = goalloc_gc_malloc(64);
  fill(o, 64, pat);
  words[(t + d) % 512] = o;
  uintptr_t h = hide(o);
  o = 0;
  if (d + 1 < ST_DEPTH) {
    st_frame(t, d + 1);
  } else {
    __atomic_add_fetch(&st_ready, 1, __ATOMIC_ACQ_REL);
    while (!__atomic_load_n(&st_done, __ATOMIC_ACQUIRE)) {
      for (int i = 0; i < 200; i++) fill(goalloc_gc_malloc(64), 64, 0xEE);
      usleep(200);
    }
  }
  void *back = unhide(h);
  if (words[(t + d) % 512] != back || !holds(back, 64, pat)) st_bad[t]++;
}
static void *st_thread(void *arg) {
  st_frame((int)(intptr_t)arg, 0);
  return 0;
}
static void stacks(int rounds) {
  pthread_t th[ST_THREADS];
  uint64_t n0 = num_gc(), p0 = ms.num_pauses;
  for (int t = 0; t < ST_THREADS; t++) pthread_create(&th[t], 0, st_thread, (void *)(intptr_t)t);
  while (__atomic_load_n(&st_ready, __ATOMIC_ACQUIRE) < ST_THREADS) usleep(1000);
  for (int r = 0; r < rounds; r++) {
    collect();
    for (int i = 0; i < 2000; i++) fill(goalloc_gc_malloc(64), 64, 0xEE);
  }
  __atomic_store_n(&st_done, 1, __ATOMIC_RELEASE);
  int bad = 0;
  for (int t = 0; t < ST_THREADS; t++) { pthread_join(th[t], 0); bad += st_bad[t]; }
  goalloc_read_memstats(&ms);
  static uint64_t pause_ns[256], pause_end[256];
  goalloc_gc_read_pauses(pause_ns, pause_end);
  uint64_t max1 = 0, max2 = 0;
  for (uint64_t k = p0 + 1; k <= ms.num_pauses && k + 256 > ms.num_pauses; k++) {
    uint64_t v = pause_ns[(k - 1) % 256];
    if (conc_mode() && k % 2 == 1) { if (v > max1) max1 = v; } else if (v > max2) max2 = v;
  }
  printf("stacks: %d threads x %d KiB of stack, %llu cycles: ", ST_THREADS, ST_DEPTH * 4, (unsigned long long)(ms.num_gc - n0));
  if (conc_mode()) printf("longest first stop %.3f ms, second stop %.3f ms\n", max1 / 1e6, max2 / 1e6);
  else printf("longest pause %.3f ms\n", max2 / 1e6);
  if (getenv("ST_PAUSES"))
    for (uint64_t k = p0 + 1; k <= ms.num_pauses && k + 256 > ms.num_pauses; k++) printf(" %.3f", pause_ns[(k - 1) % 256] / 1e6);
  CHECK("stacks: collections ran", ms.num_gc >= n0 + (uint64_t)rounds, "%llu", (unsigned long long)(ms.num_gc - n0));
  CHECK("stacks: every object held only by a deep frame of another thread survives intact", bad == 0,
        "%d of %d lost", bad, ST_THREADS * ST_DEPTH);
}

// read(2) during the concurrent mark (from the event hook, as resurrect) into a collected scan
// object, a noscan one and malloc memory. gcdirty=mprotect's known limit: the scan object's page
// is read-only for the period, so that read fails with EFAULT (`efault` expects it; elsewhere it
// succeeds); a store there is caught and succeeds; after the cycle the read succeeds. With
// `crash`, the hook writes to read-only memory outside the heap (the process must die of
// SIGSEGV, the handler forwarding the fault); `guard`, past a large object (GOALLOC_SECURE=1:
// its guard page, which must stay inaccessible).
static char *volatile s_scan;
static char *s_noscan, *s_malloc;
static volatile int s_marking, s_done, s_fds[2];
static volatile long s_rscan, s_rnoscan, s_rmalloc;
static volatile int s_errscan, s_stored;
static const char *s_what = "";
static const char s_ro[] = "read-only";
static char *volatile s_big;
static void syscalls_hook(int ev) {
  if (ev == EV_MARK_START) s_marking = 1;
  else if (ev == EV_PRE_STOP_WORLD && s_marking && !s_done) {
    s_done = 1;
    if (!strcmp(s_what, "crash")) *(volatile char *)(uintptr_t)s_ro = 1;
    if (!strcmp(s_what, "guard")) s_big[65536 + 100] = 1;
    if (write(s_fds[1], "abcdefghabcdefghabcdefgh", 24) != 24) return;
    errno = 0;
    s_rscan = read(s_fds[0], s_scan + 8, 8);
    s_errscan = errno;
    if (s_rscan < 0 && read(s_fds[0], s_noscan, 8) < 0) return;  // (the 8 bytes left unread)
    s_rnoscan = read(s_fds[0], s_noscan, 8);
    s_rmalloc = read(s_fds[0], s_malloc, 8);
    ((char *volatile)s_scan)[16] = 'z';
    s_stored = 1;
  }
}
static void syscalls(const char *what) {
  if (!conc_mode()) { CHECK("syscalls: (stopped mode: nothing to check)", 1, ""); return; }
  s_what = what ? what : "";
  int fds[2];
  if (pipe(fds) != 0) { CHECK("syscalls: pipe", 0, "errno %d", errno); return; }
  s_fds[0] = fds[0]; s_fds[1] = fds[1];
  s_scan = goalloc_gc_malloc(64);
  s_noscan = goalloc_gc_malloc_noscan(64);
  s_malloc = malloc(64);
  s_big = goalloc_gc_malloc(65536);
  GC_set_on_collection_event(syscalls_hook);
  collect();
  GC_set_on_collection_event(0);
  struct goalloc_memstats st;
  goalloc_read_memstats(&st);
  int mp = st.gc_conc == 5;  // (gcdirty=mprotect, or auto where nothing else works)
  CHECK("syscalls: the hook ran during the mark", s_done && s_stored, "done %d stored %d", s_done, s_stored);
  if (mp) CHECK("syscalls: read(2) into a protected scan object fails with EFAULT", s_rscan == -1 && s_errscan == EFAULT,
                "read %ld errno %d", s_rscan, s_errscan);
  else CHECK("syscalls: read(2) into a scan object during the mark", s_rscan == 8, "read %ld errno %d", s_rscan, s_errscan);
  CHECK("syscalls: read(2) into noscan and malloc memory during the mark", s_rnoscan == 8 && s_rmalloc == 8,
        "noscan %ld malloc %ld", s_rnoscan, s_rmalloc);
  CHECK("syscalls: a store into the scan object during the mark", s_scan[16] == 'z', "%d", s_scan[16]);
  long after = write(fds[1], "12345678", 8) == 8 ? read(fds[0], s_scan + 8, 8) : -2;
  CHECK("syscalls: read(2) into the scan object after the cycle", after == 8 && !memcmp(s_scan + 8, "12345678", 8),
        "read %ld errno %d", after, errno);
  close(fds[0]); close(fds[1]);
  free(s_malloc);
}

// Threads mutating linked lists without any barrier while collections run (the main thread
// collects in a loop; the threads' allocations trigger cycles too), checked against a shadow
// model kept in malloc memory (never scanned): per list, the count and the sum of its nodes'
// ids, and in each node a check word. Nodes move between lists by plain pointer stores, so a
// node can be reachable only through a pointer a thread read earlier while the mark runs.
// mt_barrier (the third argument): 1 `barrier`, every pointer store into collected memory goes
// through goalloc_gc_write_barrier (GOALLOC_DEBUG=gcdirty=barrier's promise kept); 2
// `barrier-but-moves`, the same except a move's two stores (the unlink and the relink), which
// bypass it (the promise broken: gccheckmark=1 must catch it); 3 `store`, as 1 through goalloc.h's
// inline goalloc_gc_store.
enum { MT_LISTS = 64, MT_K = 0x9e3779b97f4a7c15ull };
static int mt_barrier;
static inline void mstore(void *slot, void *v, int bypass) {
  if (mt_barrier == 3) goalloc_gc_store((void **)slot, v);  // (the inline test, goalloc.h)
  else if (mt_barrier && !(bypass && mt_barrier == 2)) goalloc_gc_write_barrier((void **)slot, v);
  else *(void **)slot = v;
}
struct mnode { struct mnode *next; uint64_t id, check, pad; };
struct mstate {
  struct mnode **heads;     // collected scan array (kept by this struct, a global)
  uint64_t *count, *sum;    // the shadow (malloc: noscan)
  uint64_t rng, next_id;
  long ops, bad, verified;
  volatile int done;
};
static struct mstate mt[4];
static uint64_t mrand(struct mstate *st) { st->rng ^= st->rng << 13; st->rng ^= st->rng >> 7; st->rng ^= st->rng << 17; return st->rng; }
static long mverify(struct mstate *st, int l) {
  uint64_t n = 0, sum = 0;
  long bad = 0;
  for (struct mnode *p = st->heads[l]; p; p = p->next) {
    if (p->check != (p->id ^ MT_K)) { bad++; break; }
    n++;
    sum += p->id;
    if (n > 10000000) { bad++; break; }
  }
  if (n != st->count[l] || sum != st->sum[l]) bad++;
  st->verified++;
  return bad;
}
static int mt_enough;  // the main thread saw 3 collections: the mutators may stop after their ops
static void *mutator(void *arg) {
  struct mstate *st = arg;
  st->heads = goalloc_gc_malloc(MT_LISTS * sizeof(void *));
  st->count = calloc(MT_LISTS, 8);
  st->sum = calloc(MT_LISTS, 8);
  // (On a loaded machine the ops may end before 3 collections do: up to 50 x more then.)
  for (long op = 0; op < st->ops || (!__atomic_load_n(&mt_enough, __ATOMIC_ACQUIRE) && op < 50 * st->ops); op++) {
    uint64_t r = mrand(st);
    int l = (int)(r % MT_LISTS), l2 = (int)((r >> 8) % MT_LISTS), what = (int)((r >> 16) % 100);
    if (what < 40) {  // insert a new node after k steps
      struct mnode *n = goalloc_gc_malloc(sizeof *n);
      n->id = ++st->next_id;
      n->check = n->id ^ MT_K;
      struct mnode **at = &st->heads[l];
      for (int k = (int)((r >> 24) % 8); k > 0 && *at; k--) at = &(*at)->next;
      mstore(&n->next, *at, 0);
      mstore(at, n, 0);
      st->count[l]++;
      st->sum[l] += n->id;
    } else if (what < 65) {  // drop the head
      struct mnode *n = st->heads[l];
      if (n) {
        mstore(&st->heads[l], n->next, 0);
        st->count[l]--;
        st->sum[l] -= n->id;
      }
    } else if (what < 98) {  // move a node from list l to list l2 (read, unlink, store elsewhere)
      struct mnode **at = &st->heads[l];
      for (int k = (int)((r >> 24) % 16); k > 0 && *at && (*at)->next; k--) at = &(*at)->next;
      struct mnode *n = *at;
      if (n) {
        mstore(at, n->next, 1);
        st->count[l]--;
        st->sum[l] -= n->id;
        for (volatile int spin = (int)((r >> 40) % 64); spin > 0; spin--) {}
        struct mnode **to = &st->heads[l2];
        for (int k = (int)((r >> 32) % 16); k > 0 && *to; k--) to = &(*to)->next;
        mstore(&n->next, *to, 0);
        mstore(to, n, 1);
        st->count[l2]++;
        st->sum[l2] += n->id;
      }
    } else {
      st->bad += mverify(st, l);
    }
    if (op % 20000 == 0) for (int i = 0; i < MT_LISTS; i++) st->bad += mverify(st, i);
  }
  for (int i = 0; i < MT_LISTS; i++) st->bad += mverify(st, i);
  st->done = 1;
  return 0;
}
static void mutate(int threads, long ops, const char *barrier) {
  mt_barrier = !barrier ? 0 : !strcmp(barrier, "barrier") ? 1 : !strcmp(barrier, "barrier-but-moves") ? 2
             : !strcmp(barrier, "store") ? 3 : 0;
  if (threads > 4) threads = 4;
  pthread_t t[4];
  for (int i = 0; i < threads; i++) {
    memset(&mt[i], 0, sizeof mt[i]);
    mt[i].rng = 0x1234567ull * (uint64_t)(i + 1) + 99;
    mt[i].ops = ops;
    pthread_create(&t[i], 0, mutator, &mt[i]);
  }
  uint64_t n0 = num_gc();
  long collections = 0;
  for (;;) {
    int running = 0;
    for (int i = 0; i < threads; i++) running += !__atomic_load_n(&mt[i].done, __ATOMIC_ACQUIRE);
    if (!running) break;
    collect();
    collections++;
    if (num_gc() - n0 >= 3) __atomic_store_n(&mt_enough, 1, __ATOMIC_RELEASE);
  }
  long bad = 0, verified = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(t[i], 0);
    bad += mt[i].bad;
    verified += mt[i].verified;
  }
  uint64_t cycles = num_gc() - n0;
  goalloc_read_memstats(&ms);
  printf("mutate: %ld forced collections, %llu cycles, %ld lists verified, gc_conc %llu, %llu pauses, barrier %d\n",
         collections, (unsigned long long)cycles, verified, (unsigned long long)ms.gc_conc,
         (unsigned long long)ms.num_pauses, mt_barrier);
  CHECK("mutate: every list matches its shadow", bad == 0, "%ld bad", bad);
  CHECK("mutate: collections ran while the threads mutated", cycles >= 3, "%llu cycles", (unsigned long long)cycles);
  CHECK("mutate: concurrent cycles record two pauses each", !conc_mode() || ms.num_pauses == 2 * ms.num_gc,
        "%llu pauses, %llu cycles", (unsigned long long)ms.num_pauses, (unsigned long long)ms.num_gc);
  for (int i = 0; i < threads; i++) { mt[i].heads = 0; free(mt[i].count); free(mt[i].sum); }
}

// `nouffd SCENARIO ...`: the scenario, run again with userfaultfd refused (ENOSYS, a seccomp
// filter), so gcdirty=auto falls back (soft-dirty where the kernel has it, else mprotect).
static int nouffd(char **args) {
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_userfaultfd, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {4, f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
    printf("FAIL nouffd: seccomp refused (errno %d)\n", errno);
    return 1;
  }
  args[-1] = "gc";
  execv("/proc/self/exe", args - 1);
  printf("FAIL nouffd: exec (errno %d)\n", errno);
  return 1;
}

int main(int argc, char **argv) {
  // The test runner starts us with some signals blocked (the mask is inherited across exec); a
  // thread that blocks the GC's stop signal blocks every collection (goalloc.h), so start clean.
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, 0);
  const char *what = argc > 1 ? argv[1] : "reach";
  if (!strcmp(what, "nouffd") && argc > 2) return nouffd(argv + 2);
  if (!strcmp(what, "reach")) reach();
  else if (!strcmp(what, "noscan")) noscan();
  else if (!strcmp(what, "interior")) interior();
  else if (!strcmp(what, "zero")) zeroing();
  else if (!strcmp(what, "free")) frees();
  else if (!strcmp(what, "signal")) sighandler();
  else if (!strcmp(what, "torture")) torture(argc > 2 ? atoi(argv[2]) : 200);
  else if (!strcmp(what, "fork")) forks();
  else if (!strcmp(what, "pacing")) pacing();
  else if (!strcmp(what, "assist")) assist(argc > 2 ? atol(argv[2]) : 3000000);
  else if (!strcmp(what, "limiter")) limiter(argc > 2 ? atof(argv[2]) : 3.0);
  else if (!strcmp(what, "memlimit")) memlimit();
  else if (!strcmp(what, "lazy")) lazy();
  else if (!strcmp(what, "fuzz")) fuzz(argc > 2 ? atoi(argv[2]) : 100000);
  else if (!strcmp(what, "graph")) graph(argc > 2 ? atoi(argv[2]) : 100000);
  else if (!strcmp(what, "lazythreads")) lazythreads(argc > 2 ? atoi(argv[2]) : 100);
  else if (!strcmp(what, "stacks")) stacks(argc > 2 ? atoi(argv[2]) : 20);
  else if (!strcmp(what, "resurrect")) {
    r_barrier = argc > 3 && !strcmp(argv[3], "barrier");
    resurrect(argc > 2 ? atoi(argv[2]) : 20);
  }
  else if (!strcmp(what, "syscalls")) syscalls(argc > 2 ? argv[2] : 0);
  else if (!strcmp(what, "mutate")) mutate(argc > 2 ? atoi(argv[2]) : 3, argc > 3 ? atol(argv[3]) : 300000, argc > 4 ? argv[4] : 0);
  else if (!strcmp(what, "percent")) printf("percent %d\n", goalloc_gc_set_percent(100));
  else { printf("unknown scenario %s\n", what); return 2; }
  return failures ? 1 : 0;
}
