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
  /* The GC mode (below); Go's names. mallocs, frees, heap_alloc, heap_objects and total_alloc
   * count collected objects too. */
  uint64_t num_forced_gc;  /* cycles started by goalloc_gc_collect */
  uint64_t last_gc;        /* end of the last cycle, ns since 1970 */
  uint64_t gc_sys;         /* the collector's own metadata */
  uint64_t gc_mallocs, gc_frees;  /* collected objects allocated; freed (by sweeps or explicitly) */
  uint64_t gc_heap_live;   /* the pacer's live heap (a cached span counts whole) */
  uint64_t gc_cpu_fraction_ppm;  /* pause time / time since the GC mode started, in millionths */
  uint64_t num_pauses;     /* pauses in the rings: one per cycle, two per concurrent cycle */
  uint64_t gc_conc;        /* GOALLOC_DEBUG=gcconc=1: how written pointers are found (1 userfaultfd
                            * write-protect, 2 soft-dirty bits, 3 none: a full re-mark, 4 the
                            * program's write barrier: gcdirty=barrier, 5 mprotect and a SIGSEGV
                            * handler); 0 off */
  uint64_t gc_dirty_pages; /* concurrent: pages rescanned at the last mark termination */
  uint64_t gc_assists;     /* concurrent: mark assists that marked (allocating threads paying for */
  uint64_t gc_assist_ns;   /* their allocation by marking), their time, and the bytes they marked, */
  uint64_t gc_assist_bytes;/* since the GC mode started */
  uint64_t gc_stalls;      /* concurrent: allocations that found the heap at its goal during a mark
                            * and waited for the cycle's end */
  uint64_t gc_limited_cycles; /* cycles that ended with the GC CPU limiter on: the collector had
                            * taken over half the CPU for about a second (a memory limit the live
                            * data nearly fills), so the memory limit yields until it drains */
  uint64_t gc_stall_ns;     /* concurrent: the time those stalled allocations waited, in all, */
  uint64_t gc_stall_max_ns; /* and the longest single wait (a pause for that thread alone) */
  /* The struct only grows at its end, and stays small (Go's 256-entry pause rings are read
   * with goalloc_gc_read_pauses): a program built against an older header gets a prefix of
   * what it knows, as long as it passes a buffer of the size it was built with. */
};

/* Fills *out with a consistent snapshot (allocation goes on meanwhile). */
void goalloc_read_memstats(struct goalloc_memstats *out);
/* Go's MemStats.PauseNs and PauseEnd: the last 256 stop-the-world pauses (ns) and when they
 * ended (ns since 1970), the last at [(num_pauses + 255) % 256] (cycle n's at [(n + 255) % 256]
 * when the world stops once per cycle; a concurrent cycle records its two stops); either
 * pointer may be NULL. */
void goalloc_gc_read_pauses(uint64_t pause_ns[256], uint64_t pause_end[256]);
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

/* ---- The GC mode (stage 1: a mark-sweep collector, the world stopped) ----------------------
 *
 * Collected objects share the heap with malloc: same arenas, pages and statistics. They are
 * found unreachable by a conservative mark from the roots and swept; they may also be freed
 * explicitly. A program may mix both kinds freely.
 *
 * Roots, scanned conservatively (any aligned word that points into an object keeps it; one
 * past its end does not):
 *   - every registered thread's stack (from its stack pointer at the stop to the top of its
 *     stack mapping, which holds a pthread's static TLS), its registers, and its static TLS
 *     (every __thread variable of the program and of the libraries loaded at start-up, the
 *     dlopen surplus, and the first 32 pthread_setspecific values) wherever it lies: the main
 *     thread's is allocated apart by the loader. Every thread that
 *     ever called malloc, free or a goalloc_gc_* function is registered automatically until it
 *     exits; a thread that holds collected pointers without ever allocating must call
 *     goalloc_gc_register_thread();
 *   - the writable segments (data, bss) of the program and of every loaded library;
 *   - ranges added with goalloc_gc_add_roots;
 *   - uncollectable objects, and memory from GoAlloc's Swift API allocated with scan: true.
 * NOT roots: memory from malloc/calloc/realloc (C's malloc memory is never scanned: keep
 * collected pointers there only in uncollectable objects), memory of other allocators or
 * mmap, the dynamic TLS of a library dlopen'ed later (glibc allocates it with malloc),
 * pthread_setspecific values past the first 32 keys (likewise), pointers hidden by tagging, XOR or compression, and a
 * library loaded (dlopen) while a collection is starting (from its next collection on).
 *
 * Threads are stopped with a signal: SIGRTMIN+6 by default, GOALLOC_GC_SIGNAL=<number> to
 * choose another. Each thread unblocks it when it first allocates; a thread that blocks it
 * again blocks every collection (a warning line every 5 s). System calls interrupted by it restart (SA_RESTART). fork() is safe during and
 * between collections. Settings: GOALLOC_GC=<percent>|off (GOGC, default 100),
 * GOALLOC_MEMLIMIT=<bytes> (also the collector's memory limit). */

/* A collected object of n bytes (0 counts as 1), zeroed, that may hold pointers (scanned).
 * 16-byte aligned from 16 B up. NULL with errno = ENOMEM when memory runs out. */
void *goalloc_gc_malloc(size_t n);
/* A collected object that is never scanned (strings, numbers, pixels): pointers stored in it
 * keep nothing alive. Not zeroed. */
void *goalloc_gc_malloc_noscan(size_t n);
/* An uncollectable object: zeroed, scanned, never collected, a root until it is freed with
 * goalloc_gc_free or free. */
void *goalloc_gc_malloc_uncollectable(size_t n);
/* Resizes p keeping its kind (scan, noscan, uncollectable); the contents are kept up to the
 * smaller size. p NULL: goalloc_gc_malloc(n). n 0: frees p, returns NULL. (Plain realloc() of
 * a collected object works too, but returns malloc memory: not collected, not scanned.) */
void *goalloc_gc_realloc(void *p, size_t n);
/* Frees p now (any kind; NULL: nothing). free(p) does the same for a collected object. A
 * collected object's memory is reused after the next collection; pointers to it must not be
 * used. A pointer that is not the start of a live object of GoAlloc is reported as free()
 * reports it (one line, then abort; GOALLOC_DEBUG=badfree=warn: ignored); so is an object the
 * last collection found unreachable, even while its span waits for the lazy sweep. */
void goalloc_gc_free(void *p);
/* Collects now, with every registered thread stopped for the mark, and returns once every
 * unreachable object is freed (the sweep runs after the threads restart; with
 * GOALLOC_DEBUG=gcsweep=ondemand it is left to later allocation). 0; -1 when refused, with one
 * line on stderr: called from a signal handler (detected by unwinding; never do that). */
int goalloc_gc_collect(void);
/* Sets GOGC: a cycle starts when the collected heap reaches marked + (marked + stacks +
 * globals) x percent / 100 (at least 4 MiB x percent / 100); negative: off (only the memory
 * limit triggers). Returns the old value. */
int goalloc_gc_set_percent(int percent);
/* Sets the soft memory limit in bytes (0: none): the heap goal is lowered so the process stays
 * under it, as Go's GOMEMLIMIT, and the malloc side releases free memory near it (as
 * GOALLOC_MEMLIMIT does). Returns the old limit. */
uint64_t goalloc_gc_set_memory_limit(uint64_t bytes);
/* Registers the calling thread (its stack and registers become roots): 0, -1 when out of
 * memory. Needed only by threads that never allocate through GoAlloc. */
int goalloc_gc_register_thread(void);
/* Unregisters the calling thread until it allocates again: call it before a thread that may
 * not allocate again stops holding collected pointers, or leave it to thread exit. */
void goalloc_gc_unregister_thread(void);
/* Makes [lo, hi) a root (up to 4096 ranges). 0; -1 with one line on stderr for lo > hi or a
 * full table. */
int goalloc_gc_add_roots(void *lo, void *hi);
/* Removes every added range that lies inside [lo, hi). 0; -1 with one line for lo > hi. */
int goalloc_gc_remove_roots(void *lo, void *hi);
/* The start of the object (collected or not) whose memory holds p, or NULL when p is not in
 * GoAlloc's heap (for small objects: any slot ever handed out, free or not). */
void *goalloc_gc_base(void *p);
/* The write barrier: performs the store *slot = value, and while a concurrent mark runs
 * (GOALLOC_DEBUG=gcconc=1) first shades, as Go's hybrid barrier does, the old value *slot and
 * the new value: each that points into a live collected object not marked yet is marked and
 * queued for scanning (NULL, pointers outside collected objects and freed slots are ignored, as
 * the conservative scan ignores them). Outside a mark it is the store and one load of a flag.
 * Any thread, at any time (not from a signal handler that may interrupt one: it can take a
 * lock); slot must be pointer-aligned (anywhere: collected, malloc, stack or global memory). Needed for correctness only under
 * GOALLOC_DEBUG=gcdirty=barrier, where the program promises that every pointer store into a
 * collected object (initializing ones too; memcpy of pointers: one call per word) goes through
 * it, and the collector then tracks no written pages (a store that bypasses it can get a
 * reachable object freed; gccheckmark=1 catches that). In the other modes it is a plain store
 * that also shades, which does no harm. */
void goalloc_gc_write_barrier(void **slot, void *value);
/* The write barrier's flag: nonzero while a concurrent mark runs (set and cleared with the
 * world stopped). Read it only as goalloc_gc_store does. */
extern uint32_t goalloc_gc_barrier_on;
/* goalloc_gc_write_barrier with its test inline, as a compiler emits Go's: outside a concurrent
 * mark the plain store and one load of the flag, no call; during one, the barrier. Same
 * contract. */
static inline void goalloc_gc_store(void **slot, void *value) {
  if (__builtin_expect(__atomic_load_n(&goalloc_gc_barrier_on, __ATOMIC_RELAXED) != 0, 0)) goalloc_gc_write_barrier(slot, value);
  else *slot = value;
}

/* ---- Pools: objects of one size kept for reuse (Go's sync.Pool) ----------------------------
 *
 * A pool hands back objects that were put into it, so a program that allocates and frees the
 * same kind of object over and over skips malloc, free and its own initialization. Each thread
 * has a private slot (its own: get and put reach it with plain loads and stores) and a chain of
 * its own; a thread whose own are empty takes from the other threads' chains and from the
 * victim cache (below) before it makes a new object. An object's bytes stay as they were put
 * (the pool keeps pointers only); get returns any pooled object, not necessarily the last one
 * this thread put. A thread's exit moves its private objects to its chain.
 *
 * A pool does not keep objects forever (Go 1.13's victim rule): a rotation moves everything the
 * pool holds, private slots included, to its victim cache, where get still finds it, and frees
 * (free()) what the victim cache held, so an object left in the pool is freed by the second
 * rotation after its put. Rotations: after every collection of the GC mode (goalloc_gc_collect
 * or paced); without the GC mode, every 10th tick (1 s) of the background scavenger, which runs
 * once the heap has grown past a few MiB; malloc_trim() and goalloc_release_free_memory() free
 * everything every pool holds. So a pooled object must not be the only reference to other
 * memory (it would leak), and pooled objects are malloc memory: in the GC mode they are not
 * scanned, so do not keep collected pointers in them.
 *
 * Thread-safe: any thread may get and put, for any pool. Not async-signal-safe (as malloc). A
 * rotation takes private objects with membarrier(2); where the kernel refuses it, every get and
 * put takes a lock instead. */
typedef struct goalloc_pool goalloc_pool;

/* A pool of objects of size bytes (0 counts as 1). init, if not NULL, is called by
 * goalloc_pool_get on a fresh object (size bytes from malloc, not zeroed) when the pool is
 * empty, with arg; it runs on the caller's thread with no lock of GoAlloc held, and may call
 * anything but goalloc_pool_destroy of this pool. NULL with errno = ENOMEM when memory runs
 * out or size is too large to allocate. */
goalloc_pool *goalloc_pool_create(size_t size, void (*init)(void *obj, void *arg), void *arg);
/* An object of the pool, or a new one from init; NULL when the pool is empty and has no init
 * (or malloc fails), or when pool is NULL. Free an object with free() or put it back. */
void *goalloc_pool_get(goalloc_pool *pool);
/* Puts obj into the pool (NULL obj or pool: nothing). obj must be a live object from this
 * library's malloc with at least the pool's size bytes (one from goalloc_pool_get of this pool,
 * or from malloc(size)); after the call it is the pool's: using it, freeing it, or putting it
 * twice is a use after free or a double free (reported, as free() reports one, when the pool
 * frees it). */
void goalloc_pool_put(goalloc_pool *pool, void *obj);
/* Frees every object the pool holds, then the pool. No thread may use the pool during or after
 * the call; objects handed out stay the caller's. A pool destroyed already is reported in one
 * line on stderr and ignored (as long as its memory was not reused by a newer pool). */
void goalloc_pool_destroy(goalloc_pool *pool);

struct goalloc_pool_stats {
  uint64_t size;       /* bytes per object */
  uint64_t pooled;     /* objects in the threads' private slots and chains */
  uint64_t victims;    /* objects in the victim cache */
  uint64_t created;    /* objects made for init */
  uint64_t dropped;    /* objects freed by rotations (malloc_trim: two rotations) */
  uint64_t rotations;  /* rotations so far */
};
/* Fills *out (pooled and victims are exact when no thread uses the pool meanwhile). */
void goalloc_pool_stats(goalloc_pool *pool, struct goalloc_pool_stats *out);

/* ---- Finalizers, cleanups and weak pointers (Go's SetFinalizer, AddCleanup, weak.Pointer) ---
 *
 * Each is a record attached to one collected object ("special", as Go's): objects without any
 * cost nothing. Finalizers and cleanups run on one dedicated thread that GoAlloc starts with
 * the first of them (registered with the collector), one call at a time, never inside a thread
 * that is allocating or collecting; they may allocate, free, collect and add cleanups. A cycle
 * decides, with the world stopped, in this order: weak pointers of unreachable objects are
 * cleared; finalizers of unreachable objects are queued, and those objects resurrected (they,
 * and everything they reach, survive this cycle); cleanups of objects that are still
 * unreachable are queued (the object is gone for good: a cleanup runs after the object's
 * finalizer, if any, and a later cycle). A call's argument is a root until the call ran.
 * goalloc_gc_free (or free) of an object drops its finalizer and cleanups without calling
 * them, and clears its weak pointers. Fork: the child starts the thread again with its next
 * finalizer or cleanup. */

/* Runs fn(p, arg) on the cleanup thread once p, the start of a collected object, is
 * unreachable; p is then resurrected for the call (a finalizer may store it somewhere to keep
 * it; otherwise a later cycle frees it) and the finalizer is unregistered. One per object; fn
 * NULL removes p's finalizer. Ordering: what p points to survives as long as p has a
 * finalizer, so of two unreachable objects where a points to b, a is finalized first and b in
 * a later cycle; an object with a finalizer that reaches itself (a cycle) is never finalized
 * nor freed. 0; -1 with one line on stderr when p is not the start of a live collected object,
 * already has a finalizer, or arg points into it (it would keep p alive for ever). */
int goalloc_gc_set_finalizer(void *p, void (*fn)(void *obj, void *arg), void *arg);

/* A cleanup's cancel handle: id 0 when goalloc_gc_add_cleanup refused. `hidden` is the
 * object's address complemented: a handle stored in scanned memory keeps nothing alive. */
typedef struct goalloc_gc_cleanup {
  uint64_t id;
  uintptr_t hidden;
} goalloc_gc_cleanup;

/* Runs fn(arg) on the cleanup thread once the collected object holding p (any pointer into it)
 * is unreachable for good. The object is not resurrected and fn never sees it: arg must not
 * reach it. arg pointing into the object is refused (id 0, one line on stderr); reaching it
 * through other objects keeps the object alive for ever (the cleanup never runs). Any number
 * per object, run in no particular order, each exactly once. Also refused: p not in a live
 * collected object (one line); fn NULL or out of memory (no line). */
goalloc_gc_cleanup goalloc_gc_add_cleanup(void *p, void (*fn)(void *arg), void *arg);

/* Cancels the cleanup of handle c unless it was queued already: 1 when cancelled, else 0
 * (queued, run, cancelled before, or refused). To be sure to cancel it, keep the object
 * reachable across the call. */
int goalloc_gc_cancel_cleanup(goalloc_gc_cleanup c);

/* Cleanups and finalizers queued for the cleanup thread or running on it (0: none pending).
 * Tests and orderly shutdowns poll it after goalloc_gc_collect. */
size_t goalloc_gc_cleanups_pending(void);

/* A weak pointer: a handle that does not keep its object alive. */
typedef struct goalloc_gc_weak goalloc_gc_weak;

/* The weak pointer to p (any pointer into a live collected object): the same handle for every
 * call with the same p, so weak pointers compare equal with == exactly when they were made
 * from the same pointer. The handle is itself a small collected object: hold it where a
 * collected pointer is seen (stack, globals, collected scan memory, roots), never only in
 * malloc memory. NULL when p is NULL, out of memory, or not in a live collected object (one
 * line on stderr). */
goalloc_gc_weak *goalloc_gc_weak_make(void *p);

/* The pointer w was made from while its object is reachable, NULL for ever once a cycle found
 * it unreachable (before its finalizer, if any, is queued: a resurrected object is not seen
 * again through its weak pointers) or it was freed explicitly. w NULL: NULL. */
void *goalloc_gc_weak_get(goalloc_gc_weak *w);

#ifdef __cplusplus
}
#endif
#endif
