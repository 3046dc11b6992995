// fuzz_ops.c: a libFuzzer target that turns its input into a sequence of allocator operations
// and checks that every live block stays intact.
//
// Run it under LD_PRELOAD=libgoalloc.so (Tests/PreloadTests/ReliabilityTests.swift does): then
// libFuzzer itself, this target and its helper thread all allocate from GoAlloc. Without the
// preload it runs against glibc (a control: the target must pass there too).
//
// The model:
//   - a table of up to MAX_LIVE live blocks; each block is filled over its whole usable size
//     (malloc_usable_size) with a pattern derived from (address, requested size), and checked in
//     full before realloc/free, every VERIFY_EVERY operations and at the end of the input;
//   - calloc'ed memory must read as zero; realloc must keep min(old, new) bytes; aligned
//     allocations must be aligned; failures must be NULL with errno ENOMEM/EINVAL;
//   - a persistent helper thread allocates and frees on request (remote frees in both directions),
//     and can be made to exit (its cache is flushed while its objects are still live here);
//   - fork: the child checks every live block, allocates, frees and checks the heap;
//   - goalloc_check_heap() (found with dlsym) every CHECK_EVERY operations and at the end; a 0
//     aborts;
//   - FUZZ_STATS=1 prints totals at exit, FUZZ_TRACE=1 every operation;
//   - with FUZZ_BADFREE=1 and GOALLOC_DEBUG=badfree=warn: interior-pointer, wild and double frees
//     (and realloc / malloc_usable_size of such pointers), which the allocator must report and
//     ignore without touching any live block.
// Everything is freed at the end of each input.
//
// Build: clang -O2 -g -fsanitize=fuzzer fuzz_ops.c -o fuzz_ops -lpthread -ldl
//        cc -O2 -g -DFUZZ_STANDALONE fuzz_ops.c -o fuzz_replay -lpthread -ldl   (no libFuzzer:
//        replays files/directories, or runs `-random N SEED` generated inputs)
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

// Every allocator call goes through a volatile function pointer: the compiler knows the C
// allocator's contract (it may elide a malloc whose result is only tested, assume alignment, fold
// an invalid aligned_alloc to NULL), and would otherwise optimise away the very checks made here.
static void *(*volatile fn_malloc)(size_t) = malloc;
static void *(*volatile fn_calloc)(size_t, size_t) = calloc;
static void *(*volatile fn_realloc)(void *, size_t) = realloc;
static void *(*volatile fn_reallocarray)(void *, size_t, size_t) = reallocarray;
static void (*volatile fn_free)(void *) = free;
static int (*volatile fn_posix_memalign)(void **, size_t, size_t) = posix_memalign;
static void *(*volatile fn_aligned_alloc)(size_t, size_t) = aligned_alloc;
static void *(*volatile fn_memalign)(size_t, size_t) = memalign;
static void *(*volatile fn_valloc)(size_t) = valloc;
static void *(*volatile fn_pvalloc)(size_t) = pvalloc;
static size_t (*volatile fn_malloc_usable_size)(void *) = malloc_usable_size;
static int (*volatile fn_malloc_trim)(size_t) = malloc_trim;
#define malloc(n) fn_malloc(n)
#define calloc(n, m) fn_calloc(n, m)
#define realloc(p, n) fn_realloc(p, n)
#define reallocarray(p, n, m) fn_reallocarray(p, n, m)
#define free(p) fn_free(p)
#define posix_memalign(o, a, n) fn_posix_memalign(o, a, n)
#define aligned_alloc(a, n) fn_aligned_alloc(a, n)
#define memalign(a, n) fn_memalign(a, n)
#define valloc(n) fn_valloc(n)
#define pvalloc(n) fn_pvalloc(n)
#define malloc_usable_size(p) fn_malloc_usable_size(p)
#define malloc_trim(n) fn_malloc_trim(n)

#define MAX_LIVE 128
#define CHECK_EVERY 64      // goalloc_check_heap() every this many operations
#define VERIFY_EVERY 256    // every live block checked every this many operations
#define LIVE_BUDGET (4u << 20)   // usable bytes held at once (keeps each run fast)

// The byte loops (pattern fill/check, zero checks) carry no coverage instrumentation: traced
// compares there would cost most of the run time and guide nothing.
#if defined(__clang__)
#define NOCOV __attribute__((no_sanitize("coverage"), noinline))
#else
#define NOCOV __attribute__((noinline))
#endif

// MARK: allocator hooks

static int (*check_heap_fn)(void);
static size_t (*release_fn)(void);
static int badfree_mode;    // FUZZ_BADFREE=1 and GOALLOC_DEBUG has badfree=warn
static int fork_enabled = 1;
static int trace_mode;       // FUZZ_TRACE=1: one line per operation on stderr

static void init_once(void) {
  static int done;
  if (done) return;
  done = 1;
  check_heap_fn = (int (*)(void))dlsym(RTLD_DEFAULT, "goalloc_check_heap");
  release_fn = (size_t (*)(void))dlsym(RTLD_DEFAULT, "goalloc_release_free_memory");
  const char *req = getenv("FUZZ_REQUIRE_GOALLOC");
  if (req && *req == '1' && !check_heap_fn) {
    fprintf(stderr, "fuzz_ops: FUZZ_REQUIRE_GOALLOC=1 but goalloc_check_heap is not loaded\n");
    abort();
  }
  const char *bf = getenv("FUZZ_BADFREE"), *dbg = getenv("GOALLOC_DEBUG");
  badfree_mode = bf && *bf == '1' && check_heap_fn && dbg && strstr(dbg, "badfree=warn");
  // The process's first large free starts GoAlloc's scavenger thread, and that thread's creation
  // allocates into the pages just freed: do it now, so that a double free in do_bad() is always a
  // double free (not a free of the new thread's memory).
  free(malloc(1 << 20));
  const char *tr = getenv("FUZZ_TRACE");
  trace_mode = tr && *tr == '1';
  const char *nf = getenv("FUZZ_NO_FORK");
  if (nf && *nf == '1') fork_enabled = 0;
}

// Extra coverage for libFuzzer: allocator outcomes (size class reached, realloc in place or
// moved, address reuse, alignment, large objects) count as new features, so inputs that reach new
// allocator states are kept. In the standalone build the section is just unused data.
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t extra_counters[512];
static inline void feature(unsigned i) {
  uint8_t *c = &extra_counters[i % sizeof extra_counters];
  if (*c != 255) (*c)++;
}
static unsigned log2_bucket(size_t x) { return x ? 64 - (unsigned)__builtin_clzll(x) : 0; }

// The compiler knows what malloc, calloc and aligned_alloc promise (alloc_align, zeroed memory)
// and may fold the very checks made here; an opaque copy of the pointer keeps them.
static inline void *opaque(void *p) { __asm__ volatile("" : "+r"(p)); return p; }
static inline uintptr_t addr(void *p) { return (uintptr_t)opaque(p); }

// MARK: failure reporting

static const char *last_op = "start";
static unsigned long op_index;
static unsigned long long n_inputs, n_ops, n_checks, n_forks, n_helper_ops, n_bad, n_bytes;
static unsigned long long n_bad_kind[6];

// FUZZ_STATS=1: totals on stderr at exit (inputs, operations, heap checks, ...).
__attribute__((destructor)) static void print_totals(void) {
  const char *e = getenv("FUZZ_STATS");
  if (!e || *e != '1' || !n_inputs) return;
  fprintf(stderr, "fuzz_ops: totals: %llu inputs, %llu operations, %llu heap checks, %llu forks, "
          "%llu helper-thread calls, %llu bad calls, %llu MiB patterned\n", n_inputs, n_ops,
          n_checks, n_forks, n_helper_ops, n_bad, n_bytes >> 20);
  if (n_bad)
    fprintf(stderr, "fuzz_ops: bad calls: %llu interior free, %llu free(global), %llu free(stack), %llu double "
            "free, %llu realloc(interior), %llu malloc_usable_size(interior)\n", n_bad_kind[0],
            n_bad_kind[1], n_bad_kind[2], n_bad_kind[3], n_bad_kind[4], n_bad_kind[5]);
}

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...) {
  char buf[512];
  __builtin_va_list ap;
  __builtin_va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  __builtin_va_end(ap);
  fprintf(stderr, "fuzz_ops: FAILURE at op #%lu (%s): %s\n", op_index, last_op, buf);
  fflush(stderr);
  abort();
}

static void check_heap(void) {
  n_checks++;
  if (check_heap_fn && check_heap_fn() != 1) fail("goalloc_check_heap() returned 0");
}

// MARK: the pattern

static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30; x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27; x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
static inline uint64_t seed_of(const void *p, size_t size) {
  return mix64((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull ^ (uint64_t)size);
}
static inline uint64_t word_at(uint64_t seed, size_t w) {
  uint64_t x = seed + (uint64_t)w * 0xD1B54A32D192ED03ull;
  return x ^ (x >> 29);
}
static inline uint8_t byte_at(uint64_t seed, size_t off) {
  return (uint8_t)(word_at(seed, off / 8) >> (8 * (off % 8)));
}

NOCOV static void fill(unsigned char *p, uint64_t seed, size_t from, size_t to) {
  size_t i = from;
  for (; i < to && i % 8; i++) p[i] = byte_at(seed, i);
  for (; i + 8 <= to; i += 8) { uint64_t w = word_at(seed, i / 8); memcpy(p + i, &w, 8); }
  for (; i < to; i++) p[i] = byte_at(seed, i);
}

NOCOV static void report_mismatch(const unsigned char *p, uint64_t seed, size_t from, size_t to,
                            const char *what, size_t size) {
  for (size_t i = from; i < to; i++)
    if (p[i] != byte_at(seed, i))
      fail("%s: block %p (size %zu) corrupted at offset %zu of [%zu, %zu): 0x%02x, expected 0x%02x",
           what, (void *)p, size, i, from, to, p[i], byte_at(seed, i));
}

NOCOV static void verify(const unsigned char *p, uint64_t seed, size_t from, size_t to, const char *what,
                   size_t size) {
  size_t i = from;
  for (; i < to && i % 8; i++) if (p[i] != byte_at(seed, i)) goto bad;
  for (; i + 8 <= to; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    if (w != word_at(seed, i / 8)) goto bad;
  }
  for (; i < to; i++) if (p[i] != byte_at(seed, i)) goto bad;
  return;
bad:
  report_mismatch(p, seed, from, to, what, size);
}

// MARK: the live-block table

enum { OWNER_MAIN = 0, OWNER_HELPER = 1 };
struct block {
  unsigned char *p;
  size_t size;     // requested
  size_t usable;   // malloc_usable_size at allocation (>= size), all of it patterned
  uint64_t seed;
  int owner;       // which thread allocated it (for features only)
};
static struct block live[MAX_LIVE];
static size_t live_bytes;
static void *recently_freed[8];
static unsigned recent_pos;

// malloc_usable_size: at least the request, and not absurdly more (slack for size classes, pages,
// realloc shrinking in place and, for aligned blocks, the alignment).
static size_t usable_of(void *p, size_t size, size_t align) {
  size_t u = malloc_usable_size(p);
  if (u < size) fail("malloc_usable_size(%p) = %zu < requested %zu", p, u, size);
  if (u > 2 * size + 2 * align + 65536)
    fail("malloc_usable_size(%p) = %zu, far above requested %zu (alignment %zu)", p, u, size, align);
  return u;
}

static void note_address(void *p) {
  for (unsigned i = 0; i < 8; i++) if (recently_freed[i] == p) { feature(400 + i); break; }
  feature(420 + (unsigned)(((uintptr_t)p >> 4) & 15));
}

// Records a new block in slot s (which must be empty) and patterns it.
static void adopt_aligned(int s, void *p, size_t size, int owner, size_t align) {
  struct block *b = &live[s];
  b->p = p;
  b->size = size;
  b->usable = usable_of(p, size, align);
  b->seed = seed_of(p, size);
  b->owner = owner;
  fill(b->p, b->seed, 0, b->usable);
  live_bytes += b->usable;
  n_bytes += b->usable;
  feature(log2_bucket(size));
  feature(64 + log2_bucket(b->usable - size));
  note_address(p);
}

static void adopt(int s, void *p, size_t size, int owner) { adopt_aligned(s, p, size, owner, 0); }

static void check_block(const struct block *b, const char *what) {
  if (b->p) verify(b->p, b->seed, 0, b->usable, what, b->size);
}

static void forget(int s) {
  live_bytes -= live[s].usable;
  recently_freed[recent_pos++ % 8] = live[s].p;
  memset(&live[s], 0, sizeof live[s]);
}

static void verify_all(const char *what) {
  for (int i = 0; i < MAX_LIVE; i++) check_block(&live[i], what);
}

// MARK: the helper thread (remote frees both ways; thread exit with live objects)

enum { H_NONE, H_MALLOC, H_FREE, H_REALLOC, H_CHURN, H_EXIT };
static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int op, done, alive;
  void *ptr, *result;
  size_t size;
  pthread_t thread;
} helper = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, H_NONE, 0, 0, 0, 0, 0, 0};

static void *helper_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&helper.mu);
  for (;;) {
    while (helper.op == H_NONE) pthread_cond_wait(&helper.cv, &helper.mu);
    int op = helper.op;
    switch (op) {
    case H_MALLOC: helper.result = malloc(helper.size); break;
    case H_FREE: free(helper.ptr); break;
    case H_REALLOC: helper.result = realloc(helper.ptr, helper.size); break;
    case H_CHURN: {
      // Allocate and free a burst of one size (fills and empties spans of this thread's cache).
      void *tmp[64];
      size_t n = 1 + helper.size % 64, sz = helper.size / 64;
      for (size_t i = 0; i < n; i++) { tmp[i] = malloc(sz); if (tmp[i]) memset(tmp[i], 0x5A, sz); }
      for (size_t i = 0; i < n; i++) free(tmp[n % 7 ? (i * 7) % n : i]);  // a permutation
      break;
    }
    case H_EXIT: break;
    }
    helper.op = H_NONE;
    helper.done = 1;
    pthread_cond_broadcast(&helper.cv);
    if (op == H_EXIT) break;
  }
  pthread_mutex_unlock(&helper.mu);
  return NULL;
}

static void *helper_call(int op, void *ptr, size_t size) {
  n_helper_ops++;
  if (!helper.alive) {
    if (op == H_EXIT) return NULL;
    if (pthread_create(&helper.thread, NULL, helper_main, NULL) != 0) fail("pthread_create failed");
    helper.alive = 1;
    feature(440);
  }
  pthread_mutex_lock(&helper.mu);
  helper.op = op;
  helper.ptr = ptr;
  helper.size = size;
  helper.done = 0;
  pthread_cond_broadcast(&helper.cv);
  while (!helper.done) pthread_cond_wait(&helper.cv, &helper.mu);
  void *r = helper.result;
  helper.result = NULL;
  pthread_mutex_unlock(&helper.mu);
  if (op == H_EXIT) {
    pthread_join(helper.thread, NULL);
    helper.alive = 0;
  }
  return r;
}

// MARK: input decoding

struct reader { const uint8_t *d; size_t n, i; };
static int more(struct reader *r) { return r->i < r->n; }
static uint8_t u8(struct reader *r) { return r->i < r->n ? r->d[r->i++] : 0; }
static uint16_t u16(struct reader *r) { uint16_t a = u8(r); return (uint16_t)(a | (uint16_t)u8(r) << 8); }

// Go's size class boundaries (and GoAlloc's malloc-mode ones): sizes just below, at and above
// them are the interesting ones.
static const uint16_t class_sizes[] = {
  8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352,
  384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304,
  2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240, 10880,
  12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768};
#define NCLASS (sizeof class_sizes / sizeof class_sizes[0])

static size_t pick_size(struct reader *r) {
  uint8_t sel = u8(r);
  uint16_t v = u16(r);
  size_t s;
  switch (sel % 16) {
  case 0: s = v % 17; break;                                   // 0..16
  case 1: case 2: case 3: s = v % 129; break;                  // small
  case 4: case 5: s = v % 1025; break;
  case 6: case 7: s = v % 8193; break;
  case 8: s = v % 32769; break;                                // up to the largest class
  case 9: case 10: s = (size_t)class_sizes[v % NCLASS] + (size_t)(sel >> 4) % 3 - 1; break;
  case 11: s = 32768 + (v % 4) - 1 + (size_t)(sel >> 6) * 8192; break;  // small/large edge
  case 12: s = 32769 + (size_t)v * (sel >> 6); break;         // large, up to ~224 KiB
  case 13: s = ((size_t)(v % 16) + 1) * 8192 + (size_t)(sel >> 4) % 3 - 1; break;  // page edges
  case 14: s = (sel & 0xF0) == 0xF0 ? ((size_t)(v % 2) + 1) << 20 : 32768 + (size_t)v; break;  // 1..2 MiB
  default: s = (size_t)v; break;
  }
  if (live_bytes + s > LIVE_BUDGET) s %= 4097;
  return s;
}

static size_t pick_alignment(struct reader *r, int allow_bad) {
  uint8_t a = u8(r);
  if (allow_bad && a >= 250) {
    static const size_t bad[] = {0, 3, 24, 48, 4097, (size_t)1 << 63};
    return bad[a - 250];
  }
  return (size_t)1 << (a % 22);  // 1 .. 2 MiB
}

// MARK: operations

static void release_slot(int s, int via_helper) {
  struct block *b = &live[s];
  if (!b->p) return;
  check_block(b, "before free");
  if (via_helper) { helper_call(H_FREE, b->p, 0); feature(441 + b->owner); }
  else free(b->p);
  forget(s);
}

static void do_malloc(int s, size_t size) {
  release_slot(s, 0);
  errno = 0;
  void *p = malloc(size);
  if (!p) fail("malloc(%zu) returned NULL (errno %d)", size, errno);
  if (size >= 16 && (addr(p) & 15)) fail("malloc(%zu) = %p is not 16-byte aligned", size, p);
  if ((addr(p) & 7)) fail("malloc(%zu) = %p is not 8-byte aligned", size, p);
  adopt(s, p, size, OWNER_MAIN);
}

NOCOV static size_t first_nonzero(const unsigned char *c, size_t n) {
  for (size_t i = 0; i < n; i++) if (c[i]) return i;
  return SIZE_MAX;
}

NOCOV static size_t first_not(const unsigned char *c, unsigned char v, size_t n) {
  for (size_t i = 0; i < n; i++) if (c[i] != v) return i;
  return SIZE_MAX;
}

static void do_calloc(struct reader *r, int s) {
  release_slot(s, 0);
  uint8_t k = u8(r);
  size_t size = pick_size(r);
  if (k >= 248) {  // overflowing products must fail cleanly
    size_t n = (k & 1) ? SIZE_MAX / 2 + 2 : ((size_t)1 << 33);
    size_t m = (k & 1) ? 2 : ((size_t)1 << 31) + size;
    errno = 0;
    void *p = opaque(calloc(n, m));
    if (p) fail("calloc(%zu, %zu) did not fail", n, m);
    if (errno != ENOMEM) fail("calloc overflow: errno %d, expected ENOMEM", errno);
    feature(450);
    return;
  }
  size_t n = 1 + k % 16, m = size / n;
  void *p = calloc(n, m);
  if (!p) fail("calloc(%zu, %zu) returned NULL", n, m);
  size_t nz = first_nonzero(opaque(p), n * m);
  if (nz != SIZE_MAX)
    fail("calloc(%zu, %zu) = %p: byte %zu is 0x%02x, not zero", n, m, p, nz, ((unsigned char *)p)[nz]);
  for (unsigned i = 0; i < 8; i++) if (recently_freed[i] == p) feature(451);  // zeroed reuse
  adopt(s, p, n * m, OWNER_MAIN);
}

static void do_realloc(struct reader *r, int s) {
  struct block *b = &live[s];
  uint8_t how = u8(r);
  size_t size;
  if (!b->p) {  // realloc(NULL, n) is malloc
    size = pick_size(r);
    void *p = realloc(NULL, size);
    if (!p) fail("realloc(NULL, %zu) returned NULL", size);
    adopt(s, p, size, OWNER_MAIN);
    feature(452);
    return;
  }
  switch (how % 8) {
  case 0: size = b->size * 2 + 1; break;
  case 1: size = b->size / 2; break;
  case 2: size = b->size + 1; break;
  case 3: size = b->size ? b->size - 1 : 0; break;
  case 4: size = b->usable; break;
  case 5: size = b->usable + 1; break;
  default: size = pick_size(r); break;
  }
  if (live_bytes + size > LIVE_BUDGET) size %= 4097;
  check_block(b, "before realloc");
  if (how >= 250) {  // an impossible size: NULL + ENOMEM, the block untouched
    size_t huge = how & 1 ? SIZE_MAX / 2 : SIZE_MAX - 4096;
    errno = 0;
    void *q = opaque(realloc(b->p, huge));
    if (q) fail("realloc(%p, %zu) did not fail", (void *)b->p, huge);
    if (errno != ENOMEM) fail("realloc huge: errno %d, expected ENOMEM", errno);
    check_block(b, "after failed realloc");
    feature(453);
    return;
  }
  if (size == 0 && how % 16 == 9) {  // glibc: realloc(p, 0) frees p and returns NULL
    void *q = realloc(b->p, 0);
    if (q) { forget(s); adopt(s, q, 0, OWNER_MAIN); }
    else forget(s);
    feature(454);
    return;
  }
  if (size == 0) size = 1;
  struct block old = *b;
  void *q;
  if (how % 16 == 10 && helper.alive) { q = helper_call(H_REALLOC, b->p, size); feature(455); }
  else q = realloc(b->p, size);
  if (!q) fail("realloc(%p, %zu) returned NULL", (void *)old.p, size);
  size_t keep = old.size < size ? old.size : size;
  verify(q, old.seed, 0, keep, "realloc kept bytes", size);
  feature(q == old.p ? 456 : 457);
  live_bytes -= old.usable;
  if (q != old.p) recently_freed[recent_pos++ % 8] = old.p;
  memset(b, 0, sizeof *b);
  adopt(s, q, size, OWNER_MAIN);
}

static void do_reallocarray(struct reader *r, int s) {
  struct block *b = &live[s];
  uint8_t k = u8(r);
  if (!b->p) return;
  check_block(b, "before reallocarray");
  if (k & 1) {  // overflow: NULL + ENOMEM, block untouched
    errno = 0;
    volatile size_t third = SIZE_MAX / 3;
    void *q = opaque(reallocarray(b->p, third, 4));
    if (q) fail("reallocarray overflow did not fail");
    if (errno != ENOMEM) fail("reallocarray overflow: errno %d", errno);
    check_block(b, "after failed reallocarray");
    feature(458);
    return;
  }
  size_t n = 1 + (k >> 1) % 32, m = 1 + pick_size(r) / 32;
  if (live_bytes + n * m > LIVE_BUDGET) { n = 1; m %= 4097; m++; }
  struct block old = *b;
  void *q = reallocarray(b->p, n, m);
  if (!q) fail("reallocarray(%p, %zu, %zu) returned NULL", (void *)old.p, n, m);
  verify(q, old.seed, 0, old.size < n * m ? old.size : n * m, "reallocarray kept bytes", n * m);
  live_bytes -= old.usable;
  memset(b, 0, sizeof *b);
  adopt(s, q, n * m, OWNER_MAIN);
}

static void do_aligned(struct reader *r, int s) {
  release_slot(s, 0);
  uint8_t kind = u8(r);
  size_t align = pick_alignment(r, 1), size = pick_size(r);
  void *p = NULL;
  int pow2 = align && !(align & (align - 1));
  int valid_posix = pow2 && align % sizeof(void *) == 0;
  if (align > ((size_t)1 << 40)) {  // no such block can exist: every entry point must fail
    void *out = (void *)0x1;
    int rc = posix_memalign(&out, align, size);
    if (rc == 0 || out != (void *)0x1) fail("posix_memalign(%zu, %zu) did not fail cleanly", align, size);
    errno = 0;
    if ((p = opaque(aligned_alloc(align, size))) || (errno != ENOMEM && errno != EINVAL))
      fail("aligned_alloc(%zu, %zu) = %p, errno %d", align, size, p, errno);
    errno = 0;
    if ((p = opaque(memalign(align, size))) || (errno != ENOMEM && errno != EINVAL))
      fail("memalign(%zu, %zu) = %p, errno %d", align, size, p, errno);
    feature(459);
    return;
  }
  if (kind >= 248 && valid_posix) {  // an impossible size: every aligned entry point must fail
    size_t huge = SIZE_MAX - (size_t)(kind & 7) * 4095;
    void *q = NULL;
    int rc = 0;
    errno = 0;
    switch (kind % 5) {
    case 0: rc = posix_memalign(&q, align, huge); if (rc) q = NULL; else errno = 0; break;
    case 1: q = aligned_alloc(align, huge); rc = errno; break;
    case 2: q = memalign(align, huge); rc = errno; break;
    case 3: q = valloc(huge); rc = errno; break;
    default: q = pvalloc(huge); rc = errno; break;
    }
    if (q) {
      fail("aligned call %u (alignment %zu, size %#zx) returned %p", kind % 5u, align, huge, q);
    } else if (rc != ENOMEM) {
      fail("aligned call %u (alignment %zu, size %#zx): error %d, expected ENOMEM", kind % 5u, align, huge, rc);
    }
    feature(462);
    return;
  }
  switch (kind % 5) {
  case 0: {
    void *out = (void *)0x1;  // must stay untouched on failure
    int rc = posix_memalign(&out, align, size);
    if (!valid_posix) {
      if (rc != EINVAL) fail("posix_memalign(align %zu) = %d, expected EINVAL", align, rc);
      if (out != (void *)0x1) fail("posix_memalign failure wrote *memptr");
      feature(460);
      return;
    }
    if (rc) fail("posix_memalign(%zu, %zu) = %d", align, size, rc);
    p = out;
    break;
  }
  case 1:
    errno = 0;
    p = aligned_alloc(align, size);
    if (!pow2) {
      // GoAlloc (and glibc >= 2.38) reject it with EINVAL; older glibc treats it as memalign.
      if (!p) {
        if (errno != EINVAL) fail("aligned_alloc(%zu, %zu): errno %d, expected EINVAL", align, size, errno);
        feature(461);
        return;
      }
      size_t a = 1; while (a < align) a <<= 1; align = a;
    } else if (!p) {
      fail("aligned_alloc(%zu, %zu) returned NULL (errno %d)", align, size, errno);
    }
    break;
  case 2:
    p = memalign(align, size);
    if (!p) fail("memalign(%zu, %zu) returned NULL", align, size);
    if (!pow2) { size_t a = 1; while (a < align) a <<= 1; align = a; }
    break;
  case 3: p = valloc(size); align = 4096; if (!p) fail("valloc(%zu) returned NULL", size); break;
  default:
    p = pvalloc(size);
    align = 4096;
    if (!p) fail("pvalloc(%zu) returned NULL", size);
    size = (size + 4095) & ~(size_t)4095;
    break;
  }
  if (align && (addr(p) & (align - 1)))
    fail("%p is not aligned to %zu (size %zu, call %u)", p, align, size, kind % 5u);
  feature(470 + log2_bucket(align));
  adopt_aligned(s, p, size, OWNER_MAIN, align);
}

static void do_usable(int s) {
  struct block *b = &live[s];
  if (!b->p) { if (malloc_usable_size(NULL) != 0) fail("malloc_usable_size(NULL) != 0"); return; }
  size_t u = malloc_usable_size(b->p);
  if (u != b->usable) fail("malloc_usable_size(%p) changed: %zu, was %zu", (void *)b->p, u, b->usable);
  check_block(b, "usable check");
}

static void do_burst(struct reader *r) {
  // Fill and drain spans of one class: n objects, freed in an order chosen by the input.
  uint8_t k = u8(r);
  size_t size = pick_size(r) % 4097, n = 1 + (size_t)k * 2;
  if (n * size > (128u << 10)) size = (128u << 10) / n;  // at most 128 KiB per burst
  void *tmp[512];
  for (size_t i = 0; i < n; i++) {
    tmp[i] = malloc(size);
    if (!tmp[i]) fail("burst malloc(%zu) returned NULL", size);
    memset(tmp[i], (int)(i & 0xFF), size);
  }
  for (size_t i = 0; i < n; i++) {
    size_t j = (k & 1) ? n - 1 - i : (k & 2) ? (i * 37) % n : i;
    if (!tmp[j]) continue;
    if (first_not(tmp[j], (unsigned char)(j & 0xFF), size) != SIZE_MAX)
      fail("burst object %zu of size %zu corrupted", j, size);
    free(tmp[j]);
    tmp[j] = NULL;
  }
  for (size_t i = 0; i < n; i++) free(tmp[i]);
  feature(480 + (unsigned)(k & 3));
}

static int forked_this_input;

static void do_fork(void) {
  if (!fork_enabled || forked_this_input++) return;  // at most one fork per input (they are slow)
  fflush(NULL);
  n_forks++;
  pid_t pid = fork();
  if (pid < 0) return;  // no process: nothing to check
  if (pid == 0) {
    // The child: the heap (and every block) must be usable after fork, with the locks free.
    verify_all("in fork child");
    void *a[32];
    for (int i = 0; i < 32; i++) { a[i] = malloc((size_t)i * 97 + 1); if (!a[i]) _exit(3); memset(a[i], i, (size_t)i * 97 + 1); }
    for (int i = 0; i < MAX_LIVE; i += 2) if (live[i].p) { free(live[i].p); live[i].p = NULL; }
    for (int i = 0; i < 32; i++) free(a[i]);
    verify_all("in fork child after frees");
    if (check_heap_fn && check_heap_fn() != 1) _exit(4);
    _exit(0);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    fail("fork child failed (status 0x%x)", st);
  feature(490);
}

static int global_object;

static void do_bad(struct reader *r) {
  if (!badfree_mode) return;
  uint8_t k = u8(r);
  int s = u8(r) % MAX_LIVE;
  struct block *b = &live[s];
  int local = 0;
  switch (k % 6) {
  case 0:  // interior pointer of a live block
    if (!b->p || b->usable < 32) return;
    { void *volatile inner = b->p + ((b->usable / 2) & ~(size_t)7); free(inner); }
    break;
  case 1: { void *volatile wild = &global_object; free(wild); break; }
  case 2: { void *volatile wild = &local; free(wild); break; }
  case 3: {  // double free
    size_t size = pick_size(r);
    void *p = malloc(size);
    if (!p) fail("malloc(%zu) returned NULL", size);
    void *volatile again = p;
    free(p);
    free(again);
    break;
  }
  case 4:  // realloc of an interior pointer: reported, NULL, block untouched
    if (!b->p || b->usable < 32) return;
    void *volatile inner = b->p + ((b->usable / 2) & ~(size_t)7);
    if (opaque(realloc(inner, 100)) != NULL)
      fail("realloc of an interior pointer did not fail");
    break;
  default:  // malloc_usable_size of an interior pointer: reported, 0
    if (!b->p || b->usable < 32) return;
    { void *volatile inner = b->p + ((b->usable / 2) & ~(size_t)7);
      if (malloc_usable_size(inner) != 0) fail("malloc_usable_size of an interior pointer is not 0"); }
    break;
  }
  feature(500 + k % 6);
  n_bad++;
  n_bad_kind[k % 6]++;
  if (b->p) check_block(b, "after bad free");
}

// MARK: the entry point

static void finish(void) {
  last_op = "end";
  verify_all("at end");
  for (int i = 0; i < MAX_LIVE; i++) release_slot(i, 0);
  if (live_bytes != 0) fail("live byte count %zu after freeing everything", live_bytes);
  check_heap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_once();
  n_inputs++;
  forked_this_input = 0;
  struct reader r = {data, size, 0};
  unsigned long ops = 0;
  while (more(&r)) {
    uint8_t op = u8(&r);
    int s = u8(&r) % MAX_LIVE;
    op_index = ops++;
    n_ops++;
    switch (op % 24) {
    case 0: case 1: case 2: case 3: last_op = "malloc"; do_malloc(s, pick_size(&r)); break;
    case 4: last_op = "calloc"; do_calloc(&r, s); break;
    case 5: case 6: case 7: last_op = "realloc"; do_realloc(&r, s); break;
    case 8: case 9: case 10: last_op = "free"; release_slot(s, 0); break;
    case 11: last_op = "free(NULL)"; free(NULL); break;
    case 12: case 13: last_op = "aligned"; do_aligned(&r, s); break;
    case 14: last_op = "malloc_usable_size"; do_usable(s); break;
    case 15: last_op = "check"; verify_all("periodic"); check_heap(); break;
    case 16:
      last_op = "release";
      if (release_fn && (op & 0x80)) { size_t n = release_fn(); feature(510 + (n > 0)); }
      else malloc_trim(0);
      verify_all("after release");
      break;
    case 17: {  // a block allocated on the helper thread
      last_op = "helper malloc";
      size_t sz = pick_size(&r);
      release_slot(s, 0);
      void *p = helper_call(H_MALLOC, NULL, sz);
      if (!p) fail("helper malloc(%zu) returned NULL", sz);
      adopt(s, p, sz, OWNER_HELPER);
      break;
    }
    case 18: last_op = "helper free"; release_slot(s, 1); break;
    case 19:
      last_op = "helper churn/exit";
      if (op & 0x80) helper_call(H_EXIT, NULL, 0);
      else helper_call(H_CHURN, NULL, (size_t)u16(&r) * 64 + u8(&r));
      break;
    case 20: last_op = "reallocarray"; do_reallocarray(&r, s); break;
    case 21: last_op = "burst"; do_burst(&r); break;
    case 22: last_op = (op & 0xC0) == 0xC0 ? "fork" : "burst"; if ((op & 0xC0) == 0xC0) do_fork(); else do_burst(&r); break;
    default: last_op = "bad"; do_bad(&r); break;
    }
    if (trace_mode) fprintf(stderr, "op %lu: %s slot %d (live %zu bytes)\n", op_index, last_op, s, live_bytes);
    if (ops % VERIFY_EVERY == 0) { last_op = "periodic check"; verify_all("periodic"); }
    if (ops % CHECK_EVERY == 0) { last_op = "periodic check"; check_heap(); }
  }
  finish();
  return 0;
}

// MARK: standalone driver (no libFuzzer)

#ifdef FUZZ_STANDALONE
static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); return 1; }
  uint8_t *buf = malloc(1 << 20);
  size_t n = fread(buf, 1, 1 << 20, f);
  fclose(f);
  LLVMFuzzerTestOneInput(buf, n);
  free(buf);
  return 0;
}

static int run_path(const char *path, unsigned long *count) {
  struct stat st;
  if (stat(path, &st) != 0) { perror(path); return 1; }
  if (!S_ISDIR(st.st_mode)) { (*count)++; return run_file(path); }
  DIR *d = opendir(path);
  if (!d) { perror(path); return 1; }
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    rc |= run_path(sub, count);
  }
  closedir(d);
  return rc;
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "-random") == 0) {
    unsigned long n = strtoul(argv[2], 0, 10), seed = argc > 3 ? strtoul(argv[3], 0, 10) : 1;
    size_t maxlen = argc > 4 ? strtoul(argv[4], 0, 10) : 2048;
    uint8_t *buf = malloc(maxlen);
    uint64_t x = seed;
    for (unsigned long i = 0; i < n; i++) {
      x = mix64(x + i);
      size_t len = 1 + x % maxlen;
      for (size_t j = 0; j < len; j++) { x = mix64(x); buf[j] = (uint8_t)x; }
      LLVMFuzzerTestOneInput(buf, len);
    }
    free(buf);
    printf("fuzz_replay: %lu random inputs OK\n", n);
    return 0;
  }
  unsigned long count = 0;
  int rc = 0;
  for (int i = 1; i < argc; i++) rc |= run_path(argv[i], &count);
  printf("fuzz_replay: %lu inputs replayed%s\n", count, rc ? " (some unreadable)" : " OK");
  return rc;
}
#endif
