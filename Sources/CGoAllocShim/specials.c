// The GC mode's specials from C (goalloc_specials.h): the cleanup thread, calls through the
// program's function pointers, a bounded futex wait, and the bdwgc layer's queue counters.
#define _GNU_SOURCE
#include "goalloc_specials.h"
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int goalloc_specials_start_thread(void *(*fn)(void *), void *arg) {
  pthread_t t;
  pthread_attr_t attr;
  int saved = errno;
  if (pthread_attr_init(&attr) != 0) return 0;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int ok = pthread_create(&t, &attr, fn, arg) == 0;
  pthread_attr_destroy(&attr);
  errno = saved;
  return ok;
}

void goalloc_specials_call_finalizer(const void *fn, void *obj, void *arg) {
  ((void (*)(void *, void *))fn)(obj, arg);
}

void goalloc_specials_call_cleanup(const void *fn, void *arg) {
  ((void (*)(void *))fn)(arg);
}

__attribute__((noinline)) void goalloc_specials_clear_stack(void) {
  volatile char buf[32 * 1024];
  memset((char *)buf, 0, sizeof buf);
  __asm__ __volatile__("" : : "r"(buf) : "memory");
}

void goalloc_specials_wait(uint32_t *addr, uint32_t expected, uint64_t ns) {
  int saved = errno;
  struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
  syscall(SYS_futex, addr, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, expected, &ts, 0, 0);
  errno = saved;
}

// Hidden, not static: GC_malloc and its family (bdwgc.c, in the same library) read [0] inline.
__attribute__((visibility("hidden"))) uint32_t goalloc_bdwgc_counters_[2];
uint32_t *goalloc_specials_bdwgc_counters(void) { return goalloc_bdwgc_counters_; }
