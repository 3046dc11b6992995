// Caller stacks for the trace and the heap profile (goalloc_backtrace.h): glibc's backtrace with
// the allocator's own frames dropped, a frame-pointer walk where that unwinder cannot leave the
// allocator, and one frame written as "symbol" or "module+0xoffset" (dladdr).
#define _GNU_SOURCE
#include "goalloc_backtrace.h"
#include "goalloc_output.h"
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static int read_words(const void *addr, uintptr_t out[2]) {
  struct iovec local = { out, 2 * sizeof(uintptr_t) }, remote = { (void *)addr, 2 * sizeof(uintptr_t) };
  int saved = errno;
  ssize_t r = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  errno = saved;
  return r == (ssize_t)(2 * sizeof(uintptr_t));
}

static int frame_pointer_walk(void **pcs, int max) {
  static void *self_base_fp;
  Dl_info me, di;
  if (!self_base_fp && dladdr((void *)frame_pointer_walk, &me)) self_base_fp = me.dli_fbase;
  uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
  int out = 0, leaving = 1;
  for (int depth = 0; depth < 64 && out < max; depth++) {
    uintptr_t w[2];  /* saved fp, return address */
    if (fp == 0 || (fp & 7) || !read_words((void *)fp, w)) break;
    uintptr_t next = w[0], ret = w[1];
    if (ret == 0) break;
    if (!dladdr((void *)ret, &di)) break;  /* not code: the chain went through a frame without a frame pointer */
    if (leaving && di.dli_fbase == self_base_fp) {
      /* still inside the allocator */
    } else {
      leaving = 0;
      pcs[out++] = (void *)ret;
    }
    if (next <= fp || next - fp > (1u << 20)) break;
    fp = next;
  }
  return out;
}

static __thread int in_backtrace;
int goalloc_backtrace(void **pcs, int max, int skip) {
  if (in_backtrace) return 0;
  in_backtrace = 1;
  void *tmp[80];
  int want = max + skip;
  if (want > 80) want = 80;
  int n = backtrace(tmp, want);
  in_backtrace = 0;
  /* Drop the allocator's own frames: leading frames in the object that holds this function
     (libgoalloc.so; in a statically linked test binary, `skip` frames instead). */
  static void *self_base;
  if (!self_base) {
    Dl_info me;
    if (dladdr((void *)goalloc_backtrace, &me)) self_base = me.dli_fbase;
  }
  int first = 0;
  Dl_info di;
  while (first < n && dladdr(tmp[first], &di) && di.dli_fbase == self_base && first < 24) first++;
  if (first < n && first < 24) {
    int out = 0;
    for (int i = first; i < n && out < max; i++) pcs[out++] = tmp[i];
    return out;
  }
  /* The unwinder could not leave the allocator (some optimized Embedded Swift frames defeat
     it): walk the frame-pointer chain instead (the allocator keeps frame pointers). Every word
     is read through process_vm_readv, so a caller without frame pointers ends the walk with
     EFAULT instead of a crash. */
  return frame_pointer_walk(pcs, max);
}

void goalloc_write_frame(int fd, void *pc) {
  Dl_info info = {0};
  int saved = errno;
  int found = dladdr(pc, &info);
  if (found && info.dli_sname) {
    goalloc_write(fd, info.dli_sname);
  } else if (found && info.dli_fname) {
    const char *base = strrchr(info.dli_fname, '/');
    goalloc_write(fd, base ? base + 1 : info.dli_fname);
    goalloc_write(fd, "+");
    goalloc_write_hex(fd, (uint64_t)((uintptr_t)pc - (uintptr_t)info.dli_fbase));
  } else {
    goalloc_write_hex(fd, (uint64_t)(uintptr_t)pc);
  }
  errno = saved;
}
