// Caller stacks for the trace and the heap profile (backtrace.c): return addresses outside the
// allocator from a DWARF unwind (no allocation), and one frame written as a symbol or
// module+offset (dladdr, no allocation).
#ifndef GOALLOC_BACKTRACE_H
#define GOALLOC_BACKTRACE_H

#ifdef __cplusplus
extern "C" {
#endif

/// The caller's return addresses, innermost first, from the first frame outside libgoalloc.so
/// (in Swift mode: after `skip` frames); 0 when called re-entrantly.
int goalloc_backtrace(void **pcs, int max, int skip);
/// Sets the calling thread's re-entry guard (on: goalloc_backtrace returns 0); returns the old value.
int goalloc_backtrace_guard(int on);
/// Writes one frame as "symbol" or "module+0xoffset" (dladdr, no allocation).
void goalloc_write_frame(int fd, void *pc);

#ifdef __cplusplus
}
#endif
#endif
