// MGCSweep: sweeping (Go's mgcsweep.go): lazy, proportional and in the background, after a
// flip that costs the pause nothing per span of the heap.
//
// Sweeping a collected small span turns its mark bits into its alloc bits (Go's
// `allocBits = gcmarkBits`), minus the slots freed explicitly since the last cycle (freeBits:
// goalloc_gc_free and free() of a collected object; a freed object goes even if it is still
// reachable, as the caller said so, and the mark never marks one); freeindex returns to 0,
// allocCount to the survivors, and the span needs zeroing if anything was freed (scan objects
// are handed out zeroed). The mark, scanned and free bitmaps are cleared for the next cycle. A
// large object not marked is freed. A span is swept only under its shape's central lock (or
// with the world stopped), so a stop never finds one half swept.
// `sweepgen` (h = GCState.sweepgen; the states in MSpan.swift): the flip, at the end of the
// mark with the world stopped, moves h on by 2 and sweeps only the spans GC caches hold (their
// slots and handoff words: at most threads x shapes, whatever the heap's size), which get
// h + 3. Every other collected span is on a list (MGCCentral) whose parity now reads
// "unswept" (h - 2), and is swept later by whoever reaches it first, taking it off its list:
//   lazy          a GC cache's refill sweeps its own shape's unswept spans (gcSweepForRefill);
//   reclaim       before a refill or a large object takes fresh pages while spans are unswept,
//                 spans are swept until as many pages were freed (Go's mheap reclaim);
//   proportional  each refill first sweeps pages in proportion to the bytes allocated since the
//                 flip, so the sweep ends before heapLive reaches the next trigger (Go's
//                 sweepPagesPerByte, set at the flip, with its 1 MiB margin);
//   background    the scavenger's thread sweeps what is left on each tick (100 ms), a span at a
//                 time, yielding between batches (Go's bgsweep);
//   termination   the next cycle sweeps whatever is left before it stops the world (by the
//                 collecting thread, the world running), and checks again once it is stopped.
// goalloc_gc_collect also finishes the sweep before it returns (as Go's runtime.GC does), so its
// caller sees every unreachable object freed. A swept span goes to its swept partial or full
// list, or back to the page heap when nothing in it survived (so to the scavenger).
// GOALLOC_DEBUG=gcsweep=eager sweeps every span inside the pause (stage 1's first collector, and
// Go's gcstoptheworld=2); gcsweep=ondemand leaves out the background sweep and collect's finish.
// Until a span is swept its dead objects still look allocated in its bitmaps; what asks whether
// an object is allocated must ask `gcIsDead` too (explicit free: MallocGC). Plain malloc spans
// are never swept.
import CGoAllocShim

/// How sweeping runs (GOALLOC_DEBUG=gcsweep=...).
enum GCSweepMode: UInt32 { case lazy = 0, eager = 1, ondemand = 2 }

/// What the flip leaves: bytes in marked objects, heapLive (held spans count whole), and the
/// pages of collected spans.
struct GCSweepResult {
  var marked: UInt64 = 0
  var live: UInt64 = 0
  var spanBytes: UInt64 = 0
}

extension UnsafeMutablePointer where Pointee == GCState {
  // MARK: one span

  /// Sweeps the bitmaps of small span s (allocation state: its holder's, or a list's); returns
  /// the survivors. Central lock held, or the world stopped.
  func sweepSmallBits(_ h: UnsafeMutablePointer<MHeap>, _ s: SpanPtr) -> Int {
    let before = s.pointee.allocCount
    let fi = s.pointee.freeindex
    var n = 0
    for w in 0..<s.usedWords {
      let lo = w &<< 6
      var allocated = s.allocWord(w).pointee
      if fi >= lo &+ 64 { allocated = ~0 } else if fi > lo { allocated |= (1 &<< UInt64(fi &- lo)) &- 1 }
      // (No locked exchange for a word without frees, the usual case: a free that lands after
      // the load stays in freeBits for the next sweep, as one after the exchange would.)
      let fw = s.freeWord(w)
      let freed = atomicLoadRelaxed64(fw) == 0 ? 0 : atomicExchange64(fw, 0)
      if _slowPath(freed & ~allocated != 0) {
        // Freed twice (the first free was applied by an earlier sweep).
        h.badFree("goalloc_gc_free", "double free detected (found by sweep)",
                  s.pointee.startAddr + UInt((lo + (freed & ~allocated).trailingZeroBitCount) * s.pointee.elemsize))
      }
      let keep = s.gcmarkWord(w).pointee & ~freed & allocated
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
    let freedObjects = before - n
    if freedObjects > 0 {
      s.pointee.needzero = 1
      atomicAdd64(&pointee.frees, UInt64(freedObjects))
      atomicAdd64(&pointee.freedBytes, UInt64(freedObjects) &* UInt64(s.pointee.elemsize))
    }
    return n
  }

  /// Sweeps small span s, taken off an unswept list while the world may run, and marks it swept
  /// (sweepgen h); returns the survivors. Central lock held.
  func sweepUnsweptSmall(_ h: UnsafeMutablePointer<MHeap>, _ s: SpanPtr) -> Int {
    let sg = pointee.sweepgen
    // Being swept (Go's sg - 1) before any bitmap changes: a free that reads "unswept" and then
    // a mark word the sweep already cleared reads sweepgen again and sees this, not a dead
    // object (gcIsDead). (The acquire keeps the bitmap stores below after this one.)
    _ = atomicExchange32(&s.pointee.sweepgen, sg &- 1, acquire: true)
    let n = sweepSmallBits(h, s)
    atomicStore32(&s.pointee.sweepgen, sg)
    return n
  }

  /// Sweeps span s, just taken off an unswept list: back onto its swept list, or returned for
  /// the caller to free (nothing survived; a large object's span in the freeing state), or nil
  /// with s on no list (a large object being freed explicitly: its freer frees it). Central
  /// lock held.
  func sweepListed(_ h: UnsafeMutablePointer<MHeap>, _ s: SpanPtr) -> SpanPtr? {
    let sg = pointee.sweepgen
    atomicAdd64(&pointee.pagesSwept, UInt64(s.pointee.npages))
    if s.isLarge {
      atomicStore32(&s.pointee.sweepgen, sg)
      // Freed explicitly during a concurrent mark (MGCConcurrent: counted then, freed now).
      let freed = atomicExchange64(s.freeWord(0), 0) & 1 != 0
      if s.gcmarkWord(0).pointee & 1 != 0 && !freed {
        s.gcmarkWord(0).pointee = 0
        s.localWord(0).pointee = 0
        gcListPush(s, full: true)
        return nil
      }
      s.gcmarkWord(0).pointee = 0
      s.localWord(0).pointee = 0
      if !atomicCAS32(&s.pointee.state, spanInUse, spanFreeing) { return nil }  // being freed explicitly
      if !freed {
        atomicAdd64(&pointee.frees, 1)
        atomicAdd64(&pointee.freedBytes, UInt64(s.pointee.elemsize))
      }
      return s
    }
    let n = sweepUnsweptSmall(h, s)
    if n == 0 { return s }
    gcListPush(s, full: n == s.pointee.nelems)
    return nil
  }

  // MARK: lazy sweep

  /// A refill of shape found no swept partial span: sweeps the shape's unswept spans (partial
  /// first), at most spanBudget, until one has a free slot, which it returns off its list (empty
  /// ones too: the cache uses it). Central lock held.
  func gcSweepForRefill(_ h: UnsafeMutablePointer<MHeap>, _ shape: Int) -> SpanPtr? {
    var budget = Self.spanBudget
    let up = 1 &- sweptParity(pointee.sweepgen)
    for kind in 0..<2 {
      let head = listHead(shape, full: kind == 1, parity: up)
      while budget > 0, let s = head.pointee {
        budget -= 1
        gcListRemove(s)
        atomicAdd64(&pointee.pagesSwept, UInt64(s.pointee.npages))
        let n = sweepUnsweptSmall(h, s)
        if n < s.pointee.nelems { return s }
        gcListPush(s, full: true)
      }
    }
    return nil
  }

  // MARK: sweeping whatever is next

  /// Sweeps one unswept span of any shape (Go's sweepone), taking its central lock. Returns the
  /// pages it gave back to the page heap (0: it survived), or -1 when nothing is left to sweep.
  func gcSweepOne(_ h: UnsafeMutablePointer<MHeap>) -> Int {
    while true {
      if atomicLoad64(&pointee.unswept) == 0 { return -1 }
      // The cursor: sweepgen << 32 | the first shape that may still hold unswept spans (a stale
      // one, from before a flip, never moves the new one: the CAS compares both halves).
      let cur = atomicLoad64(&pointee.sweepCursor)
      let shape = Int(cur & 0xffff_ffff)
      if shape >= Self.gcShapes { return -1 }
      let central = gcCentral(h, shape)
      lockAcquire(&central.pointee.lock)
      guard UInt32(truncatingIfNeeded: cur >> 32) == pointee.sweepgen, let s = unsweptHead(shape) else {
        lockRelease(&central.pointee.lock)
        _ = atomicCAS64(&pointee.sweepCursor, cur, cur &+ 1)
        continue
      }
      gcListRemove(s)
      let dead = sweepListed(h, s)
      lockRelease(&central.pointee.lock)
      guard let dead else { return 0 }
      let pages = dead.pointee.npages
      h.freeCollectedSpan(dead)
      return pages
    }
  }

  /// Sweeps every unswept span with the world stopped and every lock held (sweep termination's
  /// check; gcsweep=eager's whole sweep).
  func gcSweepAllLocked(_ h: UnsafeMutablePointer<MHeap>) {
    if atomicLoad64(&pointee.unswept) == 0 { return }
    for shape in 0..<Self.gcShapes {
      while let s = unsweptHead(shape) {
        gcListRemove(s)
        if let dead = sweepListed(h, s) {
          dead.pointee.collected = 0
          h.freeSpanLocked(dead)
        }
      }
    }
    atomicStore64(&pointee.sweepCursor, UInt64(pointee.sweepgen) << 32 | UInt64(Self.gcShapes))
  }

  /// Sweeps until nothing is left (sweep termination before a stop, goalloc_gc_collect's finish,
  /// the background sweeper), yielding the processor every `yieldEvery` spans (0: never).
  func gcFinishSweep(_ h: UnsafeMutablePointer<MHeap>, yieldEvery: Int = 0) {
    var n = 0
    while gcSweepOne(h) >= 0 {
      n += 1
      if yieldEvery > 0 && n % yieldEvery == 0 { goalloc_yield() }
    }
  }

  /// Before npages fresh pages are taken while spans are unswept: sweeps until that many pages
  /// went back to the page heap, or nothing is left (Go's mheap.reclaim).
  func gcReclaim(_ h: UnsafeMutablePointer<MHeap>, _ npages: Int) {
    var freed = 0
    while freed < npages {
      let f = gcSweepOne(h)
      if f < 0 { return }
      freed += f
    }
  }

  /// Proportional sweep: before a refill of `bytes`, sweeps until the pages swept since the flip
  /// keep up with the bytes allocated since it (Go's deductSweepCredit).
  func gcDeductSweepCredit(_ h: UnsafeMutablePointer<MHeap>, _ bytes: UInt64) {
    let perByte = Double(bitPattern: atomicLoad64(&pointee.sweepPagesPerByte))
    if perByte == 0 { return }
    let live = atomicLoad64(&pointee.heapLive), basis = atomicLoad64(&pointee.sweepLiveBasis)
    let allocated = bytes &+ (live > basis ? live - basis : 0)
    let target = UInt64(perByte * Double(allocated))
    while atomicLoad64(&pointee.pagesSwept) < target {
      if gcSweepOne(h) < 0 {
        atomicStore64(&pointee.sweepPagesPerByte, 0)
        return
      }
    }
  }

  /// The background sweeper's turn (the scavenger's tick): sweeps what is left, yielding
  /// between batches of spans. Not with gcsweep=ondemand.
  func gcBackgroundSweep(_ h: UnsafeMutablePointer<MHeap>) {
    if pointee.sweepMode != GCSweepMode.lazy.rawValue || atomicLoad64(&pointee.unswept) == 0 { return }
    gcFinishSweep(h, yieldEvery: 16)
  }

  // MARK: the flip

  /// The flip's first step (world stopped, every allocator lock held): sweepgen += 2, so every
  /// listed span reads unswept. (The cycle then sweeps the spans GC caches hold: `sweepHeld`.)
  func gcFlipSweepgen() -> GCSweepResult {
    atomicStore32(&pointee.sweepgen, pointee.sweepgen &+ 2)
    var r = GCSweepResult()
    r.marked = pointee.work.pointee.markedBytes
    r.live = r.marked
    return r
  }

  /// The flip's last step: the listed spans are the unswept ones, the sweep cursor starts over.
  func gcFlipLists(_ r: inout GCSweepResult) {
    atomicStore64(&pointee.unswept, atomicLoad64(&pointee.listed))
    atomicStore64(&pointee.sweepCursor, UInt64(pointee.sweepgen) << 32)
    atomicStore64(&pointee.pagesSwept, 0)
    r.spanBytes &+= atomicLoad64(&pointee.listedPages) &* UInt64(pageSize)
    pointee.unsweptAtFlip = atomicLoad64(&pointee.unswept)
  }

  /// A span a GC cache holds, swept at the flip: its holder allocates from it on restart.
  func sweepHeld(_ h: UnsafeMutablePointer<MHeap>, _ s: SpanPtr, _ r: inout GCSweepResult) {
    let n = sweepSmallBits(h, s)
    atomicStore32(&s.pointee.sweepgen, pointee.sweepgen &+ 3)
    r.live &+= UInt64(s.pointee.nelems - n) &* UInt64(s.pointee.elemsize)
    r.spanBytes &+= UInt64(s.pointee.npages * pageSize)
  }

  /// The proportional sweep's pace, once the next goal is set (world stopped): the listed pages
  /// over the bytes allocation may add before the goal, less 1 MiB (Go's sweepMinHeapDistance).
  func gcSetSweepPace() {
    let pages = atomicLoad64(&pointee.listedPages)
    let live = atomicLoad64(&pointee.heapLive), goal = atomicLoad64(&pointee.heapTrigger)  // (the next cycle's start)
    var distance = goal > live ? goal - live : 0
    distance = distance > (1 << 20) + UInt64(pageSize) ? distance - (1 << 20) : UInt64(pageSize)
    let perByte = pages == 0 || atomicLoad64(&pointee.unswept) == 0 ? 0 : Double(pages) / Double(distance)
    atomicStore64(&pointee.sweepPagesPerByte, perByte.bitPattern)
    atomicStore64(&pointee.sweepLiveBasis, live)
  }

  /// Whether the object in slot idx of small span s is dead but not swept yet: s is unswept
  /// and the last mark did not mark it (the free path's question; any thread, no lock: a
  /// sweep that begins meanwhile makes the answer "no").
  func gcIsDead(_ s: SpanPtr, _ idx: Int) -> Bool {
    let sg = atomicLoad32(&s.pointee.sweepgen)
    if sg != atomicLoad32(&pointee.sweepgen) &- 2 { return false }
    let marked = atomicLoadRelaxed64(s.gcmarkWord(idx &>> 6)) & (1 &<< UInt64(idx & 63)) != 0
    return !marked && atomicLoad32(&s.pointee.sweepgen) == sg
  }
}
