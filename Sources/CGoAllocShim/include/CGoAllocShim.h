// CGoAllocShim: the few things Swift cannot express, and nothing else. Nothing here allocates.
//
// This umbrella header is what Swift imports (SwiftPM's generated module map names it); each
// header below goes with one C file of this folder and holds one concern. Every symbol carries
// the `goalloc_` prefix. The allocator itself is Swift.
#ifndef CGOALLOCSHIM_H
#define CGOALLOCSHIM_H

#include "goalloc_sizeclasses.h"  // the size-class tables (generated; defined in sizeclasses.c)
#include "goalloc_fastpath.h"     // TLS cache words, the global heap, the page -> span table
#include "goalloc_os.h"           // mmap/munmap/madvise, futex, clock, sleep, errno, abort
#include "goalloc_thread.h"       // thread-exit key, fork handlers, background threads, exit hook
#include "goalloc_env.h"          // GOALLOC_DEBUG and GOALLOC_MEMLIMIT
#include "goalloc_proc.h"         // /proc readers: RSS, "last live thread", executable mappings
#include "goalloc_output.h"       // unbuffered writes to a file descriptor; output files
#include "goalloc_trace.h"        // the allocation trace's buffer and lock
#include "goalloc_backtrace.h"    // caller stacks (DWARF unwinding) and their symbols (dladdr)
#include "goalloc_unwind.h"       // unwind entries for the library's own Swift code
#include "goalloc_sample.h"       // random numbers and the heap profile's sampling maths
#include "goalloc_stw.h"          // the GC mode: stopping the world, stack bounds, image segments
#include "goalloc_specials.h"     // the GC mode: the cleanup thread, calls to finalizers and cleanups
#include "goalloc_dirty.h"        // the GC mode: pages written during a concurrent mark (userfaultfd, soft-dirty)

#endif
