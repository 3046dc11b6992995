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

/// The process-wide heap (an `MHeap` in mmap'd memory), published once.
static inline void *goalloc_global_heap_get(void) {
  extern void *goalloc_global_heap_;
  return __atomic_load_n(&goalloc_global_heap_, __ATOMIC_ACQUIRE);
}
static inline void goalloc_global_heap_set(void *h) {
  extern void *goalloc_global_heap_;
  __atomic_store_n(&goalloc_global_heap_, h, __ATOMIC_RELEASE);
}

// MARK: operating system

/// Anonymous read-write private mapping; MAP_NORESERVE. NULL on failure.
void *goalloc_sys_map(size_t len);
/// Like goalloc_sys_map, but only exactly at `hint` (MAP_FIXED_NOREPLACE); NULL otherwise.
void *goalloc_sys_map_at(void *hint, size_t len);
void goalloc_sys_unmap(void *p, size_t len);
/// Next arena address hint (process-wide cursor starting at 0x00c000000000); advances by `len`.
uintptr_t goalloc_arena_hint_take(size_t len);
/// madvise(MADV_DONTNEED): the range reads as zero afterwards. Returns 0 on success.
int goalloc_sys_release(void *p, size_t len);
void goalloc_futex_wait(uint32_t *addr, uint32_t expected);
void goalloc_futex_wake(uint32_t *addr, int n);
void goalloc_sys_yield(void);
uint64_t goalloc_nanotime(void);
void goalloc_set_errno(int e);
int goalloc_errno_enomem(void);
int goalloc_errno_einval(void);
void goalloc_abort(void) __attribute__((noreturn));
long goalloc_gettid(void);

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
/// Called from a destructor when the library is unloaded or the process exits (stats printing).
void goalloc_set_exit_hook(void (*hook)(void));

// MARK: diagnostics (fd 2, no allocation)

void goalloc_write(int fd, const char *s);
void goalloc_write_len(int fd, const char *s, size_t n);
void goalloc_write_u64(int fd, uint64_t v);
void goalloc_write_hex(int fd, uint64_t v);
/// "goalloc: <what> <op>(): 0x<addr>\n" on fd 2.
void goalloc_report(const char *op, const char *what, uintptr_t addr);

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
