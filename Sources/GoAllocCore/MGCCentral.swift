// MGCCentral: the collected classes' mcentrals (Go's mcentral with its partial and full span
// sets): where a collected span waits while no GC cache holds it, by shape, room and sweep state.
//
// Each shape (size class x noscan, MSpan.spanclass; shapes 0 and 1 are large objects) has four
// lists, under the lock of its collected MCentral (`h.central(shape | collected)`, which
// `lockAll` takes, so a stopped world sees them whole):
//   partial[2]  spans with free slots (what a GC cache refills from)
//   full[2]     spans without, or not to be offered before a sweep (large objects: all)
// indexed by sweepgen parity as Go's partialSwept/partialUnswept: with h = GCState.sweepgen,
// index (h / 2) & 1 holds swept spans (sweepgen == h), the other one unswept spans (h - 2). The
// flip at the end of a mark (h += 2, world stopped) turns every swept list into an unswept one
// without touching a span; sweeping (MGCSweep) moves them back one by one, and sweep
// termination empties the unswept lists before the next flip.
// A GC cache refills (`gcCacheSpan`) from a swept partial span, else by sweeping its own shape's
// unswept spans (lazy sweep, at most `spanBudget` of them), else from the page heap, after
// the proportional sweep's due and, while spans are unswept, a sweep that frees as many pages
// as it needs (Go's mheap reclaim), so lazy sweeping does not grow the heap.
// Invariants: a collected in-use small span is on exactly one list, or held by one GC cache (a
// slot, or its `handoff` word while it moves between the cache and a list: both changed inside
// the cache's critical section or under the central lock, so a stopped world finds every span
// that cannot be on a list), or on none for an instant while whoever took it off frees it (then
// nothing in it is allocated, so a mark never marks it). A large collected span is on a full
// list from its allocation to its free. MSpan.list says which list (`gcListCode`); `listed`,
// `listedPages` count the lists' spans and `unswept` those on unswept lists (central locks,
// atomically: several centrals change them at once). A partial span has a free slot.
import CGoAllocShim

/// MSpan.list of a collected span on a GC list: 2 + 2 x full + parity (0: on none).
@inline(__always) func gcListCode(full: Bool, parity: Int) -> UInt8 { UInt8(2 + (full ? 2 : 0) + parity) }

extension UnsafeMutablePointer where Pointee == GCState {
  /// Shapes with GC lists: every size class, scan and noscan.
  static var gcShapes: Int { numSizeClasses * 2 }
  /// Unswept spans a refill sweeps at most before it takes fresh pages (Go's spanBudget).
  static var spanBudget: Int { 100 }

  /// The index of the swept lists for sweepgen sg (the unswept ones: 1 - it).
  @inline(__always) func sweptParity(_ sg: UInt32) -> Int { Int((sg >> 1) & 1) }

  @inline(__always) func listHead(_ shape: Int, full: Bool, parity: Int) -> UnsafeMutablePointer<SpanPtr?> {
    pointee.spanSets + (shape &* 4 &+ (full ? 2 : 0) &+ parity)
  }

  /// The collected MCentral whose lock guards shape's lists.
  @inline(__always) func gcCentral(_ h: UnsafeMutablePointer<MHeap>, _ shape: Int) -> UnsafeMutablePointer<MCentral> {
    h.central(SpanClass(index: shape | SpanClass.collectedBit))
  }

  /// Puts s (swept for the current sweepgen) on its shape's swept list. Central lock held.
  func gcListPush(_ s: SpanPtr, full: Bool) {
    let parity = sweptParity(pointee.sweepgen)
    let head = listHead(Int(s.pointee.spanclass), full: full, parity: parity)
    s.pointee.prev = nil
    s.pointee.next = head.pointee
    head.pointee?.pointee.prev = s
    head.pointee = s
    s.pointee.list = gcListCode(full: full, parity: parity)
    atomicAdd64(&pointee.listed, 1)
    atomicAdd64(&pointee.listedPages, UInt64(s.pointee.npages))
  }

  /// Takes s off the list it is on (MSpan.list). Central lock held.
  func gcListRemove(_ s: SpanPtr) {
    let code = Int(s.pointee.list) - 2
    let parity = code & 1, full = code >= 2
    let head = listHead(Int(s.pointee.spanclass), full: full, parity: parity)
    if let p = s.pointee.prev { p.pointee.next = s.pointee.next } else { head.pointee = s.pointee.next }
    s.pointee.next?.pointee.prev = s.pointee.prev
    s.pointee.next = nil
    s.pointee.prev = nil
    s.pointee.list = listNone
    atomicAdd64(&pointee.listed, 0 &- 1)
    atomicAdd64(&pointee.listedPages, 0 &- UInt64(s.pointee.npages))
    if parity != sweptParity(pointee.sweepgen) { atomicAdd64(&pointee.unswept, 0 &- 1) }
  }

  /// The first span of shape's unswept partial list, else of its unswept full list. Central
  /// lock held (or the world stopped).
  @inline(__always) func unsweptHead(_ shape: Int) -> SpanPtr? {
    let up = 1 &- sweptParity(pointee.sweepgen)
    return listHead(shape, full: false, parity: up).pointee ?? listHead(shape, full: true, parity: up).pointee
  }
}

// MARK: GC caches and the lists

/// A collected span of class spc with free slots for the GC cache with owner tag `owner`: a
/// swept partial span, else one of the shape's unswept spans swept now, else fresh pages. Stores
/// it in the cache's `handoff` word (the caller moves it to its slot); its sweepgen is h + 3
/// (swept, then cached). heapLive grows by its free bytes.
func gcCacheSpan(_ h: UnsafeMutablePointer<MHeap>, _ gc: UnsafeMutablePointer<GCState>, owner: UInt,
                 handoff: UnsafeMutablePointer<SpanPtr?>, _ spc: SpanClass) -> SpanPtr? {
  let shape = spc.shape.index
  let npages = gcSpanPages(spc.sizeclass)
  gc.gcDeductSweepCredit(h, UInt64(npages * pageSize))
  let central = h.central(spc)
  lockAcquire(&central.pointee.lock)
  var got = gc.listHead(shape, full: false, parity: gc.sweptParity(gc.pointee.sweepgen)).pointee
  if let s = got { gc.gcListRemove(s) } else { got = gc.gcSweepForRefill(h, shape) }
  if let s = got { gcTakeSpan(gc, owner, handoff, s) }
  lockRelease(&central.pointee.lock)
  if got == nil {
    if atomicLoad64(&gc.pointee.unswept) > 0 { gc.gcReclaim(h, npages) }
    guard let s = h.allocSpanReclaiming(npages, spanclass: spc.shape, collected: true) else { return nil }
    // Collected from here on, under the lock a stop waits for: a stopped world sees it either
    // as a fresh malloc span with nothing in it, or as this cache's handoff.
    lockAcquire(&central.pointee.lock)
    s.pointee.collected = 1
    gcTakeSpan(gc, owner, handoff, s)
    lockRelease(&central.pointee.lock)
    got = s
  }
  let s = got.unsafelyUnwrapped
  atomicAdd64(&gc.pointee.heapLive, UInt64(s.pointee.nelems - s.pointee.allocCount) &* UInt64(s.pointee.elemsize))
  return s
}

/// The markFrom of the span in a GC cache's handoff word (MGCConcurrent): the word after it
/// (GCCache's layout: handoffFromWord follows handoffWord).
@inline(__always) func gcHandoffFrom(_ handoff: UnsafeMutablePointer<SpanPtr?>) -> UnsafeMutablePointer<Int> {
  UnsafeMutableRawPointer(handoff).advanced(by: 8).assumingMemoryBound(to: Int.self)
}

/// s (swept, on no list) becomes a GC cache's. Central lock held.
@inline(__always) func gcTakeSpan(_ gc: UnsafeMutablePointer<GCState>, _ owner: UInt,
                                  _ handoff: UnsafeMutablePointer<SpanPtr?>, _ s: SpanPtr) {
  atomicStore32(&s.pointee.sweepgen, gc.pointee.sweepgen &+ 3)
  atomicStoreRelaxedUInt(&s.pointee.owner, owner)
  gcHandoffFrom(handoff).pointee = s.pointee.freeindex  // (MGCConcurrent: markFrom)
  handoff.pointee = s
}

/// A GC cache lets span s go (exhausted, or the thread is leaving; s is in the cache's `handoff`
/// word, cleared here): onto its swept partial or full list, or back to the page heap when
/// nothing in it is allocated. Its free slots leave heapLive. handoff nil: a span of no cache
/// (a dead thread's, in a fork child).
func gcUncacheSpan(_ h: UnsafeMutablePointer<MHeap>, _ gc: UnsafeMutablePointer<GCState>,
                   handoff: UnsafeMutablePointer<SpanPtr?>?, _ s: SpanPtr) {
  let central = gc.gcCentral(h, Int(s.pointee.spanclass))
  lockAcquire(&central.pointee.lock)
  atomicStoreRelaxedUInt(&s.pointee.owner, 0)
  atomicStore32(&s.pointee.sweepgen, gc.pointee.sweepgen)
  let free = s.pointee.nelems - s.pointee.allocCount
  // During a concurrent mark (the phase changes only under every central lock): what this cache
  // allocated from s since the mark began is black; and s is not freed even when empty (a
  // marker may be reading it: MGCConcurrent).
  let marking = atomicLoad32(&gc.pointee.phase) == GCPhase.mark.rawValue
  if marking, let handoff { gc.gcBlacken(s, from: gcHandoffFrom(handoff).pointee) }
  let empty = s.pointee.allocCount == 0 && !marking
  if !empty { gc.gcListPush(s, full: free == 0) }
  handoff?.pointee = nil
  lockRelease(&central.pointee.lock)
  if free > 0 {
    let bytes = UInt64(free) &* UInt64(s.pointee.elemsize)
    let live = atomicLoad64(&gc.pointee.heapLive)
    atomicStore64(&gc.pointee.heapLive, live > bytes ? live - bytes : 0)  // (a race only blurs the pacer)
  }
  if empty { h.freeCollectedSpan(s) }
}

extension UnsafeMutablePointer where Pointee == MHeap {
  /// Gives a collected span nothing holds back to the page heap; it stops being collected under
  /// the heap lock (so a stopped world sees it either collected with nothing allocated, or gone).
  func freeCollectedSpan(_ s: SpanPtr) {
    lockAcquire(&pointee.lock)
    s.pointee.collected = 0
    freeSpanLocked(s)
    lockRelease(&pointee.lock)
  }
}
