// The allocation trace's output (trace.c): events formatted into one process-wide buffer under a
// spin lock (fork-safe through the allocator's fork handlers, which take and reset it).
#ifndef GOALLOC_TRACE_H
#define GOALLOC_TRACE_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One allocation or free event of the allocation trace (format: see AllocTrace.swift).
void goalloc_trace_event(int fd, char op, long tid, uintptr_t addr, size_t size, unsigned cls,
                         void *const *pcs, int npcs);
void goalloc_trace_flush(void);
/// One collection of the GC mode (a "g" line: see AllocTrace.swift), into the same buffer.
void goalloc_trace_gc(int fd, uint64_t n, uint64_t ns, uint64_t before, uint64_t after, uint64_t marked,
                      uint64_t goal, uint64_t pause_ns, int forced);
/// The same line written at once (GOALLOC_DEBUG=gclog: a trace of collections alone).
void goalloc_write_gc_line(int fd, uint64_t n, uint64_t ns, uint64_t before, uint64_t after, uint64_t marked,
                           uint64_t goal, uint64_t pause_ns, int forced);
/// One sample line of the heap profile, "s <size> <pc>...", in one write (format: HeapProfile.swift).
void goalloc_write_sample(int fd, uint64_t size, const uintptr_t *pcs, int npcs);
void goalloc_trace_lock(void);
void goalloc_trace_unlock(void);
void goalloc_trace_reset_lock(void);

#ifdef __cplusplus
}
#endif
#endif
