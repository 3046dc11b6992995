// The GC mode's dirty-page tracking (dirty.c): which pages of the heap were written while a
// concurrent mark ran (MGCDirty.swift). Three mechanisms, the first the kernel offers (or the
// one GOALLOC_DEBUG=gcdirty names):
//   uffd       userfaultfd's asynchronous write-protect (Linux 6.7+: UFFD_FEATURE_WP_ASYNC) read
//              back with the PAGEMAP_SCAN ioctl: the kernel resolves each first write to a
//              protected page itself (no signal, no thread) and records it in the page table;
//              kernel writes (read(2) into the heap) work as usual;
//   softdirty  /proc/self/clear_refs (4) at the start, pagemap's bit 55 at the end (kernels
//              built with CONFIG_MEM_SOFT_DIRTY; bdwgc's MPROTECT_VDB alternative on Linux);
//   full       none: every page reads written (mark termination then re-marks everything);
//   barrier    none, and none needed (only when GOALLOC_DEBUG=gcdirty=barrier names it): the
//              program stores every pointer into collected objects through
//              goalloc_gc_write_barrier, so mark termination rescans only the roots
//              (MGCBarrier.swift); begin and protect refuse, scan reports nothing.
// Nothing here allocates. One tracking period at a time (the collector's lock).
#ifndef GOALLOC_DIRTY_H
#define GOALLOC_DIRTY_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { GOALLOC_DIRTY_FULL = 0, GOALLOC_DIRTY_UFFD = 1, GOALLOC_DIRTY_SOFTDIRTY = 2, GOALLOC_DIRTY_BARRIER = 3 };

/// The mechanism, chosen on the first call (GOALLOC_DEBUG=gcdirty, else probing the kernel).
int goalloc_dirty_mode(void);
/// Starts a tracking period (softdirty: clears the whole process's bits). 0, or -1 (the period's
/// pages must all be taken as written).
int goalloc_dirty_begin(void);
/// Write-protects [lo, hi) for the period (uffd: registers it first). 0, or -1: the range's pages
/// must all be taken as written.
int goalloc_dirty_protect(uintptr_t lo, uintptr_t hi);
/// The pages of [*lo, hi) written since the period began (or not tracked): up to `max` [a, b)
/// pairs into `out`; *lo moves to where the walk stopped (hi once done). Returns the pairs, or
/// -1 (the rest of the range must be taken as written).
long goalloc_dirty_scan(uintptr_t *lo, uintptr_t hi, uintptr_t *out, long max);
/// As goalloc_dirty_scan, and each page reported is write-protected again in the same step (a
/// write after it is reported by the next scan). uffd only; -1 otherwise.
long goalloc_dirty_scan_reset(uintptr_t *lo, uintptr_t hi, uintptr_t *out, long max);
/// The mechanism's name ("uffd", "softdirty", "full", "barrier") for gctrace and the stats.
const char *goalloc_dirty_name(int mode);
/// In a fork child: the userfaultfd belongs to the parent's address space; the next period
/// probes again.
void goalloc_dirty_after_fork_child(void);

#ifdef __cplusplus
}
#endif
#endif
