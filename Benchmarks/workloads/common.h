/* Shared helpers for GoAlloc's benchmark workloads (header only: each workload is one .c file).
 * Built with: cc -O2 -pthread -fno-builtin -o NAME NAME.c
 *
 * - rng_*: a small seeded generator (xorshift64*), so every run of a workload does the same work.
 * - fail(): a broken allocator must fail loudly: message on stderr, exit status 3.
 * - tag_*: writes a 64-bit tag into every 1 KiB of a block (and its last 8 bytes) and checks
 *   it again later, so overlapping or recycled-while-live blocks are caught without memset-ing
 *   every byte.
 * - rss_kib(): VmRSS of this process from /proc/self/status. */
#ifndef GOALLOC_BENCH_COMMON_H
#define GOALLOC_BENCH_COMMON_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct { uint64_t s; } rng_t;

static inline void rng_seed(rng_t *r, uint64_t seed) {
  r->s = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  if (r->s == 0) r->s = 1;
}

static inline uint64_t rng_next(rng_t *r) {
  uint64_t x = r->s;
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  r->s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n). */
static inline uint64_t rng_below(rng_t *r, uint64_t n) { return (rng_next(r) >> 11) % n; }

/* Uniform in [lo, hi]. */
static inline uint64_t rng_range(rng_t *r, uint64_t lo, uint64_t hi) { return lo + rng_below(r, hi - lo + 1); }

/* Log-uniform-ish size in [lo, hi]: pick a power-of-two band, then a point in it, so small sizes
 * are as common as large ones per band (like real programs) but every size in range occurs. */
static inline size_t rng_size(rng_t *r, size_t lo, size_t hi) {
  int lb = 63 - __builtin_clzll((unsigned long long)lo), hb = 63 - __builtin_clzll((unsigned long long)hi);
  int band = lb + (int)rng_below(r, (uint64_t)(hb - lb + 1));
  size_t a = (size_t)1 << band, b = a * 2 - 1;
  if (a < lo) a = lo;
  if (b > hi) b = hi;
  return (size_t)rng_range(r, a, b);
}

__attribute__((unused, noreturn)) static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("WORKLOAD FAILED: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stderr);
  _exit(3);
}

static inline void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL) fail("malloc(%zu) returned NULL", n);
  return p;
}

/* Tag of a block: depends on who owns it and which generation it is, never 0. */
static inline uint64_t tag_of(uint64_t owner, uint64_t gen) {
  return ((owner + 1) * 0x9E3779B97F4A7C15ull) ^ (gen * 0xD6E8FEB86659FD93ull) ^ 1;
}

/* Writes `tag` at offset 0, 1024, 2048, ... and at the last 8 bytes; strided words never overlap the
 * last one. Blocks under 16 bytes get every byte set to the tag's low byte instead. */
static inline void tag_write(void *p, size_t size, uint64_t tag) {
  unsigned char *b = p;
  if (size < 16) { for (size_t i = 0; i < size; i++) b[i] = (unsigned char)(tag & 0xff); return; }
  for (size_t off = 0; off + 16 <= size; off += 1024) memcpy(b + off, &tag, 8);
  memcpy(b + size - 8, &tag, 8);
}

/* Returns 1 when every tagged word of the block still holds `tag`. */
static inline int tag_ok(const void *p, size_t size, uint64_t tag) {
  const unsigned char *b = p;
  uint64_t v;
  if (size < 16) {
    for (size_t i = 0; i < size; i++) if (b[i] != (unsigned char)(tag & 0xff)) return 0;
    return 1;
  }
  for (size_t off = 0; off + 16 <= size; off += 1024) { memcpy(&v, b + off, 8); if (v != tag) return 0; }
  memcpy(&v, b + size - 8, 8);
  return v == tag;
}

static inline double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* VmRSS of this process in KiB (0 if /proc is unreadable). Uses stdio on a stack buffer: the
 * FILE itself comes from malloc, which is fine: it is the allocator under test. */
__attribute__((unused)) static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = 0;
  if (!f) return 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmRSS:", 6) == 0) { kib = strtol(line + 6, NULL, 10); break; }
  }
  fclose(f);
  return kib;
}

/* argv[i] as a positive count, or `dflt` when absent; rejects junk. */
__attribute__((unused)) static long arg_long(int argc, char **argv, int i, long dflt) {
  if (argc <= i) return dflt;
  char *end;
  long v = strtol(argv[i], &end, 10);
  if (*end != 0 || v <= 0) { fprintf(stderr, "bad argument %d: %s\n", i, argv[i]); exit(2); }
  return v;
}

#endif
