// MGCBarrier: the explicit write barrier (Go's hybrid barrier, its mbarrier.go) for runtimes and
// code generators that can call one (goalloc_gc_write_barrier; GoAlloc's GC.PointerField), and
// the stop-2 side of GOALLOC_DEBUG=gcdirty=barrier (MGCConcurrent's header has the argument).
//
// `goalloc_gc_barrier_on` (fastpath.c, exported: goalloc.h's inline goalloc_gc_store tests it
// before it calls the barrier) is set from stop 1 of a concurrent cycle to the start of stop 2, both times with
// the world stopped. The barrier loads it once: clear, the call is the store `*slot = value` and
// nothing more. Set, the old value `*slot` and the new value are *shaded* before the store: a
// value pointing into an allocated, unfreed, unmarked collected object marks it and queues it
// for scanning through the markers' own path (MGCMark.grey) on the barrier's marker
// (GCWork.barrierMarker), whose queue goes to the global one at once (the workers, or stop 2's
// drain, take it). Anything else (nil, memory outside the heap, a free slot, malloc memory, an
// object marked already) is left alone, as the conservative scan leaves it.
// Against the collector: a shade holds `wbLock` and tests the flag again under it; stop 2 takes
// wbLock before it stops the world and clears the flag before letting it go, so no thread is
// stopped half-way through a shade (a mark bit set, its object not queued yet) and no shade
// lands after its cycle's mark. A value seen marked without the lock needs nothing: whoever
// marked it queued it (a worker before the concurrent mark ends; a barrier before releasing
// wbLock) or it is allocated black. A barrier that loaded the flag before stop 1 and stores
// after it stores a value its thread held at stop 1, a root then (greyed by stop 1).
// Invariants: while the flag is set the mark is concurrent (MGCWork: atomic mark bits, the locked
// global queue, even with one worker); the flag is set only by concurrent cycles; the pre-check
// without the lock reads only memory that stays mapped (span structs, bitmaps via a nil test).
import CGoAllocShim

/// goalloc_gc_write_barrier: `*slot = value`, shading the old and the new value while a
/// concurrent mark runs. Any thread, at any time.
@inlinable @inline(__always)
public func goGCWriteBarrier(_ slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, _ value: UnsafeMutableRawPointer?) {
  if _slowPath(goalloc_gc_barrier_load() != 0) {
    gcBarrierShade(UInt(bitPattern: slot.pointee), UInt(bitPattern: value))
  }
  slot.pointee = value
}

/// Shades the words of [p, p + n) (pointers just copied into a collected object by the
/// allocator itself: goalloc_gc_realloc's copy), while a concurrent mark runs.
func gcBarrierCopied(_ p: UnsafeMutableRawPointer, _ n: Int) {
  if goalloc_gc_barrier_load() == 0 { return }
  var a = (UInt(bitPattern: p) &+ 7) & ~7
  let end = UInt(bitPattern: p) &+ UInt(n)
  while a &+ 8 <= end {
    gcBarrierShade(0, UnsafePointer<UInt>(bitPattern: a).unsafelyUnwrapped.pointee)
    a &+= 8
  }
}

/// The barrier's slow path: greys `old` and `new` where they point at unmarked collected objects.
@usableFromInline @inline(never)
func gcBarrierShade(_ old: UInt, _ new: UInt) {
  guard let gc = UnsafeMutablePointer<GCState>(bitPattern: atomicLoadUInt(&gcStateWord)) else { return }
  let w = gc.pointee.work
  let m = w.barrierMarker
  let a = m.mayNeedShade(old), b = m.mayNeedShade(new) && !m.allocatedBlackHere(new)
  if !a && !b { return }
  lockAcquire(&w.pointee.wbLock)
  if goalloc_gc_barrier_load() != 0 {
    if a { m.grey(old) }
    if b { m.grey(new) }
    m.flushBarrierQueue()
    let bytes = m.pointee.markedBytes
    if bytes != 0 {
      m.pointee.markedBytes = 0
      atomicAdd64(&gc.pointee.blackBytes, bytes)  // (added to the mark's bytes at stop 2)
    }
  }
  lockRelease(&w.pointee.wbLock)
}

extension UnsafeMutablePointer where Pointee == GCState {
  /// GOALLOC_DEBUG=gcdirty=barrier: the program promises the barrier on every pointer store
  /// into collected objects; no page is tracked.
  var barrierMode: Bool { pointee.dirtyMode == Int32(GOALLOC_DIRTY_BARRIER) }

  /// Stop 1, after the markers are prepared (world stopped): the barrier shades from now on.
  func gcBarrierOpen() { goalloc_gc_barrier_store(1) }

  /// Stop 2, the world just stopped by a stop that took wbLock first (MGCConcurrent: so no
  /// thread was stopped half-way through a shade): the barrier stops shading.
  func gcBarrierClose() {
    goalloc_gc_barrier_store(0)
    lockRelease(&pointee.work.pointee.wbLock)
  }
}

extension UnsafeMutablePointer where Pointee == GCMarker {
  /// Without a lock: whether p may point into a collected object not marked yet (false is
  /// final: see the header).
  @inline(__always) func mayNeedShade(_ p: UInt) -> Bool {
    if p < pointee.heapLo || p >= pointee.heapHi { return false }
    guard let s = spanOfIndex(pointee.arenas, p), let bits = s.pointee.bits else { return false }
    if s.pointee.collected == 0 || atomicLoad32(&s.pointee.state) != spanInUse { return false }
    if s.isLarge { return atomicLoadRelaxed64(bits + 3) & 1 == 0 }
    let idx = s.objIndex(p)
    if idx < 0 || idx >= s.pointee.nelems { return false }
    return atomicLoadRelaxed64(bits + ((idx &>> 6) &<< 2) + 3) & (1 &<< UInt64(idx & 63)) == 0  // (gcmarkWord)
  }

  /// Whether p (in the heap's bounds) is a slot this thread's GC cache handed out during this
  /// mark from the span it holds now (at or after that span's markFrom, below its freeindex):
  /// allocated black, marked when the cache lets the span go or in stop 2 (MGCConcurrent), so
  /// the barrier need not shade it (the common store: a pointer to an object just allocated).
  /// Only the owning thread changes those words while the world runs.
  @inline(__always) func allocatedBlackHere(_ p: UInt) -> Bool {
    guard let raw = goalloc_tls_get() ?? goalloc_tls_slow_get(), let g = MCache(raw).header.pointee.gc,
          let s = spanOfIndex(pointee.arenas, p), s.pointee.collected != 0, !s.isLarge else { return false }
    let shape = s.spanClass.shape.index
    if GCCache.span(g, shape).pointee != s { return false }
    let idx = s.objIndex(p)
    return idx >= GCCache.from(g, shape).pointee && idx < s.pointee.freeindex
  }

  /// Moves what the barrier's greys queued to the global queue; what finds no room there is
  /// left to the overflow recovery (its span unqueued, its object unscanned). wbLock held.
  func flushBarrierQueue() {
    let q = queue
    if q.pointee.count == 0 { return }
    let w = pointee.work
    lockAcquire(&w.pointee.lock)
    let g = w.globalQueue
    _ = q.move(to: g, items: q.pointee.count, chunks: 0, fifo: !pointee.objectQueue)
    atomicStore64(&w.pointee.globalCount, UInt64(g.pointee.size))
    lockRelease(&w.pointee.lock)
    w.wakeIdle()
    while q.pointee.count > 0 {
      let x = q.popLast()
      if pointee.objectQueue {
        guard let s = spanOfIndex(pointee.arenas, x) else { continue }
        let idx = s.objIndex(x)
        let sw = s.localWord(idx &>> 6), bit: UInt64 = 1 &<< UInt64(idx & 63)
        while true {
          let v = atomicLoadRelaxed64(sw)
          if atomicCAS64(sw, v, v & ~bit) { break }
        }
      } else {
        atomicStoreSeqCst8(&SpanPtr(bitPattern: x).unsafelyUnwrapped.pointee.gcqueued, 0)
      }
      noteOverflow()
    }
  }
}
