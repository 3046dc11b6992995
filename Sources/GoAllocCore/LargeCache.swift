// LargeCache: the mheap's last few freed large spans, kept whole. (Not from Go, whose large
// objects always go back to the page heap.) A program that frees a large block and then
// allocates one of the same page count gets the span back as it was: no page-allocator update,
// no span-table writes, where the round trip through the page heap costs thousands of
// instructions per pair (summaries of four levels, one span-table entry per page, twice).
//
// Invariants (all under the heap lock):
// - at most `largeCacheSlots` spans, `largeCacheMaxPages` pages in all, oldest first;
// - a cached span has state spanCached and is still in the span table, so a free, realloc or
//   size query of any of its pages finds a span that is not in use and is reported;
// - its pages are neither in use nor free: `largeCachedPages` counts them, in HeapIdle;
// - an allocation that misses, an in-place growth of a large span, every scavenge and every
//   scavenger tick give them all back to the page heap (where they merge with their neighbours),
//   so the cache never keeps memory from a request of another size, from a growing neighbour,
//   from the OS, or from a memory limit for long; a block realloc moves away from is not kept.
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

let largeCacheSlots = 4
let largeCacheMaxPages = 2048  // 16 MiB

extension UnsafeMutablePointer where Pointee == MHeap {
  /// Keeps large span s (just freed, state spanFreeing) for reuse; false when it is too large.
  /// Heap lock held.
  func cacheLargeLocked(_ s: SpanPtr) -> Bool {
    let np = s.pointee.npages
    if np > largeCacheMaxPages || atomicLoad32(&pointee.secure) != 0 { return false }
    while pointee.largeCached == largeCacheSlots || pointee.largeCachedPages + np > largeCacheMaxPages {
      evictLargeLocked(0)
    }
    atomicStore32(&s.pointee.state, spanCached)
    pointee.largeSlots[pointee.largeCached] = s
    pointee.largeCached += 1
    pointee.largeCachedPages += np
    pointee.pagesInUse -= np
    pointee.spansInUse -= 1
    return true
  }

  /// A cached span of exactly `npages` pages, in use again as span class spc (its memory is not
  /// zero), or nil. Heap lock held.
  func takeCachedLargeLocked(_ npages: Int, spanclass spc: SpanClass) -> SpanPtr? {
    var i = pointee.largeCached - 1  // newest first: the likeliest to be in the CPU's caches
    while i >= 0 {
      if let s = pointee.largeSlots[i], s.pointee.npages == npages {
        removeLargeSlot(i)
        s.setSpanClass(spc)
        s.pointee.needzero = 1
        pointee.pagesInUse += npages
        pointee.spansInUse += 1
        atomicStore32(&s.pointee.state, spanInUse)
        return s
      }
      i -= 1
    }
    return nil
  }

  /// Gives every cached span back to the page heap. Heap lock held.
  func flushLargeCacheLocked() {
    while pointee.largeCached > 0 { evictLargeLocked(0) }
  }

  private func evictLargeLocked(_ i: Int) {
    let s = pointee.largeSlots[i]!
    removeLargeSlot(i)
    pointee.pagesInUse += s.pointee.npages  // freeSpanLocked takes them out of use
    pointee.spansInUse += 1
    freeSpanLocked(s)
  }

  private func removeLargeSlot(_ i: Int) {
    let s = pointee.largeSlots[i]!
    var j = i
    while j + 1 < pointee.largeCached { pointee.largeSlots[j] = pointee.largeSlots[j + 1]; j += 1 }
    pointee.largeCached -= 1
    pointee.largeSlots[pointee.largeCached] = nil
    pointee.largeCachedPages -= s.pointee.npages
  }
}
