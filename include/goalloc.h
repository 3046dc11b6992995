/* goalloc.h: GoAlloc's C interface beyond the standard malloc family.
 *
 * libgoalloc.so (LD_PRELOAD, or link with -lgoalloc) exports malloc, free, calloc, realloc,
 * reallocarray, posix_memalign, aligned_alloc, memalign, valloc, pvalloc, malloc_usable_size,
 * malloc_trim, mallopt, mallinfo, mallinfo2, malloc_stats and malloc_info (GoAlloc's figures)
 * with glibc's contract, C++'s operator new and delete (every variant), and these: */
#ifndef GOALLOC_H
#define GOALLOC_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Go's runtime.MemStats, as far as an explicit-free heap has them. All byte counts. */
struct goalloc_memstats {
  uint64_t alloc;          /* bytes of allocated heap objects (= heap_alloc) */
  uint64_t total_alloc;    /* cumulative bytes allocated */
  uint64_t sys;            /* bytes of memory obtained from the OS: heap pages not released + metadata */
  uint64_t mallocs;        /* cumulative objects allocated */
  uint64_t frees;          /* cumulative objects freed */
  uint64_t heap_alloc;
  uint64_t heap_sys;       /* heap_idle + heap_inuse */
  uint64_t heap_idle;      /* pages in no span */
  uint64_t heap_inuse;     /* pages in spans */
  uint64_t heap_released;  /* idle pages returned to the OS (or never touched) */
  uint64_t heap_objects;   /* mallocs - frees */
  uint64_t mspan_inuse, mspan_sys, mcache_inuse, mcache_sys, other_sys;
  uint64_t large_allocs, large_frees, tiny_allocs, bad_frees, thread_caches, spans_in_use;
  uint64_t rounding_waste;  /* estimated bytes lost to size-class rounding in live objects */
  uint64_t next_gc, num_gc, pause_total_ns;  /* GC mode; zero with explicit free only */
  uint64_t sys_reserved;   /* bytes of address space mapped: sys, plus arenas and tables not touched */
};

/* Fills *out with a consistent snapshot (allocation goes on meanwhile). */
void goalloc_read_memstats(struct goalloc_memstats *out);
/* Prints the snapshot to stderr with one write: a heading "goalloc: MemStats of pid <pid>
 * (<command line>)", then one "goalloc: Name value" line per field (GC fields once a GC ran). */
void goalloc_print_stats(void);
/* Verifies the heap's invariants: 1 when they hold; else 0, after one line on stderr. */
int goalloc_check_heap(void);
/* Gives empty spans back to the page heap and every free page back to the OS (madvise);
 * returns the bytes released. */
size_t goalloc_release_free_memory(void);

/* Writes the heap map ("# goalloc heapmap v1" text: arenas, spans, free runs) to path ("-" =
 * stderr). 1 on success. GOALLOC_DEBUG=heapmap=FILE writes one at exit. */
int goalloc_write_heapmap(const char *path);
/* Writes the live sampled allocations ("# goalloc heapprofile v1": sizes, return addresses and
 * the executable mappings; `goalloc profile pprof|folded|flamegraph` turns it into pprof's format,
 * folded stacks or an SVG); needs GOALLOC_DEBUG=memprofile=FILE (memprofilerate=BYTES, default
 * 524288) from the start. 1 on success. */
int goalloc_write_heap_profile(const char *path);

#ifdef __cplusplus
}
#endif
#endif
