// Caller stacks for the trace and the heap profile (goalloc_backtrace.h): a DWARF unwind
// (libgcc's _Unwind_Backtrace, linked directly) with the allocator's own frames dropped, a
// frame-pointer walk where that unwinder cannot leave the allocator, and one frame written as
// "symbol" or "module+0xoffset" (dladdr).
//
// The unwinder reads .eh_frame through .eh_frame_hdr, so programs built without frame pointers
// (every stock Debian binary) unwind in full. It allocates nothing: libgcc_s is a direct
// dependency of the library (glibc's backtrace() would dlopen it, with malloc, on first use),
// the library's own Swift frames are described by the entries unwind.c registered at load
// (whose one-time sort ran then), and the loaded objects' tables are found through
// dl_iterate_phdr. Should anything still allocate, that malloc re-enters the allocator, finds
// `in_backtrace` set, and records its event without a stack instead of unwinding again.
#define _GNU_SOURCE
#include "goalloc_backtrace.h"
#include "goalloc_output.h"
#include "goalloc_unwind.h"
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <unwind.h>

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

struct unwind_walk {
  void **pcs;
  int max, n;
  int skip;              /* frames still to drop when the library's range is unknown */
  int leaving;           /* still inside the allocator */
  int left;              /* a frame outside the allocator was reached */
  uintptr_t lo, hi;      /* the library's text */
};

static _Unwind_Reason_Code collect(struct _Unwind_Context *ctx, void *arg) {
  struct unwind_walk *w = arg;
  uintptr_t ip = (uintptr_t)_Unwind_GetIP(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  if (w->leaving) {
    if (w->hi) {
      if (ip >= w->lo && ip < w->hi) return _URC_NO_REASON;
    } else if (w->skip > 0) {
      w->skip--;
      return _URC_NO_REASON;
    }
    w->leaving = 0;
    w->left = 1;
  }
  w->pcs[w->n++] = (void *)ip;
  return w->n >= w->max ? _URC_END_OF_STACK : _URC_NO_REASON;
}

static __thread int in_backtrace __attribute__((tls_model("initial-exec")));

int goalloc_backtrace(void **pcs, int max, int skip) {
  if (in_backtrace || max <= 0) return 0;
  in_backtrace = 1;
  struct unwind_walk w = { pcs, max, 0, skip + 1 /* this function */, 1, 0, 0, 0 };
  goalloc_unwind_self_range(&w.lo, &w.hi);
  int locked = goalloc_unwind_lock();
  if (locked) {
    _Unwind_Backtrace(collect, &w);
    goalloc_unwind_unlock();
  }
  int n = w.n;
  /* The unwinder could not leave the allocator (its Swift frames have no registered entries, as
     in a test binary): walk the frame-pointer chain instead. Every word is read through
     process_vm_readv, so a caller without frame pointers ends the walk with EFAULT instead of a
     crash. */
  if (!w.left) n = frame_pointer_walk(pcs, max);
  in_backtrace = 0;
  return n;
}

int goalloc_backtrace_guard(int on) {
  int was = in_backtrace;
  in_backtrace = on;
  return was;
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
