/* What every GC workload of `goalloc bench gc` reports at its end, the same way under every
 * collector it runs on (Debian's bdwgc, or GoAlloc's collector through LD_PRELOAD=libgoalloc.so):
 *   gcstats: collections=N pause_max_ns=N pause_total_ns=N pause_p99_ns=N incremental=0|1
 *            stall_total_ns=N stall_max_ns=N
 * A pause is the time from GC_EVENT_PRE_STOP_WORLD to GC_EVENT_POST_START_WORLD (gc.h's
 * collection events; the callback only reads the clock and bumps a counter of a static
 * histogram: it may not allocate). pause_p99_ns is the 99th percentile (nearest rank) of all the
 * pauses, from that histogram: buckets 1/128 of an octave wide, reported as the bucket's upper
 * end (at most the max). Collections are GC_get_gc_no()'s count; incremental is
 * GC_is_incremental_mode() (bdwgc turns it on for GC_ENABLE_INCREMENTAL=1 in the environment).
 * Header only; built with: cc -O2 -pthread -o NAME NAME.c -lgc
 * With -DGCSTATS_EXPLICIT_FREE (no -lgc) the same work runs on plain malloc/free, for the malloc
 * peers' rows: GC_MALLOC is calloc, GC_MALLOC_ATOMIC malloc, and GCSTATS_FREE(p) frees what the
 * GC build just drops; no collections, no pauses.
 * GC_STORE(slot, value) is every pointer store into collected memory: a plain store, or with
 * -DGCSTATS_BARRIER bdwgc's GC_PTR_STORE_AND_DIRTY (GoAlloc: its write barrier, for the
 * `goalloc-wb` row, GOALLOC_DEBUG=gcconc=1,gcdirty=barrier, with its flag tested inline). */
#ifndef GOALLOC_GCSTATS_H
#define GOALLOC_GCSTATS_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* RTLD_DEFAULT */
#endif

#ifdef GCSTATS_EXPLICIT_FREE
#include <stdlib.h>
#define GC_INIT() ((void)0)
#define GC_MALLOC(n) calloc(1, (n))
#define GC_MALLOC_ATOMIC(n) malloc(n)
#define GCSTATS_FREE(p) free(p)
#else
#include <gc.h>
#define GCSTATS_FREE(p) ((void)(p))
#endif
#ifdef GCSTATS_BARRIER
/* On GoAlloc (its flag found: a weak reference, null on bdwgc), the barrier's test inline as
 * goalloc.h's goalloc_gc_store does it (a call only during a concurrent mark); else bdwgc's. */
#include <stdint.h>
extern uint32_t goalloc_gc_barrier_on __attribute__((weak));
static inline void gcstats_store(void **slot, void *value) {
  if (&goalloc_gc_barrier_on && __atomic_load_n(&goalloc_gc_barrier_on, __ATOMIC_RELAXED) == 0) *slot = value;
  else GC_PTR_STORE_AND_DIRTY(slot, value);
}
#define GC_STORE(slot, value) gcstats_store((void **)&(slot), (value))
#else
#define GC_STORE(slot, value) ((slot) = (value))
#endif
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t gcstats_stop_ns, gcstats_max_ns, gcstats_total_ns;

#ifdef GCSTATS_EXPLICIT_FREE
static void gcstats_start(void) {}
static void gcstats_report(void) {
  printf("gcstats: collections=0 pause_max_ns=0 pause_total_ns=0 pause_p99_ns=0 incremental=0\n");
}
#else

/* Pause histogram: values below 256 ns exactly, above that 128 buckets per power of two. */
enum { GCSTATS_SUB = 7, GCSTATS_BUCKETS = (64 - GCSTATS_SUB) * (1 << GCSTATS_SUB) + (1 << GCSTATS_SUB) };
static uint64_t gcstats_hist[GCSTATS_BUCKETS], gcstats_pauses;

static unsigned gcstats_bucket(uint64_t d) {
  if (d < (2u << GCSTATS_SUB)) return (unsigned)d;
  unsigned shift = (unsigned)(63 - __builtin_clzll(d)) - GCSTATS_SUB;  /* d >> shift is in [128, 256) */
  return shift * (1u << GCSTATS_SUB) + (unsigned)(d >> shift);
}

/* The largest value bucket b holds. */
static uint64_t gcstats_bucket_top(unsigned b) {
  if (b < (2u << GCSTATS_SUB)) return b;
  unsigned shift = b / (1u << GCSTATS_SUB) - 1;
  uint64_t lead = (1u << GCSTATS_SUB) + b % (1u << GCSTATS_SUB);
  return ((lead + 1) << shift) - 1;
}

/* Nearest rank: the smallest recorded value with at least 99 % of the pauses at or below it. */
static uint64_t gcstats_p99(void) {
  if (gcstats_pauses == 0) return 0;
  uint64_t rank = (gcstats_pauses * 99 + 99) / 100, seen = 0;
  for (unsigned b = 0; b < GCSTATS_BUCKETS; b++) {
    seen += gcstats_hist[b];
    if (seen >= rank) {
      uint64_t top = gcstats_bucket_top(b);
      return top < gcstats_max_ns ? top : gcstats_max_ns;
    }
  }
  return gcstats_max_ns;
}

static uint64_t gcstats_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void gcstats_event(GC_EventType e) {
  if (e == GC_EVENT_PRE_STOP_WORLD) {
    gcstats_stop_ns = gcstats_now();
  } else if (e == GC_EVENT_POST_START_WORLD && gcstats_stop_ns != 0) {
    uint64_t d = gcstats_now() - gcstats_stop_ns;
    gcstats_stop_ns = 0;
    gcstats_total_ns += d;
    if (d > gcstats_max_ns) gcstats_max_ns = d;
    gcstats_hist[gcstats_bucket(d)]++;
    gcstats_pauses++;
  }
}

/* After GC_INIT(). */
static void gcstats_start(void) { GC_set_on_collection_event(gcstats_event); }

/* GoAlloc's concurrent mode can make an allocation wait for a mark at the heap's hard goal (a
 * stall: a pause for that thread only, outside the stop-the-world events). When the process
 * runs on GoAlloc (its goalloc_read_memstats is found) the stalls' total and longest wait are
 * read from its stats (words 42 and 43 of struct goalloc_memstats, which only grows at its
 * end); elsewhere they are 0. */
static void gcstats_stalls(uint64_t *total, uint64_t *max) {
  *total = *max = 0;
  void (*read)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "goalloc_read_memstats");
  if (!read) return;
  static uint64_t m[256];
  read(m);
  *total = m[42];
  *max = m[43];
}

static void gcstats_report(void) {
  uint64_t stall_total, stall_max;
  gcstats_stalls(&stall_total, &stall_max);
  printf("gcstats: collections=%lu pause_max_ns=%llu pause_total_ns=%llu pause_p99_ns=%llu incremental=%d "
         "stall_total_ns=%llu stall_max_ns=%llu\n",
         (unsigned long)GC_get_gc_no(), (unsigned long long)gcstats_max_ns, (unsigned long long)gcstats_total_ns,
         (unsigned long long)gcstats_p99(), GC_is_incremental_mode(), (unsigned long long)stall_total,
         (unsigned long long)stall_max);
}
#endif

/* xorshift64*: every run does the same work. */
static uint64_t gcstats_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  uint64_t x = gcstats_rng;
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  gcstats_rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

static void *checked(void *p) {
  if (!p) { fprintf(stderr, "out of memory\n"); exit(3); }
  return p;
}

#endif
