// The GC mode's contact with the kernel and libc (stw.c): stopping the world with a signal, each
// thread's stack bounds, the writable segments of loaded images (dl_iterate_phdr), spilling the
// registers onto the stack, the wall clock, and "are we inside a signal handler?".
//
// The protocol: the collector (holding every allocator lock) sends the stop signal to each
// registered thread (`goalloc_gc_signal_thread`) and waits for their acknowledgements
// (`goalloc_gc_wait_stopped`). The handler records its stack pointer (the kernel's signal frame,
// with every register of the interrupted code, lies above it on the same stack), acknowledges,
// and waits on a futex until `goalloc_gc_start_world`. A thread inside a GC-allocation critical
// section (`goalloc_gc_enter_busy`/`leave_busy`: it is changing its GC cache's spans) only
// records that a stop is pending and stops itself when it leaves the section, so the collector
// never sees a GC cache half-updated. Threads blocked in system calls are interrupted, stop,
// and their calls restart (SA_RESTART). Everything the handler does is async-signal-safe.
#ifndef GOALLOC_STW_H
#define GOALLOC_STW_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A thread's GC-visible state (initial-exec TLS: one per thread, valid while it lives).
struct goalloc_gc_thread {
  uintptr_t sp;         // the stack pointer saved at the last stop (registers lie above it)
  uintptr_t stack_lo;   // the mapping holding the stack (from /proc/self/maps; 0: not known yet)
  uintptr_t stack_hi;
  uint32_t busy;        // inside a GC-allocation critical section
  uint32_t pending;     // a stop arrived while busy
  uint32_t stopped;     // the epoch of the stop it acknowledged last
  uint32_t in_handler;  // inside the stop handler
  uint32_t tls_known;   // tls_lo/tls_hi computed (by the thread itself: goalloc_gc_tls_bounds)
  uintptr_t tls_lo;     // its static TLS and thread descriptor where they lie outside the stack
  uintptr_t tls_hi;     //   mapping (the main thread's); empty (0, 0) otherwise
};
extern __thread struct goalloc_gc_thread goalloc_gc_self __attribute__((tls_model("initial-exec")));
static inline __attribute__((always_inline)) struct goalloc_gc_thread *goalloc_gc_thread_self(void) { return &goalloc_gc_self; }

/// Installs the stop handler once (signal `sig`, or GOALLOC_GC_SIGNAL, or SIGRTMIN+6 when 0).
/// Returns the signal number, or -1 when sigaction failed.
int goalloc_gc_install(int sig);
/// Unblocks the stop signal (installed, or the one that will be) in the calling thread: run
/// when a thread gets its cache, since threads often start with every signal blocked (the
/// mask is inherited from the creator, and across exec; libdispatch's workers block them all).
void goalloc_gc_unblock(void);
/// The stop signal in use (0: not installed).
int goalloc_gc_signal(void);

/// Begins a stop: later stop signals are honoured (the epoch turns odd).
void goalloc_gc_begin_stop(void);
/// Sends the stop signal to thread `tid` of this process: 1 if sent, 0 if it no longer exists.
int goalloc_gc_signal_thread(long tid);
/// Waits until `n` threads acknowledged (a warning line every 5 s while some do not).
void goalloc_gc_wait_stopped(int n);
/// The current stop's number (odd while stopped): a stopped thread's `stopped` equals it.
uint32_t goalloc_gc_epoch(void);
/// Ends the stop: every stopped thread resumes.
void goalloc_gc_start_world(void);
/// In a fork child: no stop is in progress.
void goalloc_gc_after_fork_child(void);

static inline __attribute__((always_inline)) void goalloc_gc_enter_busy(void) {
  goalloc_gc_self.busy = 1;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
}
void goalloc_gc_suspend_pending(void);
static inline __attribute__((always_inline)) void goalloc_gc_leave_busy(void) {
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  goalloc_gc_self.busy = 0;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  if (__builtin_expect(goalloc_gc_self.pending != 0, 0)) goalloc_gc_suspend_pending();
}

/// A collection's events, numbered as bdwgc's GC_EventType (gc.h), for a hook that wants them
/// (bdwgc.c's GC_set_on_collection_event). The hook runs on the collecting thread; from
/// POST_STOP_WORLD to PRE_START_WORLD the world is stopped and the allocator's locks are held,
/// so it must not allocate.
enum {
  GOALLOC_GC_EVENT_START = 0, GOALLOC_GC_EVENT_MARK_START = 1, GOALLOC_GC_EVENT_MARK_END = 2,
  GOALLOC_GC_EVENT_RECLAIM_START = 3, GOALLOC_GC_EVENT_RECLAIM_END = 4, GOALLOC_GC_EVENT_END = 5,
  GOALLOC_GC_EVENT_PRE_STOP_WORLD = 6, GOALLOC_GC_EVENT_POST_STOP_WORLD = 7,
  GOALLOC_GC_EVENT_PRE_START_WORLD = 8, GOALLOC_GC_EVENT_POST_START_WORLD = 9,
};
extern void (*goalloc_gc_event_hook)(int event);
static inline __attribute__((always_inline)) void goalloc_gc_event(int event) {
  void (*f)(int) = __atomic_load_n(&goalloc_gc_event_hook, __ATOMIC_ACQUIRE);
  if (f) f(event);
}

/// Finds the calling thread's stack mapping (the one holding `sp`) in /proc/self/maps, without
/// allocating; fills lo/hi. 1 on success.
int goalloc_stack_bounds(uintptr_t sp, uintptr_t *lo, uintptr_t *hi);
/// Computes, once per thread and in that thread, t's static TLS range (every module's static
/// TLS block, the surplus, and the thread descriptor with its first pthread_setspecific values)
/// when it lies outside the thread's stack mapping, as the main thread's does (ld.so allocates
/// it at start-up; a pthread's sits at the top of its stack mapping, scanned with the stack).
/// Clipped to the mapping that holds it. Async-signal-safe (raw syscalls only).
void goalloc_gc_tls_bounds(struct goalloc_gc_thread *t);
/// Spills the callee-saved registers onto the stack, then calls fn(arg, sp) with sp below them.
void goalloc_gc_with_registers(void (*fn)(void *, uintptr_t), void *arg);

/// Writes up to `cap` [lo, hi) pairs, the writable PT_LOAD segments of every loaded image,
/// into `out` (2 words each), leaving out the image of this library unless it is the main
/// program (its data is allocator metadata). Returns how many there are (may exceed cap).
int goalloc_image_ranges(uintptr_t *out, int cap);
/// 1 when [lo, hi) is still entirely mapped (msync), else 0.
int goalloc_range_mapped(uintptr_t lo, uintptr_t hi);

/// 1 when the caller runs inside a signal handler (a signal frame on its stack, found by
/// unwinding), else 0.
int goalloc_in_signal_handler(void);
/// Wall clock, nanoseconds since 1970.
uint64_t goalloc_walltime(void);
/// GOALLOC_GC: the GC percent (GOGC), "off" = -1; `dflt` when unset or malformed (one warning).
int goalloc_gc_percent_from_env(int dflt);
/// GOALLOC_GC_PROCS: the number of mark workers (1 to 64; 1 marks on the collecting thread
/// alone). Unset: the CPUs this process may run on (sched_getaffinity), at most 8. A malformed
/// value warns once and uses that default.
int goalloc_gc_procs_from_env(void);
/// A parked mark worker's wait: sleeps while *addr == expected, at most timeout_ns. Returns 1
/// when the time ran out.
int goalloc_gc_park(uint32_t *addr, uint32_t expected, uint64_t timeout_ns);

#ifdef __cplusplus
}
#endif
#endif
