// CGoAllocShim: the few things Swift cannot express, and nothing else.
//
// - the per-thread cache pointer as initial-exec TLS (one `mov %fs:` on the fast path);
// - raw system calls (mmap, munmap, madvise, futex) with no allocation and no errno games;
// - pthread key (thread-exit flush), atfork hooks and a load/unload hook;
// - one-line diagnostics written straight to fd 2 (no stdio, no malloc);
// - GOALLOC_DEBUG parsing (getenv does not allocate).
// Every symbol carries the `goalloc_` prefix. The allocator itself is Swift.
#ifndef CGOALLOCSHIM_H
#define CGOALLOCSHIM_H

#include <stdint.h>
#include <stddef.h>
#include "goalloc_sizeclasses.h"

#ifdef __cplusplus
extern "C" {
#endif

// MARK: thread-local cache pointer

extern __thread void *goalloc_tls_cache __attribute__((tls_model("initial-exec")));
extern __thread uint32_t goalloc_tls_state __attribute__((tls_model("initial-exec")));

static inline __attribute__((always_inline)) void *goalloc_tls_get(void) { return goalloc_tls_cache; }
static inline __attribute__((always_inline)) void goalloc_tls_set(void *p) { goalloc_tls_cache = p; }
/// 0: alive; 1: the thread-exit flush ran (allocate without keeping a cache).
static inline __attribute__((always_inline)) uint32_t goalloc_tls_state_get(void) { return goalloc_tls_state; }
static inline __attribute__((always_inline)) void goalloc_tls_state_set(uint32_t s) { goalloc_tls_state = s; }
/// In instrumented mode (tracing, heap profile) a thread's cache lives here instead, so every
/// allocation misses the fast path and takes the instrumented slow path.
extern __thread void *goalloc_tls_slow_cache __attribute__((tls_model("initial-exec")));
static inline __attribute__((always_inline)) void *goalloc_tls_slow_get(void) { return goalloc_tls_slow_cache; }
static inline __attribute__((always_inline)) void goalloc_tls_slow_set(void *p) { goalloc_tls_slow_cache = p; }

/// The process-wide heap (an `MHeap` in mmap'd memory), published once.
static inline void *goalloc_global_heap_get(void) {
  extern void *goalloc_global_heap_;
  return __atomic_load_n(&goalloc_global_heap_, __ATOMIC_ACQUIRE);
}
static inline void goalloc_global_heap_set(void *h) {
  extern void *goalloc_global_heap_;
  __atomic_store_n(&goalloc_global_heap_, h, __ATOMIC_RELEASE);
}

// MARK: the page -> span table of the hinted heap window

/// Arenas are reserved upward from this address; the first GOALLOC_SPAN_WINDOW bytes of that range
/// have a flat page -> span table (one load per lookup; HeapArena).
#define GOALLOC_WINDOW_BASE 0x00c000000000ull
#define GOALLOC_SPAN_WINDOW (64ull << 30)
extern void **goalloc_span_table __attribute__((visibility("hidden")));
extern uintptr_t goalloc_span_window __attribute__((visibility("hidden")));
/// Maps the table once per process (MAP_NORESERVE; pages appear as arenas use them). Returns it, or
/// NULL if the OS refused (then every lookup misses and callers use the arena index).
void **goalloc_span_table_init(void);
/// The span slot of the page holding `a` if `a` lies in the window (else NULL). The slot may hold NULL.
/// A compiler-only barrier (no instruction). After a call it keeps the call from becoming a tail
/// call, so the caller needs a stack frame only on that path (the free fast path has none).
static inline __attribute__((always_inline)) void goalloc_no_tail_call(void) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

static inline __attribute__((always_inline)) void *goalloc_span_lookup(uintptr_t a) {
  uintptr_t off = a - GOALLOC_WINDOW_BASE;
  if (__builtin_expect(off >= goalloc_span_window, 0)) return 0;
  return goalloc_span_table[off >> 13];
}

// MARK: operating system

/// Anonymous read-write private mapping; MAP_NORESERVE. NULL on failure.
void *goalloc_sys_map(size_t len);
/// Heap arenas: like goalloc_sys_map but without MAP_NORESERVE, so the kernel's overcommit check
/// refuses sizes the machine cannot back (malloc(1 TiB) fails as with glibc).
void *goalloc_sys_map_heap(size_t len);
/// Like goalloc_sys_map_heap, but only exactly at `hint` (MAP_FIXED_NOREPLACE); NULL otherwise.
void *goalloc_sys_map_at(void *hint, size_t len);
void goalloc_sys_unmap(void *p, size_t len);
/// Next arena address hint (process-wide cursor starting at 0x00c000000000); advances by `len`.
uintptr_t goalloc_arena_hint_take(size_t len);
/// madvise(MADV_DONTNEED): the range reads as zero afterwards. Returns 0 on success.
int goalloc_sys_release(void *p, size_t len);
void goalloc_futex_wait(uint32_t *addr, uint32_t expected);
/// 1 when the calling thread (not the main one) is the process's last live thread: the main
/// thread ended with pthread_exit and every other thread is gone. A background thread of ours
/// must then end too, or the process never exits.
int goalloc_only_live_thread(void);
void goalloc_futex_wake(uint32_t *addr, int n);
void goalloc_sys_yield(void);
uint64_t goalloc_nanotime(void);
void goalloc_set_errno(int e);
int goalloc_errno_enomem(void);
int goalloc_errno_einval(void);
void goalloc_abort(void) __attribute__((noreturn));
long goalloc_gettid(void);

/// A spin-wait hint to the CPU (x86 `pause`, arm64 `yield`).
static inline __attribute__((always_inline)) void goalloc_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}
static inline __attribute__((always_inline)) void goalloc_memset(void *p, int c, size_t n) { __builtin_memset(p, c, n); }
static inline __attribute__((always_inline)) void goalloc_memcpy(void *d, const void *s, size_t n) { __builtin_memcpy(d, s, n); }
static inline __attribute__((always_inline)) void goalloc_memmove(void *d, const void *s, size_t n) { __builtin_memmove(d, s, n); }

// MARK: threads and processes

/// Creates the thread-exit key once; `destructor` runs with the thread's cache at exit.
int goalloc_thread_key_init(void (*destructor)(void *));
/// Associates `cache` with the calling thread so the destructor runs at its exit.
void goalloc_thread_key_set(void *cache);
/// Registers fork handlers once (prepare takes every allocator lock; parent/child release them).
void goalloc_register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));
/// Starts a detached thread running fn(arg). Returns 1 on success.
int goalloc_start_thread(void *(*fn)(void *), void *arg);
void goalloc_sleep_ns(uint64_t ns);
/// GOALLOC_MEMLIMIT: bytes, or with a KiB/MiB/GiB/TiB (or K/M/G/T, KB/MB/GB) suffix. 0 = none.
uint64_t goalloc_memlimit_from_env(void);
/// Resident set size of this process in bytes (from /proc/self/statm), 0 if unknown.
uint64_t goalloc_rss_bytes(void);
/// Called from the library's constructor (the environment is readable from then on).
void goalloc_set_load_hook(void (*hook)(void));
/// Called from a destructor when the library is unloaded or the process exits (stats printing).
void goalloc_set_exit_hook(void (*hook)(void));

// MARK: diagnostics (fd 2, no allocation)

void goalloc_write(int fd, const char *s);
/// A private duplicate of stderr taken at load time (programs may close fd 2 before exit);
/// falls back to 2.
int goalloc_stats_fd(void);
void goalloc_stats_fd_init(void);
void goalloc_write_len(int fd, const char *s, size_t n);
void goalloc_write_u64(int fd, uint64_t v);
void goalloc_write_hex(int fd, uint64_t v);
/// "goalloc: <what> <op>(): 0x<addr>\n" on fd 2.
void goalloc_report(const char *op, const char *what, uintptr_t addr);

// MARK: tracing and profiling output (all buffered, locked, fork-safe through the hooks below)

/// Copies the value of `key` in GOALLOC_DEBUG (e.g. allocfreetrace=FILE) into buf. 1 if present.
int goalloc_debug_value(const char *key, char *buf, size_t len);
/// "1", "stderr" or "-" -> 2; otherwise the file (with "%p" replaced by the process id), created
/// or truncated. -1 on failure.
int goalloc_open_output(const char *path);
void goalloc_close_output(int fd);
/// One allocation or free event of the allocation trace (format: see AllocTrace.swift).
void goalloc_trace_event(int fd, char op, long tid, uintptr_t addr, size_t size, unsigned cls,
                         void *const *pcs, int npcs);
void goalloc_trace_flush(void);
/// Appends "# map <start> <end> <file offset> <path>" lines for the executable mappings of this
/// process (from /proc/self/maps), so pcs in a trace or profile can be symbolized offline.
void goalloc_write_maps(int fd);
void goalloc_trace_lock(void);
void goalloc_trace_unlock(void);
void goalloc_trace_reset_lock(void);
/// The caller's return addresses (glibc backtrace), skipping `skip` frames; 0 when called
/// re-entrantly (backtrace itself may allocate the first time).
int goalloc_backtrace(void **pcs, int max, int skip);
/// Writes one frame as "symbol" or "module+0xoffset" (dladdr, no allocation).
void goalloc_write_frame(int fd, void *pc);
/// A uniform random 64-bit value (per-thread state, seeded from the clock and thread id).
uint64_t goalloc_random64(void);
/// An exponentially distributed distance with the given mean (heap profile sampling).
uint64_t goalloc_next_sample(uint64_t mean);
/// Go's unsampling estimate of the bytes a sample of `size` stands for at `rate`.
uint64_t goalloc_scale_sample(uint64_t size, uint64_t rate);

// MARK: configuration (GOALLOC_DEBUG=stats=1,badfree=warn,check=1,scavenger=0)

enum {
  GOALLOC_DEBUG_STATS = 1u << 0,
  GOALLOC_DEBUG_BADFREE_WARN = 1u << 1,
  GOALLOC_DEBUG_CHECK = 1u << 2,
  GOALLOC_DEBUG_NO_SCAVENGER = 1u << 3,
  GOALLOC_DEBUG_PARSED = 1u << 31,
};
/// Parses GOALLOC_DEBUG (when the environment is readable). Returns flags with PARSED set once the
/// environment was seen; 0 while it is not available yet (early in the dynamic loader).
uint32_t goalloc_debug_flags_from_env(void);

#ifdef __cplusplus
}
#endif
#endif
