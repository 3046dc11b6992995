// MCentral: the shared pool of spans of one span class (Go's mcentral).
//
// A span not owned by any thread is either on its mcentral's `partial` list (it has free slots,
// or frees not folded yet: PARTIAL set) or *floating*: full, on no list (no flag), where Go's
// mcentral would keep it in its full set. An mcache whose span is exhausted lets it float
// (`uncacheSpan`, one CAS, no lock) and, when its ready list has nothing better, asks for
// another (`cacheSpan`): a partial span if there is one (its freed slots are folded in first),
// else a fresh span from the mheap (`allocSpanReclaiming`). The first free into a floating span
// claims it (CAS on its flags, MSpan.claim): into the freeing thread's ready list if that thread
// filled it (MCache.freeRemote), else onto this partial list through `queuePartial`.
// A cache that gives back an empty span parks it here for the class's next refill, at most
// `maxParkedEmpty` of them (none near the memory limit); more go straight back to the page heap
// (as Go's sweeper frees an empty span). A span emptied later by other threads' frees stays here until it is reclaimed
// (`reclaim`: before the heap grows, on malloc_trim, and every second from the scavenger). Before
// the heap grows, the threads' binned large spans go back too (MHeap.takeBackBins).
// Invariant: nempty == the spans on the partial list with nothing allocated and no frees
// pending that a cache parked (remote frees can empty others: those are not counted).
//
// Locking: `lock` protects the partial list and every span on it; it is never held while taking
// the mheap lock.
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

public struct MCentral {
  var _first: UInt64 = 0  // no atomics at offset 0 (see MHeap)
  var lock: LockWord = 0
  var partial: SpanPtr? = nil
  var npartial: Int = 0
  var grown: UInt64 = 0   // atomic: spans this class took from the mheap so far
  var nempty: Int = 0     // spans parked empty on the partial list (lock)
  var pad: (UInt64, UInt64) = (0, 0)  // one central per cache line
}

extension MCentral {
  /// Spans of a class taken from the mheap at Go's size before `spanPages` applies.
  static let goSizedSpans: UInt64 = 2
  /// Empty spans a class keeps parked on its partial list for its next refill (no heap lock);
  /// a cache that gives back another empty span gives it to the page heap, where its pages
  /// merge with their neighbours and the scavenger and the memory limit can release them.
  static let maxParkedEmpty = 2
}

let listNone: UInt8 = 0
let listPartial: UInt8 = 1

extension UnsafeMutablePointer where Pointee == MCentral {
  func push(_ s: SpanPtr) {
    s.pointee.prev = nil
    s.pointee.list = listPartial
    s.pointee.next = pointee.partial
    pointee.partial?.pointee.prev = s
    pointee.partial = s
    pointee.npartial += 1
  }

  func remove(_ s: SpanPtr) {
    if let p = s.pointee.prev { p.pointee.next = s.pointee.next } else { pointee.partial = s.pointee.next }
    s.pointee.next?.pointee.prev = s.pointee.prev
    pointee.npartial -= 1
    s.pointee.next = nil
    s.pointee.prev = nil
    s.pointee.list = listNone
  }

  /// Gives up ownership of span s (owned by the caller's cache, or just taken off the
  /// partial list under `lock`): it floats if it is full with no frees pending, else it goes on
  /// the partial list. Takes `lock` only for the latter (`locked`: the caller holds it).
  func release(_ s: SpanPtr, locked: Bool = false) {
    atomicStoreRelaxedUInt(&s.pointee.owner, 0)  // (home stays: see MSpan.home)
    while true {
      let cur = atomicLoad64(&s.pointee.freeState)
      if s.pointee.allocCount == s.pointee.nelems && fsPending(cur) <= 0 {
        // Full: float. A free that lands after this CAS finds no flag and claims the span.
        if atomicCAS64(&s.pointee.freeState, cur, cur & ~fsFlags) { return }
        continue
      }
      if atomicCAS64(&s.pointee.freeState, cur, (cur & ~fsFlags) | fsPartial) { break }
    }
    if !locked { lockAcquire(&pointee.lock) }
    push(s)
    if !locked { lockRelease(&pointee.lock) }
  }

  /// A span with free slots for an mcache, or nil when the heap is out of memory.
  func cacheSpan(_ h: UnsafeMutablePointer<MHeap>) -> SpanPtr? {
    lockAcquire(&pointee.lock)
    while let s = pointee.partial {
      remove(s)
      if s.pointee.allocCount == 0 && s.pendingFrees <= 0 { pointee.nempty -= 1 }  // parked empty
      while true {  // PARTIAL -> CACHED, keeping the pending count
        let cur = atomicLoad64(&s.pointee.freeState)
        if atomicCAS64(&s.pointee.freeState, cur, (cur & ~fsFlags) | fsCached) { break }
      }
      s.fold(h)
      if s.pointee.allocCount < s.pointee.nelems {
        lockRelease(&pointee.lock)
        return s
      }
      release(s, locked: true)  // only late-detected double frees could leave it full
    }
    lockRelease(&pointee.lock)
    let spc = SpanClass(index: self - h.pointee.centrals)
    let sc = spc.sizeclass
    // A class's first spans are Go's size (a small program touches a few KiB per class); later
    // ones are GoAlloc's larger spans (fewer refills where the class is used a lot).
    let first = atomicAddRelaxed64(&pointee.grown, 1) < MCentral.goSizedSpans
    guard let s = h.allocSpanReclaiming(first ? classNPages(sc) : spanPages(sc), spanclass: spc) else { return nil }
    atomicStore64(&s.pointee.freeState, fsCached)
    return s
  }

  /// Takes back a span from an mcache (exhausted, or the cache is being flushed). An empty span
  /// stays on the partial list (the next refill of this class takes it without the mheap lock);
  /// reclaim gives parked empty spans back to the page heap.
  func uncacheSpan(_ h: UnsafeMutablePointer<MHeap>, _ s: SpanPtr) {
    if s.hasUnfoldedFrees { s.fold(h) }
    // Empty (nothing allocated, so no free can be pending or arrive): park it, or give it back.
    if s.pointee.allocCount == 0 && s.pendingFrees <= 0 {
      lockAcquire(&pointee.lock)
      let park = pointee.nempty < MCentral.maxParkedEmpty && !h.nearLimit
      if park { pointee.nempty += 1 }
      lockRelease(&pointee.lock)
      if !park {
        atomicStoreRelaxedUInt(&s.pointee.owner, 0)
        atomicStore64(&s.pointee.freeState, 0)
        return h.freeSpan(s)
      }
    }
    release(s)
  }

  /// A free found span s floating and won the right to move it (it set PARTIAL): list it so a
  /// cache can find its free slots.
  func queuePartial(_ s: SpanPtr) {
    lockAcquire(&pointee.lock)
    push(s)
    lockRelease(&pointee.lock)
  }

  /// queuePartial for spans linked through `next` (a FreeList flush), under one lock.
  func queuePartial(chain: SpanPtr?) {
    lockAcquire(&pointee.lock)
    var it = chain
    while let s = it {
      it = s.pointee.next
      push(s)
    }
    lockRelease(&pointee.lock)
  }

  /// Folds the partial spans' frees and returns the spans left with no object, linked through
  /// `next`, for the caller to give back to the mheap (without this lock).
  func reclaimEmpty(_ h: UnsafeMutablePointer<MHeap>) -> SpanPtr? {
    var out: SpanPtr? = nil
    lockAcquire(&pointee.lock)
    var it = pointee.partial
    while let s = it {
      it = s.pointee.next
      let parkedEmpty = s.pointee.allocCount == 0 && s.pendingFrees <= 0
      if s.pendingFrees > 0 { s.fold(h) }
      if s.pointee.allocCount == 0 {
        let cur = atomicLoad64(&s.pointee.freeState)
        if fsPending(cur) == 0 && atomicCAS64(&s.pointee.freeState, cur, 0) {
          remove(s)
          if parkedEmpty { pointee.nempty -= 1 }
          s.pointee.next = out
          out = s
        }
      }
    }
    lockRelease(&pointee.lock)
    return out
  }
}

extension UnsafeMutablePointer where Pointee == MHeap {
  /// Gives every empty span on the mcentrals' partial lists back to the page heap (before the
  /// heap grows, on malloc_trim, and from the scavenger's tick). Heap lock NOT held. Returns
  /// the number of spans freed.
  @discardableResult
  public func reclaim() -> Int {
    var n = 0
    for i in 0..<SpanClass.centralCount {
      var it = central(SpanClass(index: i)).reclaimEmpty(self)
      while let s = it {
        it = s.pointee.next
        freeSpan(s)
        n += 1
      }
    }
    return n
  }

  /// A new span from the heap (MHeap.allocSpan) for an mcentral or a large object: when no run
  /// of free pages fits, the empty spans parked on the mcentrals and the large spans binned by
  /// the threads (LargeBins) go back first, and the heap grows only if that did not make room.
  /// `collected`: for the GC mode (never registered as a root span: MHeap.forEachSpanLocked).
  func allocSpanReclaiming(_ npages: Int, spanclass spc: SpanClass, alignPages: Int = 1,
                           collected: Bool = false) -> SpanPtr? {
    if let s = allocSpan(npages, spanclass: spc, alignPages: alignPages, grow: false, collected: collected) { return s }
    if reclaim() + takeBackBins() > 0,
       let s = allocSpan(npages, spanclass: spc, alignPages: alignPages, grow: false, collected: collected) { return s }
    return allocSpan(npages, spanclass: spc, alignPages: alignPages, grow: true, collected: collected)
  }
}
