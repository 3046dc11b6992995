// The GC mode's specials (finalizers, cleanups, weak handles) need from C (specials.c): the
// thread that runs cleanups and finalizers, calls through the function pointers programs hand
// over, a futex wait with a timeout, and the two counters the bdwgc layer reads on its
// allocation path. Nothing here allocates, except pthread_create's own thread setup.
#ifndef GOALLOC_SPECIALS_H
#define GOALLOC_SPECIALS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A cleanup's cancel handle, as goalloc.h's goalloc_gc_cleanup (same layout): its id (0: none)
/// and the object's address complemented, so that a handle kept in scanned memory does not
/// keep the object alive.
struct goalloc_cleanup_handle {
  uint64_t id;
  uintptr_t hidden;
};

/// Starts the detached thread that runs cleanups and finalizers: fn(arg), on a stack of the
/// system's default size (the program's cleanups run on it). 1 on success.
int goalloc_specials_start_thread(void *(*fn)(void *), void *arg);
/// Calls a finalizer, fn(obj, arg) (void (*)(void *, void *)).
void goalloc_specials_call_finalizer(const void *fn, void *obj, void *arg);
/// Calls a cleanup, fn(arg) (void (*)(void *)).
void goalloc_specials_call_cleanup(const void *fn, void *arg);
/// Zeroes 32 KiB of stack below the caller: the frames of the calls it made keep no stale
/// pointers (a conservative collector would see them) while the thread sleeps.
void goalloc_specials_clear_stack(void);
/// Sleeps while *addr == expected, at most `ns` nanoseconds (a wake, a signal or the timeout
/// ends it).
void goalloc_specials_wait(uint32_t *addr, uint32_t expected, uint64_t ns);

/// The bdwgc layer's view of its finalization queue, written by the collector and
/// GC_invoke_finalizers (MFinal.swift): [0] finalizers queued and not yet taken, [1] cycles
/// that queued some (GC_finalizer_notifier is called once per such cycle). Atomic words.
uint32_t *goalloc_specials_bdwgc_counters(void);

#ifdef __cplusplus
}
#endif
#endif
