// Operating-system calls (os.c): memory mappings, futexes, the clock, sleeping, errno and abort.
// Each call leaves errno as it found it unless its job is to set it.
#ifndef GOALLOC_OS_H
#define GOALLOC_OS_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Anonymous read-write private mapping; MAP_NORESERVE. NULL on failure.
void *goalloc_sys_map(size_t len);
/// Heap arenas: like goalloc_sys_map but without MAP_NORESERVE, so the kernel's overcommit check
/// refuses sizes the machine cannot back (malloc(1 TiB) fails as with glibc).
void *goalloc_sys_map_heap(size_t len);
/// Like goalloc_sys_map_heap (with `noreserve`: goalloc_sys_map), but only exactly at `hint`
/// (MAP_FIXED_NOREPLACE); NULL otherwise, with *busy set to 1 when another mapping is in the way
/// and 0 when the kernel refused the memory itself (an address-space limit, overcommit).
void *goalloc_sys_map_at(void *hint, size_t len, int noreserve, int *busy);
/// Moves the contents of [from, from + len) (mapped by us) to `to` (inside a fresh mapping of
/// ours), and unmaps `from`: by mremap (MREMAP_FIXED: pages move, nothing is copied), else by
/// copying the pages that are not all zero (the others stay untouched in `to`).
void goalloc_sys_move(void *from, size_t len, void *to);
void goalloc_sys_unmap(void *p, size_t len);
/// madvise(MADV_DONTNEED): the range reads as zero afterwards. Returns 0 on success.
int goalloc_sys_release(void *p, size_t len);
/// The kernel's page size (getauxval(AT_PAGESZ), read once; 4096 if it says nothing).
size_t goalloc_os_page_size(void);
/* mprotect: readWrite 0 makes [p, p+len) inaccessible (a guard page), 1 usable again; 0 = done. */
int goalloc_sys_protect(void *p, size_t len, int readWrite);
void goalloc_futex_wait(uint32_t *addr, uint32_t expected);
void goalloc_futex_wake(uint32_t *addr, int n);
uint64_t goalloc_nanotime(void);
/// The calling thread's CPU time (user + system), ns; 0 when the clock is not available.
uint64_t goalloc_thread_cputime(void);
/// Gives the processor to another runnable thread (sched_yield).
void goalloc_yield(void);
void goalloc_sleep_ns(uint64_t ns);
/// Sleeps up to ns nanoseconds: a signal (a GC stop) ends it early.
void goalloc_nap_ns(uint64_t ns);
void goalloc_set_errno(int e);
int goalloc_errno_enomem(void);
int goalloc_errno_einval(void);
void goalloc_abort(void) __attribute__((noreturn));
long goalloc_gettid(void);
/// membarrier(2), private expedited: registers the process (0 on success; -1 when the kernel
/// or a seccomp filter refuses it), then makes every running thread of the process execute a
/// full memory barrier (0 on success). The pools' fast paths pair it with a compiler barrier.
int goalloc_membarrier_register(void);
int goalloc_membarrier(void);
/// Registers membarrier(2) once per process: 1 when it can be used, else 0.
int goalloc_membarrier_ok(void);

#ifdef __cplusplus
}
#endif
#endif
