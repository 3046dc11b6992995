// Operating-system calls (goalloc_os.h): mmap, mremap, munmap and madvise, the OS page size,
// futex wait/wake, the monotonic clock, the thread's CPU clock, sleeping, yielding, the thread
// id, membarrier, errno and abort. Nothing here allocates.
#define _GNU_SOURCE
#include "goalloc_os.h"
#include "goalloc_dirty.h"
#include <errno.h>
#include <sched.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

void *goalloc_sys_map(size_t len) {
  int saved = errno;
  void *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  errno = saved;
  return p == MAP_FAILED ? 0 : p;
}

void *goalloc_sys_map_heap(size_t len) {
  int saved = errno;
  void *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  errno = saved;
  return p == MAP_FAILED ? 0 : p;
}

void *goalloc_sys_map_at(void *hint, size_t len, int noreserve, int *busy) {
  int saved = errno;
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | (noreserve ? MAP_NORESERVE : 0);
  void *p = mmap(hint, len, PROT_READ | PROT_WRITE, flags, -1, 0);
  int err = errno;
  errno = saved;
  if (busy) *busy = p == MAP_FAILED && err == EEXIST;
  if (p == MAP_FAILED) return 0;
  if (p != hint) {  // kernels before 4.17 treat the flag as a hint: something is in the way
    munmap(p, len);
    if (busy) *busy = 1;
    return 0;
  }
  return p;
}

void goalloc_sys_move(void *from, size_t len, void *to) {
  int saved = errno;
  void *p = mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  if (p != to) {  /* e.g. `from` spans several kernel mappings: copy what is not zero, drop the rest */
    for (size_t off = 0; off < len; off += 4096) {
      const uint64_t *w = (const uint64_t *)((char *)from + off);
      size_t n = len - off < 4096 ? len - off : 4096, i = 0;
      while (i < n / 8 && w[i] == 0) i++;
      if (i < n / 8) __builtin_memcpy((char *)to + off, w, n);
    }
    munmap(from, len);
  }
  errno = saved;
}

void goalloc_sys_unmap(void *p, size_t len) { int saved = errno; munmap(p, len); errno = saved; }

int goalloc_sys_protect(void *p, size_t len, int readWrite) {
  int saved = errno;
  goalloc_dirty_note_protect((uintptr_t)p, (uintptr_t)p + len);  // (a tracking period's pages)
  int r = mprotect(p, len, readWrite ? PROT_READ | PROT_WRITE : PROT_NONE);
  errno = saved;
  return r;
}

int goalloc_sys_release(void *p, size_t len) {
  int saved = errno;
  int r = madvise(p, len, MADV_DONTNEED);
  errno = saved;
  return r;
}

size_t goalloc_os_page_size(void) {
  static size_t size;
  size_t v = __atomic_load_n(&size, __ATOMIC_RELAXED);
  if (v == 0) {
    v = (size_t)getauxval(AT_PAGESZ);
    if (v == 0) v = 4096;
    __atomic_store_n(&size, v, __ATOMIC_RELAXED);
  }
  return v;
}

void goalloc_futex_wait(uint32_t *addr, uint32_t expected) {
  int saved = errno;
  syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, 0, 0, 0);
  errno = saved;
}

void goalloc_futex_wake(uint32_t *addr, int n) {
  int saved = errno;
  syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, 0, 0, 0);
  errno = saved;
}

uint64_t goalloc_nanotime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t goalloc_thread_cputime(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void goalloc_sleep_ns(uint64_t ns) {
  struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
  int saved = errno;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  errno = saved;
}

void goalloc_nap_ns(uint64_t ns) {
  struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
  int saved = errno;
  nanosleep(&ts, 0);
  errno = saved;
}

void goalloc_set_errno(int e) { errno = e; }
int goalloc_errno_enomem(void) { return ENOMEM; }
int goalloc_errno_einval(void) { return EINVAL; }
void goalloc_abort(void) { abort(); }
long goalloc_gettid(void) { return syscall(SYS_gettid); }

int goalloc_membarrier_register(void) {
  int saved = errno;
  long r = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
  errno = saved;
  return r == 0 ? 0 : -1;
}

int goalloc_membarrier_ok(void) {
  static int state;  // 0 not asked yet, 1 registered, 2 refused
  int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
  if (s == 0) {
    s = goalloc_membarrier_register() == 0 ? 1 : 2;
    __atomic_store_n(&state, s, __ATOMIC_RELEASE);
  }
  return s == 1;
}

int goalloc_membarrier(void) {
  int saved = errno;
  long r = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
  errno = saved;
  return r == 0 ? 0 : -1;
}

void goalloc_yield(void) { sched_yield(); }
