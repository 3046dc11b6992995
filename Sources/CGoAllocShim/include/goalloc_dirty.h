// The GC mode's dirty-page tracking (dirty.c): which pages of the heap were written while a
// concurrent mark ran (MGCDirty.swift). Four mechanisms, the first the kernel offers (or the
// one GOALLOC_DEBUG=gcdirty names):
//   uffd       userfaultfd's asynchronous write-protect (Linux 6.7+: UFFD_FEATURE_WP_ASYNC) read
//              back with the PAGEMAP_SCAN ioctl: the kernel resolves each first write to a
//              protected page itself (no signal, no thread) and records it in the page table;
//              kernel writes (read(2) into the heap) work as usual;
//   softdirty  /proc/self/clear_refs (4) at the start, pagemap's bit 55 at the end (kernels
//              built with CONFIG_MEM_SOFT_DIRTY; bdwgc's MPROTECT_VDB alternative on Linux);
//   mprotect   (bdwgc's MPROTECT_VDB; 4 KiB OS pages; auto picks it only where uffd and
//              soft-dirty both fail) the collected scan spans' pages are made read-only
//              (goalloc_dirty_mark_pages) and a SIGSEGV handler (SA_SIGINFO, installed on the
//              first period, allocation- and lock-free) records a write fault on one and makes
//              it writable again (and records it once more after that, for a handler
//              delayed past the period's end: dirty.c); any other fault goes to the action the handler replaced
//              (default: the usual crash). The period ends (goalloc_dirty_end, once stop 2 is
//              over) with every page it protected writable again. Limitation: a system call
//              writing into a protected page (read(2) into a GC object with pointers) fails
//              with EFAULT rather than faulting; malloc'd and pointer-free (noscan) memory is
//              never protected. A period whose handler the program replaced reads all written;
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

enum { GOALLOC_DIRTY_FULL = 0, GOALLOC_DIRTY_UFFD = 1, GOALLOC_DIRTY_SOFTDIRTY = 2, GOALLOC_DIRTY_BARRIER = 3,
       GOALLOC_DIRTY_MPROTECT = 4 };

/// The mechanism, chosen on the first call (GOALLOC_DEBUG=gcdirty, else probing the kernel).
int goalloc_dirty_mode(void);
/// Starts a tracking period (softdirty: clears the whole process's bits). 0, or -1 (the period's
/// pages must all be taken as written).
int goalloc_dirty_begin(void);
/// Write-protects [lo, hi) for the period (uffd: registers it first; mprotect: registers it only,
/// every page reading written until goalloc_dirty_mark_pages). 0, or -1: the range's pages must
/// all be taken as written.
int goalloc_dirty_protect(uintptr_t lo, uintptr_t hi);
/// mprotect only, heap lock held: pages [lo, hi) of a registered range (4 KiB aligned, ordinary
/// read-write heap memory) are tracked (`track`: made read-only) or need no rescan unless
/// written (free pages, noscan spans). 0, or -1 (they read written).
int goalloc_dirty_mark_pages(uintptr_t lo, uintptr_t hi, int track);
/// mprotect, heap lock held: a span [lo, hi) allocated during the period reads written, its
/// pages writable. Any other time or mode: nothing.
void goalloc_dirty_span_alloc(uintptr_t lo, uintptr_t hi);
/// mprotect (os.c, before the allocator changes the protection of [lo, hi): guard pages): the
/// pages read written and are never touched by the period again.
void goalloc_dirty_note_protect(uintptr_t lo, uintptr_t hi);
/// Ends the period (after stop 2's scan, or before the next begin; heap lock held): mprotect makes
/// every page it protected writable again. Other mechanisms: nothing.
void goalloc_dirty_end(void);
/// The pages of [*lo, hi) written since the period began (or not tracked): up to `max` [a, b)
/// pairs into `out`; *lo moves to where the walk stopped (hi once done). Returns the pairs, or
/// -1 (the rest of the range must be taken as written).
long goalloc_dirty_scan(uintptr_t *lo, uintptr_t hi, uintptr_t *out, long max);
/// As goalloc_dirty_scan, and each page reported is write-protected again in the same step (a
/// write after it is reported by the next scan). uffd only; -1 otherwise.
long goalloc_dirty_scan_reset(uintptr_t *lo, uintptr_t hi, uintptr_t *out, long max);
/// The mechanism's name ("uffd", "softdirty", "mprotect", "full", "barrier") for gctrace and
/// the stats.
const char *goalloc_dirty_name(int mode);
/// In a fork child: the userfaultfd belongs to the parent's address space; the next period
/// probes again; mprotect: (a fork waits for a period to end, the collector's lock) any period
/// left ended, its pages writable; the handler stays.
void goalloc_dirty_after_fork_child(void);

#ifdef __cplusplus
}
#endif
#endif
