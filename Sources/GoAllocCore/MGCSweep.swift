// MGCSweep: sweeping (Go's mgcsweep.go), in stage 1 eagerly, at the end of the stop.
//
// Sweeping a collected small span turns its mark bits into its alloc bits (Go's
// `allocBits = gcmarkBits`), minus the slots freed explicitly since the last cycle (freeBits:
// goalloc_gc_free and free() of a collected object; a freed object goes even if it is still
// reachable, as the caller said so); freeindex returns to 0, allocCount to the survivors, and
// the span needs zeroing if anything was freed (scan objects are handed out zeroed). The mark,
// scanned and free bitmaps are cleared for the next cycle. A large object not marked is freed.
// Then, by ownership (MGC.swift):
//   cached by a thread's GC cache   stays there (the thread was stopped outside its critical
//                                   section, so its allocation state is whole); sweepgen = h + 3,
//                                   "swept, then cached", so the next cycle finds it at its h + 1
//   empty                           back to the page heap (and so to the scavenger)
//   free slots                      onto its mcentral's partial list
//   full                            floats, on no list
// `sweepgen` (h = GCState.sweepgen, + 2 per cycle; the states in MSpan.swift): the cycle moves
// h on by 2, so every collected span is at h - 2 ("needs sweeping") until swept here, when it
// gets h (or h + 3 when cached). Stage 2 will leave that sweeping to the refill path (lazy
// sweep in `gcCacheSpan`), the background sweeper and proportional sweep; objects allocated
// between the mark and a span's sweep are then allocated black.
// Plain malloc spans are never swept here.
import CGoAllocShim

/// What the sweep leaves: bytes in surviving objects, and heapLive (cached spans count whole).
struct GCSweepResult {
  var marked: UInt64 = 0
  var live: UInt64 = 0
  var spanBytes: UInt64 = 0  // pages of collected spans
}

extension UnsafeMutablePointer where Pointee == GCState {
  /// Sweeps every collected span. World stopped, every allocator lock held.
  func gcSweep(_ h: UnsafeMutablePointer<MHeap>) -> GCSweepResult {
    pointee.sweepgen &+= 2
    let sg = pointee.sweepgen
    var r = GCSweepResult()
    var it = h.pointee.allspans
    while let s = it {
      it = s.pointee.allnext
      if s.pointee.collected == 0 || atomicLoad32(&s.pointee.state) != spanInUse { continue }
      if s.isLarge { sweepLarge(h, s, sg, &r) } else { sweepSmall(h, s, sg, &r) }
    }
    return r
  }

  func sweepLarge(_ h: UnsafeMutablePointer<MHeap>, _ s: SpanPtr, _ sg: UInt32, _ r: inout GCSweepResult) {
    let size = UInt64(s.pointee.elemsize)
    if s.gcmarkWord(0).pointee & 1 != 0 {
      s.gcmarkWord(0).pointee = 0
      s.localWord(0).pointee = 0
      s.pointee.sweepgen = sg
      r.marked &+= size
      r.live &+= size
      r.spanBytes &+= UInt64(s.pointee.npages * pageSize)
      return
    }
    if !atomicCAS32(&s.pointee.state, spanInUse, spanFreeing) { return }  // freed explicitly meanwhile
    atomicAdd64(&pointee.frees, 1)
    atomicAdd64(&pointee.freedBytes, size)
    s.pointee.collected = 0
    h.freeSpanLocked(s)
  }

  func sweepSmall(_ h: UnsafeMutablePointer<MHeap>, _ s: SpanPtr, _ sg: UInt32, _ r: inout GCSweepResult) {
    let before = s.pointee.allocCount
    let fi = s.pointee.freeindex
    var n = 0
    for w in 0..<s.usedWords {
      let lo = w &<< 6
      var allocated = s.allocWord(w).pointee
      if fi >= lo &+ 64 { allocated = ~0 } else if fi > lo { allocated |= (1 &<< UInt64(fi &- lo)) &- 1 }
      let freed = atomicExchange64(s.freeWord(w), 0)
      if _slowPath(freed & ~allocated != 0) {
        // Freed twice (the first free was applied by an earlier sweep).
        h.badFree("goalloc_gc_free", "double free detected (found by sweep)",
                  s.pointee.startAddr + UInt((lo + (freed & ~allocated).trailingZeroBitCount) * s.pointee.elemsize))
      }
      let keep = s.gcmarkWord(w).pointee & ~freed
      s.allocWord(w).pointee = keep
      s.gcmarkWord(w).pointee = 0
      s.localWord(w).pointee = 0
      n += keep.nonzeroBitCount
    }
    let tail = s.pointee.nelems & 63  // slots past nelems read as allocated (see MSpan)
    if tail != 0 { s.allocWord(s.usedWords - 1).pointee |= ~((1 << UInt64(tail)) - 1) }
    s.pointee.freeindex = 0
    s.pointee.allocCount = n
    s.refillAllocCache(0)
    let es = UInt64(s.pointee.elemsize)
    let freedObjects = before - n
    if freedObjects > 0 {
      s.pointee.needzero = 1
      atomicAdd64(&pointee.frees, UInt64(freedObjects))
      atomicAdd64(&pointee.freedBytes, UInt64(freedObjects) &* es)
    }
    r.marked &+= UInt64(n) &* es
    let central = h.central(SpanClass(index: Int(s.pointee.spanclass) | SpanClass.collectedBit))
    if atomicLoadRelaxedUInt(&s.pointee.owner) != 0 {
      s.pointee.sweepgen = sg &+ 3
      r.live &+= UInt64(s.pointee.nelems) &* es
      r.spanBytes &+= UInt64(s.pointee.npages * pageSize)
      return
    }
    s.pointee.sweepgen = sg
    if n == 0 {
      if s.pointee.list == listPartial { central.remove(s) }
      s.pointee.collected = 0
      h.freeSpanLocked(s)
      return
    }
    r.live &+= UInt64(n) &* es
    r.spanBytes &+= UInt64(s.pointee.npages * pageSize)
    if n < s.pointee.nelems && s.pointee.list != listPartial { central.push(s) }
  }
}
