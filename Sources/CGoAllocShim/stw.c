// Stopping the world for the GC mode, and what the collector needs from the kernel and libc
// (goalloc_gc_stw.h): the stop signal and its handler, stack bounds, image segments, registers.
// Nothing here allocates; the handler is async-signal-safe (futex, tgkill, open/read/close).
#define _GNU_SOURCE
#include "goalloc_stw.h"
#include "goalloc_os.h"
#include "goalloc_output.h"
#include "goalloc_unwind.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <link.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <unwind.h>

__thread struct goalloc_gc_thread goalloc_gc_self __attribute__((tls_model("initial-exec")));

void (*goalloc_gc_event_hook)(int event);  // (goalloc_stw.h)
static int stop_signal;          // 0 until installed
static uint32_t world_epoch;     // odd while a stop is in progress
static uint32_t acks;            // threads that acknowledged the current stop
static uint32_t suspended;       // threads inside suspend_here (stopped, or not yet left after the restart)

static long futex(uint32_t *addr, int op, uint32_t val, const struct timespec *ts) {
  return syscall(SYS_futex, addr, op | FUTEX_PRIVATE_FLAG, val, ts, 0, 0);
}

/// Parses the /proc/self/maps stream for the mapping holding sp (no allocation, no stdio).
int goalloc_stack_bounds(uintptr_t sp, uintptr_t *lo, uintptr_t *hi) {
  int saved = errno;
  int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) { errno = saved; return 0; }
  char buf[4096];
  uintptr_t a = 0, b = 0;
  int field = 0, found = 0;  // field 0: start, 1: end, 2: rest of the line
  for (;;) {
    ssize_t n = syscall(SYS_read, fd, buf, sizeof buf);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n && !found; i++) {
      char c = buf[i];
      if (c == '\n') {
        if (field >= 1 && a <= sp && sp < b) { *lo = a; *hi = b; found = 1; }
        a = b = 0; field = 0;
        continue;
      }
      if (field == 2) continue;
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d >= 0) {
        if (field == 0) a = a * 16 + (uintptr_t)d; else b = b * 16 + (uintptr_t)d;
      } else if (c == '-' && field == 0) {
        field = 1;
      } else {
        field = 2;
      }
    }
    if (found) break;
  }
  syscall(SYS_close, fd);
  errno = saved;
  return found;
}

// glibc's own: the static TLS size (thread descriptor included) and the descriptor's size, as
// sanitizers and libthread_db read them. Weak: absent elsewhere (a guess is clipped instead).
extern void _dl_get_tls_static_info(size_t *size, size_t *align) __attribute__((weak));
extern const unsigned int _thread_db_sizeof_pthread __attribute__((weak));

void goalloc_gc_tls_bounds(struct goalloc_gc_thread *t) {
  if (t->tls_known) return;
  uintptr_t tp = 0;
#if defined(__x86_64__)
  __asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
#elif defined(__aarch64__)
  __asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
#endif
  size_t size = 0, align = 0, tcb = 4096;
  if (_dl_get_tls_static_info) _dl_get_tls_static_info(&size, &align);
  if (&_thread_db_sizeof_pthread) tcb = _thread_db_sizeof_pthread;
  if (size == 0) size = 16384;
  uintptr_t lo = 0, hi = 0, mlo = 0, mhi = 0;
  if (tp != 0 && goalloc_stack_bounds(tp, &mlo, &mhi)) {
#if defined(__x86_64__)
    lo = tp - size; hi = tp + tcb;  // variant II: the blocks below the thread pointer
#else
    lo = tp - tcb; hi = tp + size;  // variant I: the descriptor below, the blocks above
#endif
    if (lo < mlo || lo > tp) lo = mlo;
    if (hi > mhi || hi < tp) hi = mhi;
    uintptr_t slo = t->stack_lo, shi = t->stack_hi;  // (known by now: both callers set them first)
    if (shi == 0) goalloc_stack_bounds((uintptr_t)&slo, &slo, &shi);
    if (lo >= slo && hi <= shi) lo = hi = 0;  // inside the stack mapping: scanned with the stack
  }
  t->tls_lo = lo & ~(uintptr_t)7;
  t->tls_hi = hi;
  __atomic_store_n(&t->tls_known, 1, __ATOMIC_RELEASE);
}

/// Records where this thread's stack is, acknowledges the stop, and waits until it ends.
__attribute__((noinline)) static void suspend_here(void) {
  struct goalloc_gc_thread *t = &goalloc_gc_self;
  volatile uintptr_t marker = 0;
  uintptr_t sp = (uintptr_t)&marker;
  if (t->stack_hi == 0 || sp < t->stack_lo || sp >= t->stack_hi) {
    uintptr_t lo = 0, hi = 0;
    if (goalloc_stack_bounds(sp, &lo, &hi)) { t->stack_lo = lo; t->stack_hi = hi; }
  }
  goalloc_gc_tls_bounds(t);
  uint32_t e = __atomic_load_n(&world_epoch, __ATOMIC_ACQUIRE);
  __atomic_store_n(&t->sp, sp, __ATOMIC_RELAXED);
  __atomic_store_n(&t->stopped, e, __ATOMIC_RELEASE);
  __atomic_add_fetch(&suspended, 1, __ATOMIC_ACQ_REL);
  __atomic_add_fetch(&acks, 1, __ATOMIC_ACQ_REL);
  futex(&acks, FUTEX_WAKE, 1, 0);
  while (__atomic_load_n(&world_epoch, __ATOMIC_ACQUIRE) == e) futex(&world_epoch, FUTEX_WAIT, e, 0);
  __atomic_sub_fetch(&suspended, 1, __ATOMIC_ACQ_REL);
  (void)marker;
}

static void stop_handler(int sig, siginfo_t *info, void *uctx) {
  (void)sig; (void)info; (void)uctx;  // the signal frame (uctx: every register) lies above our sp
  int saved = errno;
  struct goalloc_gc_thread *t = &goalloc_gc_self;
  if ((__atomic_load_n(&world_epoch, __ATOMIC_ACQUIRE) & 1) == 0) { errno = saved; return; }  // stale
  if (t->busy) { t->pending = 1; errno = saved; return; }  // stops itself in leave_busy
  t->in_handler = 1;
  suspend_here();
  t->in_handler = 0;
  errno = saved;
}

__attribute__((noinline)) static void suspend_spilled(void *arg, uintptr_t sp) {
  (void)arg; (void)sp;
  suspend_here();
}

void goalloc_gc_suspend_pending(void) {
  goalloc_gc_self.pending = 0;
  if (__atomic_load_n(&world_epoch, __ATOMIC_ACQUIRE) & 1) goalloc_gc_with_registers(suspend_spilled, 0);
}

static int chosen_signal;  // GOALLOC_GC_SIGNAL or SIGRTMIN+6, once the environment was read

/// The stop signal the GC mode uses (or will use once installed).
static int choose_signal(void) {
  int s = __atomic_load_n(&chosen_signal, __ATOMIC_ACQUIRE);
  if (s) return s;
  if (!environ) return SIGRTMIN + 6;  // too early to read GOALLOC_GC_SIGNAL: ask again later
  s = SIGRTMIN + 6;
  const char *v = getenv("GOALLOC_GC_SIGNAL");
  if (v && *v) {
    int n = atoi(v);
    if (n > 0 && n < NSIG && n != SIGKILL && n != SIGSTOP && n != SIGSEGV && n != SIGBUS) s = n;
    else goalloc_write(2, "goalloc: GOALLOC_GC_SIGNAL is not a usable signal number; using SIGRTMIN+6\n");
  }
  int expected = 0;
  if (!__atomic_compare_exchange_n(&chosen_signal, &expected, s, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) s = expected;
  return s;
}

int goalloc_gc_install(int sig) {
  static int installing;
  int s = __atomic_load_n(&stop_signal, __ATOMIC_ACQUIRE);
  if (s) return s;
  while (__atomic_exchange_n(&installing, 1, __ATOMIC_ACQUIRE)) sched_yield();
  s = stop_signal;
  if (!s) {
    if (sig <= 0) sig = choose_signal();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = stop_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);  // nothing else runs on a stopped thread, except faults
    sigdelset(&sa.sa_mask, SIGSEGV); sigdelset(&sa.sa_mask, SIGBUS);
    sigdelset(&sa.sa_mask, SIGFPE); sigdelset(&sa.sa_mask, SIGILL);
    int saved = errno;
    if (sigaction(sig, &sa, 0) == 0) {
      __atomic_store_n(&stop_signal, sig, __ATOMIC_RELEASE);
      s = sig;
    } else {
      s = -1;
    }
    errno = saved;
  }
  __atomic_store_n(&installing, 0, __ATOMIC_RELEASE);
  return s;
}

void goalloc_gc_unblock(void) {
  int s = __atomic_load_n(&stop_signal, __ATOMIC_ACQUIRE);
  if (s <= 0) s = choose_signal();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, s);
  int saved = errno;
  pthread_sigmask(SIG_UNBLOCK, &set, 0);
  errno = saved;
}

int goalloc_gc_signal(void) { return __atomic_load_n(&stop_signal, __ATOMIC_ACQUIRE); }

void goalloc_gc_begin_stop(void) {
  // The threads the last stop suspended first leave it (each then runs on at least until this
  // stop's signal reaches it): else a thread not yet scheduled since the restart would take the
  // next stop's signal before any of its own code, and back-to-back collections (a thread
  // calling goalloc_gc_collect in a loop) would starve it. Fairness only, so bounded (about
  // 10 ms: a thread held by a debugger must not hold the collector too).
  for (int i = 0; i < 564 && __atomic_load_n(&suspended, __ATOMIC_ACQUIRE) != 0; i++) {
    if (i < 64) sched_yield();
    else goalloc_nap_ns(20 * 1000);
  }
  __atomic_store_n(&acks, 0, __ATOMIC_RELEASE);
  __atomic_add_fetch(&world_epoch, 1, __ATOMIC_ACQ_REL);  // odd: stopping
}

int goalloc_gc_signal_thread(long tid) {
  int saved = errno;
  long r = syscall(SYS_tgkill, (long)getpid(), tid, stop_signal);
  errno = saved;
  return r == 0;
}

void goalloc_gc_wait_stopped(int n) {
  uint64_t waited = 0;
  for (;;) {
    uint32_t a = __atomic_load_n(&acks, __ATOMIC_ACQUIRE);
    if ((int)a >= n) return;
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    futex(&acks, FUTEX_WAIT, a, &ts);
    if (__atomic_load_n(&acks, __ATOMIC_ACQUIRE) == a && ++waited % 500 == 0) {
      goalloc_write(2, "goalloc: gc: still waiting for threads to stop (is the stop signal blocked? see GOALLOC_GC_SIGNAL)\n");
    }
  }
}

uint32_t goalloc_gc_epoch(void) { return __atomic_load_n(&world_epoch, __ATOMIC_ACQUIRE); }

void goalloc_gc_start_world(void) {
  __atomic_add_fetch(&world_epoch, 1, __ATOMIC_ACQ_REL);  // even: running
  futex(&world_epoch, FUTEX_WAKE, INT32_MAX, 0);
}

void goalloc_gc_after_fork_child(void) {
  if (__atomic_load_n(&world_epoch, __ATOMIC_ACQUIRE) & 1) __atomic_add_fetch(&world_epoch, 1, __ATOMIC_ACQ_REL);
  __atomic_store_n(&acks, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&suspended, 0, __ATOMIC_RELEASE);
  goalloc_gc_self.pending = 0;
  goalloc_gc_self.busy = 0;
}

__attribute__((noinline)) void goalloc_gc_with_registers(void (*fn)(void *, uintptr_t), void *arg) {
  __builtin_unwind_init();  // every callee-saved register is saved in this frame
  volatile uintptr_t marker = 0;
  fn(arg, (uintptr_t)&marker);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);  // no tail call: this frame stays while fn runs
  (void)marker;
}

struct image_walk { uintptr_t *out; int cap, n; uintptr_t self; };

static int image_cb(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  struct image_walk *w = data;
  int mine = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && w->self >= lo && w->self < lo + ph->p_memsz) mine = 1;
  }
  // This library's own data is allocator metadata; when the allocator is linked into the main
  // program (the Swift tests) the image is the program's, whose globals are roots.
  if (mine && info->dlpi_name && info->dlpi_name[0]) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || ph->p_memsz == 0) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
    lo &= ~(uintptr_t)7;
    if (w->n < w->cap) { w->out[2 * w->n] = lo; w->out[2 * w->n + 1] = hi; }
    w->n++;
  }
  return 0;
}

int goalloc_image_ranges(uintptr_t *out, int cap) {
  struct image_walk w = { out, cap, 0, (uintptr_t)&goalloc_image_ranges };
  int saved = errno;
  dl_iterate_phdr(image_cb, &w);
  errno = saved;
  return w.n;
}

int goalloc_range_mapped(uintptr_t lo, uintptr_t hi) {
  if (hi <= lo) return 1;
  uintptr_t a = lo & ~(uintptr_t)4095;
  int saved = errno;
  int r = msync((void *)a, hi - a, MS_ASYNC);
  errno = saved;
  return r == 0;
}

struct sigframe_walk { int found, frames; };

static _Unwind_Reason_Code sigframe_cb(struct _Unwind_Context *ctx, void *data) {
  struct sigframe_walk *w = data;
  int before = 0;
  uintptr_t ip = _Unwind_GetIPInfo(ctx, &before);
  if (ip == 0) return _URC_END_OF_STACK;
  // The unwinder reports a signal frame (the kernel's, restored by sigreturn) as "ip is not
  // after a call": the frame of the interrupted code sits right above it.
  if (before && w->frames > 0) { w->found = 1; return _URC_END_OF_STACK; }
  if (++w->frames > 512) return _URC_END_OF_STACK;
  return _URC_NO_REASON;
}

int goalloc_in_signal_handler(void) {
  if (goalloc_gc_self.in_handler) return 1;
  struct sigframe_walk w = { 0, 0 };
  int saved = errno;
  if (!goalloc_unwind_lock()) {  // (this thread was unwinding: a signal handler interrupted it)
    errno = saved;
    return 1;
  }
  _Unwind_Backtrace(sigframe_cb, &w);
  goalloc_unwind_unlock();
  errno = saved;
  return w.found;
}

uint64_t goalloc_walltime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int goalloc_gc_percent_from_env(int dflt) {
  if (!environ) return dflt;
  const char *v = getenv("GOALLOC_GC");
  if (!v || !*v) return dflt;
  if (strcmp(v, "off") == 0) return -1;
  char *end = 0;
  long n = strtol(v, &end, 10);
  if (end == v || *end != 0 || n < -1 || n > 1000000) {
    goalloc_write(2, "goalloc: GOALLOC_GC must be a percent (e.g. 100) or off; using 100\n");
    return dflt;
  }
  return (int)n;
}

static int default_procs(void) {
  cpu_set_t set;
  int n = 1;
  int saved = errno;
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  errno = saved;
  if (n < 1) n = 1;
  return n > 8 ? 8 : n;
}

int goalloc_gc_procs_from_env(void) {
  if (!environ) return default_procs();
  const char *v = getenv("GOALLOC_GC_PROCS");
  if (!v || !*v) return default_procs();
  char *end = 0;
  long n = strtol(v, &end, 10);
  if (end == v || *end != 0 || n < 1 || n > 64) {
    goalloc_write(2, "goalloc: GOALLOC_GC_PROCS must be a number of mark workers from 1 to 64; using the CPU count (at most 8)\n");
    return default_procs();
  }
  return (int)n;
}

int goalloc_gc_park(uint32_t *addr, uint32_t expected, uint64_t timeout_ns) {
  struct timespec ts = { (time_t)(timeout_ns / 1000000000ull), (long)(timeout_ns % 1000000000ull) };
  int saved = errno;
  long r = futex(addr, FUTEX_WAIT, expected, &ts);
  int timedout = r != 0 && errno == ETIMEDOUT;
  errno = saved;
  return timedout;
}
