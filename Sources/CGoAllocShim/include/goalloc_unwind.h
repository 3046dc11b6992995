// Unwind tables for the allocator's Swift code (unwind.c): Swift emits none for its functions
// (they are all `nounwind`), so the library registers, once at load, frame-pointer rules for
// every range of its text that has no unwind entry of its own.
#ifndef GOALLOC_UNWIND_H
#define GOALLOC_UNWIND_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Registers the synthetic unwind entries of the object that holds this code (libgoalloc.so) and
/// remembers its text range. Called once by the library's constructor, after the heap is up.
/// Returns the number of ranges registered (0: none needed, or the tables were not understood).
int goalloc_unwind_register_self(void);
/// The text range of libgoalloc.so once registered (both 0 in Swift mode).
void goalloc_unwind_self_range(uintptr_t *start, uintptr_t *end);

/// Around every call of libgcc's unwinder from the allocator: it takes a mutex of its own, which a
/// fork child would inherit locked if another thread was unwinding at the fork (the child then
/// hangs at its first unwind). The allocator's fork handlers hold this lock across the fork, so
/// no thread of ours is inside the unwinder then. `goalloc_unwind_lock` returns 0 without taking
/// it when this thread already holds it (a signal handler that interrupted an unwind): the caller
/// then does not unwind.
int goalloc_unwind_lock(void);
void goalloc_unwind_unlock(void);
void goalloc_unwind_fork_prepare(void);
void goalloc_unwind_fork_parent(void);
void goalloc_unwind_fork_child(void);

#ifdef __cplusplus
}
#endif
#endif
