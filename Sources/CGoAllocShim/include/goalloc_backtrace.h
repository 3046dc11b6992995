// Caller stacks for the trace and the heap profile (backtrace.c): return addresses outside the
// allocator, and one frame written as a symbol or module+offset (dladdr, no allocation).
#ifndef GOALLOC_BACKTRACE_H
#define GOALLOC_BACKTRACE_H

#ifdef __cplusplus
extern "C" {
#endif

/// The caller's return addresses (glibc backtrace), skipping `skip` frames; 0 when called
/// re-entrantly (backtrace itself may allocate the first time).
int goalloc_backtrace(void **pcs, int max, int skip);
/// Writes one frame as "symbol" or "module+0xoffset" (dladdr, no allocation).
void goalloc_write_frame(int fd, void *pc);

#ifdef __cplusplus
}
#endif
#endif
