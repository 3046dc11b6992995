// MCache: the per-thread cache of spans (Go's per-P mcache). No locks, no atomic
// read-modify-write on the allocation fast path: the thread owns one current span per span class
// and takes slots from its allocCache.
//
// Layout (one block from the mheap's cachealloc, reached in one TLS load):
//   [0, 1152)      alloc[SpanClass.count]: current span per span class (emptySpan when none)
//   [1152, 9952)   per span class one 64-byte ClassGroup: its FreeList (head, key, room, link
//                  multipliers), mallocs, frees, requested bytes; then tiny objects/frees, tiny
//                  blocks/frees
//   then           per span class: ready list head, ready count; sparse list head (MemoryLimit)
//   then           MCacheHeader: heap, arena index, tiny block state; then MCacheLink
//   then           SecureMode's quarantine; then LargeBins (freed large spans of up to 256 KiB,
//                  by page count; LargeBins.swift)
// `alloc` sits at offset 0 so the fast path indexes the cache pointer directly. A malloc or free
// that the FreeList serves touches one line of the cache (the class's group) and the object.
//
// A span the cache has exhausted floats (owned by nobody, as Go's full spans) but stays at home
// here (MSpan.home): this thread's frees of its objects still go onto its lists. The first free
// that reaches its bitmaps claims it: into this thread's *ready* list if it is at home here (a
// circular list per class, owner only, linked through MSpan.onext/oprev, used oldest first, so
// a span has gathered frees from the whole working set by the time it is used again), else
// onto the mcentral's partial list, so a thread that mostly frees (a consumer) does not hoard a
// producer's memory. Nobody holds a full span, so memory freed by other threads is never stuck
// with an idle thread. A ready span whose objects this thread has all freed goes
// back to the mcentral (the mheap can reuse its pages), unless the thread filled it itself and it
// is the class's only ready span.
// Refill order: the ready list (passing over up to `readySkips` spans with under 1/8 of their
// slots free, except near the memory limit), then the sparse list (spans at least 1/4 free,
// filled only near the memory limit: MemoryLimit.swift), then the mcentral.
// `releaseAll` hands every span back (thread exit, fork child), binned large ones included;
// `destroy` also flushes the counters into the heap.
//
// Invariants: alloc[spc] is emptySpan or a span of class spc with place placeCurrent; every span
// on a ready list has place placeReady, on a sparse list placeSparse, and readyCounts counts
// both lists; all of them have CACHED set and owner == this cache (0 for the tiny class); the counters are written only by the owning thread (atomically visible,
// read by MemStats).
//
// See Malloc.swift for an overview of the allocator.
import CGoAllocShim

/// The words of a span class's 64-byte group in an MCache: a malloc or free of the class touches
/// this one cache line. `head`, `key`, `room`, `encode` and `decode` are the class's FreeList
/// (see FreeList.swift: what must be trusted is kept here, not in the freed objects); the
/// counters are the class's statistics, written by the owning thread only.
/// A malloc that pops the list counts nothing: the list's flow tells how many did (pops =
/// pushes + objects listed otherwise - objects flushed - the length; MemStats adds them up).
enum ClassGroup {
  static let head = 0       // the most recently freed object, or 0 (empty list)
  static let key = 1        // freeKey: word 1 of a listed object
  static let mallocs = 2    // mallocs not served by the list
  static let requested = 3  // bytes requested by those (slot bytes minus these = size-class rounding)
  static let pushes = 4     // frees onto the list (frees into the bitmaps: MCache.freesIdx)
  static let room = 5       // objects the list can still take (its limit minus its length)
  static let encode = 6     // odd multiplier: a listed object's word 0 = next * encode
  static let decode = 7     // its inverse mod 2^64: next = word 0 * decode
  static let words = 8
}

public struct MCacheHeader {
  var heap: UnsafeMutablePointer<MHeap>
  var arenas: UnsafeMutableRawPointer
  var tiny: UInt = 0           // current tiny block, or 0
  var tinyoffset: Int = 0      // bytes used in it
  var tinySpan: SpanPtr? = nil // span of the tiny block
  var tid: Int = 0
  var refills: Int = 0         // for GOALLOC_DEBUG=check=1
  var nextSample: Int = 0      // heap profile: bytes until the next sample
  var secure = false           // SecureMode: lists biased, quarantine in use
  var rng: UInt64 = 0          // SecureMode's random numbers
  var gc: UnsafeMutableRawPointer? = nil        // the thread's GC cache (MGC.swift), once it used one
  var gcThread: UnsafeMutableRawPointer? = nil  // its goalloc_gc_thread (stw.c): set for the global heap's caches
  var lean = false             // MemoryLimit: near the heap's memory limit (lists closed)
}

public struct MCacheLink {
  var next: UnsafeMutableRawPointer? = nil
  var prev: UnsafeMutableRawPointer? = nil
}

@frozen public struct MCache {
  @usableFromInline let raw: UnsafeMutableRawPointer
  @inline(__always) @usableFromInline init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }

  /// Where the class groups start: right after `alloc` (SpanClass.count pointers, rounded up to a
  /// cache line). A literal, so the fast paths fold it into their addressing (checked against
  /// the formula by the tests: `layoutIsConsistent`).
  @usableFromInline static let countersOffset = 1152
  /// FreeList's mask of valid links, in the padding after `alloc` (a literal, as above).
  @usableFromInline static let linkMaskOffset = 1096
  /// Pool.swift's word: the byte offset of this thread's local in every pool (0: no slot yet;
  /// negative: locked access only). Next to linkMask, inside what the idle cache covers (there
  /// it reads 0), so a pool's fast path reads the TLS word with no null or idle test.
  @usableFromInline static let poolOffsetOffset = 1104
  @inline(__always) @usableFromInline var poolOffset: Int {
    get { (raw + MCache.poolOffsetOffset).load(as: Int.self) }
    nonmutating set { (raw + MCache.poolOffsetOffset).storeBytes(of: newValue, as: Int.self) }
  }
  /// Per span class one 64-byte group (ClassGroup; a malloc or free of the class touches one
  /// line of the cache); then the tiny allocator's four counters.
  @inline(__always) @usableFromInline static func listIdx(_ spc: SpanClass) -> Int { spc.index &* ClassGroup.words }
  @inline(__always) @usableFromInline static func mallocsIdx(_ spc: SpanClass) -> Int { listIdx(spc) &+ ClassGroup.mallocs }

  @inline(__always) @usableFromInline static func pushesIdx(_ spc: SpanClass) -> Int { listIdx(spc) &+ ClassGroup.pushes }
  static let tinyAllocsIdx = ClassGroup.words * SpanClass.count
  static let tinyFreesIdx = tinyAllocsIdx + 1
  static let tinyBlockAllocsIdx = tinyAllocsIdx + 2
  static let tinyBlockFreesIdx = tinyAllocsIdx + 3
  @inline(__always) @usableFromInline static func requestedIdx(_ spc: SpanClass) -> Int { listIdx(spc) &+ ClassGroup.requested }
  /// Per span class, off the fast paths' lines: the frees that went into the bitmaps (not onto
  /// the list), and the objects listed other than by a free minus those flushed off the list
  /// (wrapping).
  static let sideIdx = tinyAllocsIdx + 8
  @inline(__always) @usableFromInline static func freesIdx(_ spc: SpanClass) -> Int { sideIdx &+ spc.index &* 2 }
  @inline(__always) static func listedOtherIdx(_ spc: SpanClass) -> Int { sideIdx &+ spc.index &* 2 &+ 1 }
  static let counterWords = sideIdx + 2 * SpanClass.count
  /// Is counter word i one of the statistics that add up when a cache dies? (A list's pushes
  /// and other listings are folded into mallocs and frees then: `abandon`.)
  static func isStatistic(_ i: Int) -> Bool {
    if i < tinyAllocsIdx { let w = i % ClassGroup.words; return w == ClassGroup.mallocs || w == ClassGroup.requested }
    if i < sideIdx { return true }
    return (i - sideIdx) & 1 == 0
  }
  /// The layout's invariants that the fast paths rely on (a test checks them).
  static var layoutIsConsistent: Bool {
    countersOffset == roundUp(SpanClass.count * MemoryLayout<SpanPtr>.stride, 64)
      && ClassGroup.words * 8 == 64 && countersOffset % 64 == 0 && countersOffset == cacheGroupsOffset
      && linkMaskOffset >= SpanClass.count * MemoryLayout<SpanPtr>.stride && linkMaskOffset + 8 <= countersOffset
      && poolOffsetOffset == linkMaskOffset + 8 && poolOffsetOffset + 8 <= countersOffset
  }
  /// Per span class: the ready list head and length.
  static let readyOffset = roundUp(countersOffset + counterWords * 8, 64)
  static let readyCountOffset = readyOffset + roundUp(SpanClass.count * 8, 64)
  /// Ready spans with under 1/8 of their slots free that a refill passes over (to the tail) before
  /// taking a span from the mcentral: the heap then runs ~88% full instead of 100%, and a refill
  /// yields many slots instead of one or two. None near the memory limit (MemoryLimit.swift).
  static let readySkips = 4
  /// Per span class: the sparse list head (MemoryLimit.swift).
  static let sparseOffset = roundUp(readyCountOffset + SpanClass.count * 4, 64)
  static let headerOffset = roundUp(sparseOffset + SpanClass.count * 8, 64)
  static let linkOffset = roundUp(headerOffset + MemoryLayout<MCacheHeader>.stride, 64)
  /// SecureMode's quarantine and shuffle scratch (untouched unless GOALLOC_SECURE=1).
  static let secureOffset = roundUp(linkOffset + MemoryLayout<MCacheLink>.stride, 64)
  /// LargeBins: this thread's freed large spans by page count (LargeBins.swift).
  static let binsOffset = roundUp(secureOffset + 2 * quarantineSlots * 8, 64)
  static let bytes = roundUp(binsOffset + LargeBins.bytes, 64)

  @inline(__always) @usableFromInline var alloc: UnsafeMutablePointer<SpanPtr> {
    raw.assumingMemoryBound(to: SpanPtr.self)
  }
  @inline(__always) @usableFromInline var counters: UnsafeMutablePointer<UInt64> {
    (raw + MCache.countersOffset).assumingMemoryBound(to: UInt64.self)
  }
  @inline(__always) @usableFromInline func countMalloc(_ spc: SpanClass, requested: Int) {
    counterBump(counters + MCache.mallocsIdx(spc))
    counterBump(counters + MCache.requestedIdx(spc), UInt64(truncatingIfNeeded: requested))
  }
  /// A free onto list l (a class group): counted as a push.
  @inline(__always) @usableFromInline static func countListFree(_ l: UnsafeMutablePointer<UInt>) {
    l.withMemoryRebound(to: UInt64.self, capacity: ClassGroup.words) { counterBump($0 + ClassGroup.pushes) }
  }
  /// n objects went onto (n > 0) or off (n < 0) class spc's list without a malloc or free.
  @inline(__always) func countListedOther(_ spc: SpanClass, _ n: Int) {
    counterBump(counters + MCache.listedOtherIdx(spc), UInt64(bitPattern: Int64(n)))
  }
  /// Mallocs the list of class spc served, and frees it took, so far (see ClassGroup). Read by
  /// other threads: a torn view counts no negative pops.
  func listFlow(_ spc: SpanClass) -> (pops: UInt64, pushes: UInt64) {
    if !MCache.hasList(spc) { return (0, 0) }
    let pushes = atomicLoadRelaxed64(counters + MCache.pushesIdx(spc))
    let other = Int64(bitPattern: atomicLoadRelaxed64(counters + MCache.listedOtherIdx(spc)))
    let pops = Int64(bitPattern: pushes) &+ other &- Int64(listLength(spc))
    return (pops > 0 ? UInt64(pops) : 0, pushes)
  }
  /// A slot p of class spc was handed out for a request of `size` bytes: counts it and, when
  /// `clear`, zeroes the slot (every path of malloc ends here).
  @inline(__always) @usableFromInline func mallocDone(_ spc: SpanClass, _ p: UInt, requested size: Int, clear: Bool) {
    countMalloc(spc, requested: size)
    if clear { MCache.zeroSlot(spc, p) }
  }
  /// Zeroes slot p of small class spc.
  @inline(__always) @usableFromInline static func zeroSlot(_ spc: SpanClass, _ p: UInt) {
    goalloc_memset(UnsafeMutableRawPointer(bitPattern: p), 0, classSize(spc.smallSizeclass))
  }
  @inline(__always) @usableFromInline func countFree(_ spc: SpanClass) { counterBump(counters + MCache.freesIdx(spc)) }
  @inline(__always) var header: UnsafeMutablePointer<MCacheHeader> {
    (raw + MCache.headerOffset).assumingMemoryBound(to: MCacheHeader.self)
  }
  /// List links, written by other threads under the caches lock (kept apart from the header).
  @inline(__always) var link: UnsafeMutablePointer<MCacheLink> {
    (raw + MCache.linkOffset).assumingMemoryBound(to: MCacheLink.self)
  }
  @inline(__always) @usableFromInline var heap: UnsafeMutablePointer<MHeap> { header.pointee.heap }

  /// A new cache for heap `h`, linked into its list; nil when out of memory.
  public static func create(_ h: UnsafeMutablePointer<MHeap>) -> MCache? {
    lockAcquire(&h.pointee.lock)
    let m = h.pointee.cachealloc.alloc(&h.pointee.persistent)
    if h.pointee.binThief == nil { h.pointee.binThief = stealThreadBins }  // (LargeBins)
    lockRelease(&h.pointee.lock)
    guard let raw = m else { return nil }
    let c = MCache(raw)
    for i in 0..<SpanClass.count { c.alloc[i] = h.pointee.emptySpan }
    c.header.initialize(to: MCacheHeader(heap: h, arenas: UnsafeMutableRawPointer(h.pointee.arenas)))
    c.link.initialize(to: MCacheLink())
    c.header.pointee.tid = goalloc_gettid()
    c.initLists()
    // LargeBins' handshake needs membarrier(2); without it the owner's takes always use CASes.
    c.binWords[LargeBins.revoke] = goalloc_membarrier_ok() != 0 ? 0 : LargeBins.revokeAlways
    c.binWords[LargeBins.busy] = 0
    c.poolOffset = 0
    if atomicLoad32(&h.pointee.secure) != 0 { c.becomeSecure() }
    let list = h.pointee.caches
    lockAcquire(&list.pointee.lock)
    c.link.pointee.next = list.pointee.head
    if let n = list.pointee.head { MCache(n).link.pointee.prev = raw }
    list.pointee.head = raw
    list.pointee.count += 1
    lockRelease(&list.pointee.lock)
    return c
  }

  /// Hands every span back, flushes the counters into the heap and frees the cache itself.
  public func destroy() {
    releaseAll()
    abandon()
    let h = heap
    lockAcquire(&h.pointee.lock)
    h.pointee.cachealloc.free(raw)
    lockRelease(&h.pointee.lock)
  }

  /// Unlinks the cache of a thread that no longer exists (fork child) without touching its spans.
  func abandon() {
    let h = heap
    let list = h.pointee.caches
    lockAcquire(&list.pointee.lock)
    if let p = link.pointee.prev { MCache(p).link.pointee.next = link.pointee.next }
    else { list.pointee.head = link.pointee.next }
    if let n = link.pointee.next { MCache(n).link.pointee.prev = link.pointee.prev }
    for i in 0..<MCache.counterWords where MCache.isStatistic(i) {
      h.pointee.flushed[i] &+= atomicLoadRelaxed64(counters + i)
    }
    for i in MCache.listClasses {
      let spc = SpanClass(index: i), flow = listFlow(spc)
      h.pointee.flushed[MCache.mallocsIdx(spc)] &+= flow.pops
      h.pointee.flushed[MCache.freesIdx(spc)] &+= flow.pushes
      // The pops' requested bytes, at the average of the counted mallocs (an estimate either way).
      let m = atomicLoadRelaxed64(counters + MCache.mallocsIdx(spc))
      if m > 0 {
        let r = atomicLoadRelaxed64(counters + MCache.requestedIdx(spc))
        h.pointee.flushed[MCache.requestedIdx(spc)] &+= UInt64(Double(r) / Double(m) * Double(flow.pops))
      }
    }
    flushBinStats()
    list.pointee.count -= 1
    lockRelease(&list.pointee.lock)
  }

  /// Returns every span this cache owns to its mcentral (binned large ones to the page heap)
  /// and drops the tiny block.
  public func releaseAll() {
    flushLists()
    dropTinyHold()
    releaseBins()
    let h = heap
    let empty = h.pointee.emptySpan
    for i in 0..<SpanClass.count {
      let s = alloc[i]
      if s != empty {
        alloc[i] = empty
        h.central(SpanClass(index: i)).uncacheSpan(h, s)
      }
      releaseList(readyHeads + i)
      releaseList(sparseHeads + i)
      readyCounts[i] = 0
    }
  }

  func releaseList(_ head: UnsafeMutablePointer<SpanPtr?>) {
    let h = heap
    while let s = head.pointee {
      listRemove(head, s)
      h.central(s.spanClass).uncacheSpan(h, s)
    }
  }

  /// The value of MSpan.owner (and home) for a span of class spc this cache owns: the cache for
  /// classes with lists; the cache with bit 0 set for 8 B slots; 0 for tiny blocks. Frees of
  /// tiny and 8 B objects then always take the full path, and the free fast path needs no class
  /// check (home == cache implies a class with lists).
  @inline(__always) func ownerTag(_ spc: SpanClass) -> UInt {
    spc.isTiny ? 0 : MCache.hasList(spc) ? UInt(bitPattern: raw) : UInt(bitPattern: raw) | 1
  }
  /// MSpan.home for owner tag `tag`: never 0 (`spanNoHome` for tiny spans), so a thread without
  /// a cache (a null TLS word) never matches it and the free fast path needs no null test.
  @inline(__always) static func homeTag(_ tag: UInt) -> UInt { tag == 0 ? spanNoHome : tag }

  // MARK: ready lists (owner thread only)

  @inline(__always) var readyHeads: UnsafeMutablePointer<SpanPtr?> {
    (raw + MCache.readyOffset).assumingMemoryBound(to: SpanPtr?.self)
  }
  @inline(__always) var readyCounts: UnsafeMutablePointer<UInt32> {
    (raw + MCache.readyCountOffset).assumingMemoryBound(to: UInt32.self)
  }

  /// Appends s at the tail of the circular list at `head`.
  @inline(__always) func listAppend(_ head: UnsafeMutablePointer<SpanPtr?>, _ s: SpanPtr) {
    if let h = head.pointee {
      let t = h.pointee.oprev.unsafelyUnwrapped  // Safe: a circular list's head has a prev.
      s.pointee.onext = h
      s.pointee.oprev = t
      t.pointee.onext = s
      h.pointee.oprev = s
    } else {
      s.pointee.onext = s
      s.pointee.oprev = s
      head.pointee = s
    }
  }

  @inline(__always) func listRemove(_ head: UnsafeMutablePointer<SpanPtr?>, _ s: SpanPtr) {
    let n = s.pointee.onext.unsafelyUnwrapped, p = s.pointee.oprev.unsafelyUnwrapped
    if n == s {
      head.pointee = nil
    } else {
      p.pointee.onext = n
      n.pointee.oprev = p
      if head.pointee == s { head.pointee = n }
    }
    s.pointee.onext = nil
    s.pointee.oprev = nil
    s.pointee.place = placeCurrent
  }

  /// Is span s at home in this cache (it owns s, or did last and nobody took it since)? Its
  /// frees then go onto this cache's lists, and a free that finds s floating claims it into the
  /// ready list.
  @inline(__always) func isHome(_ s: SpanPtr) -> Bool {
    atomicLoadRelaxedUInt(&s.pointee.home) & ~1 == UInt(bitPattern: raw)
  }
  /// Does this thread's free of an object of span s (a class with lists) go back to the span
  /// rather than onto this cache's list? Another thread's span, objects under `migrateMinSize`.
  @inline(__always) func goesHome(_ s: SpanPtr) -> Bool {
    !isHome(s) && s.pointee.elemsize < migrateMinSize
  }
  /// This cache takes span s of class spc (from the mcentral, or claimed from floating).
  @inline(__always) func take(_ spc: SpanClass, _ s: SpanPtr) {
    let tag = ownerTag(spc)
    atomicStoreRelaxedUInt(&s.pointee.owner, tag)
    atomicStoreRelaxedUInt(&s.pointee.home, MCache.homeTag(tag))
  }
  /// s was claimed from floating (CACHED set) by this thread's free.
  func addReady(_ spc: SpanClass, _ s: SpanPtr) {
    take(spc, s)
    listAppend(readyHeads + spc.index, s)
    s.pointee.place = placeReady
    readyCounts[spc.index] &+= 1
  }

  /// This thread freed the last object of s, one of its ready (or sparse) spans: it goes back to
  /// the mcentral, unless it is a span this thread filled and the class's only ready span (this
  /// thread allocates there: its next refill would fetch it straight back). Another thread's
  /// span always goes back: a thread that only frees (a consumer) keeps none of its producer's;
  /// so does every span of a lean cache (near the memory limit).
  @inline(never)
  func readySpanEmptied(_ s: SpanPtr) {
    let i = Int(s.pointee.spanclass)
    if readyCounts[i] > 1 || !isHome(s) || header.pointee.lean {
      listRemove(s.pointee.place == placeSparse ? sparseHeads + i : readyHeads + i, s)
      readyCounts[i] &-= 1
      heap.central(s.spanClass).uncacheSpan(heap, s)
    }
  }

  // MARK: frees into the bitmaps (list flushes, 8 B slots, tiny blocks, threads without a cache)

  /// Does this cache own span s (its current span of a small, non-tiny class, or a ready one)?
  @inline(__always) func owns(_ s: SpanPtr) -> Bool {
    atomicLoadRelaxedUInt(&s.pointee.owner) & ~1 == UInt(bitPattern: raw)
  }

  /// Records the free of slot idx of a span this cache owns in its own bitmap, no atomics; the
  /// caller counts it. False (nothing recorded) when the slot is not allocated or already
  /// freed: a double free.
  @inline(__always)
  func ownerFree(_ s: SpanPtr, _ idx: Int) -> Bool {
    if !s.isUserHeld(idx) { return false }
    ownerFreeChecked(s, idx)
    return true
  }

  /// ownerFree of a slot known to be held (a flushed list object): the bit, `localFreed`, and a
  /// ready span this free empties may go back to the mcentral.
  @inline(__always)
  func ownerFreeChecked(_ s: SpanPtr, _ idx: Int) {
    let moves = ownerFreeMovesSpan(s)
    s.localWord(idx &>> 6).pointee |= 1 &<< UInt64(idx & 63)
    counterBump32(&s.pointee.localFreed)
    if moves { readySpanEmptied(s) }
  }

  /// ownerFree of the slots of `mask` in bitmap word w at once (a list flush's run); returns the
  /// slots that were not held (double frees: nothing recorded for them).
  @inline(__always)
  func ownerFreeRun(_ s: SpanPtr, _ w: Int, _ mask: UInt64) -> UInt64 {
    let held = s.heldMask(w, mask)
    if held != 0 {
      let n = held.nonzeroBitCount
      let moves = ownerFreeMovesSpan(s, n)
      s.localWord(w).pointee |= held
      counterBump32(&s.pointee.localFreed, UInt32(truncatingIfNeeded: n))
      if moves { readySpanEmptied(s) }
    }
    return mask & ~held
  }

  /// Whether the owner's next n frees into s empty one of its ready or sparse spans (the full path
  /// handles it).
  /// Other threads' frees count by words here (at most their number): a span they helped empty may
  /// stay ready until it is used or the thread exits.
  @inline(__always)
  func ownerFreeMovesSpan(_ s: SpanPtr, _ n: Int = 1) -> Bool {
    s.pointee.place != placeCurrent
      && Int(truncatingIfNeeded: s.pointee.localFreed) &+ n &+ max(0, s.pendingFrees) >= s.pointee.allocCount
  }

  /// Records the free of slot idx (address a) of small span s by a thread that does not own it
  /// (cache c, or nil for a thread without one). Returns false (after reporting) on a double free.
  /// A span this free finds floating is claimed: into c's ready list if c filled it (no lock),
  /// else onto its mcentral's partial list, where any thread's refill finds it: a thread does not
  /// hoard the spans of others (holding up to 16 per class made xmalloc's peak RSS 25.9 MiB
  /// against 18.8). With `batch`, such spans are linked there (through `next`) for the caller to
  /// queue with one lock.
  @inline(__always) @discardableResult
  static func freeRemote(_ h: UnsafeMutablePointer<MHeap>, _ c: MCache?, _ s: SpanPtr, _ idx: Int, _ a: UInt,
                         op: StaticString, batch: UnsafeMutablePointer<SpanPtr?>? = nil) -> Bool {
    switch s.markRemoteFree(idx) {
    case .recorded: return true
    case .doubleFree:
      h.badFree(op, "double free detected", a)
      return false
    case .foundFloating:
      claimFloating(h, c, s, batch: batch)
      return true
    }
  }

  @inline(never)
  static func claimFloating(_ h: UnsafeMutablePointer<MHeap>, _ c: MCache?, _ s: SpanPtr,
                            batch: UnsafeMutablePointer<SpanPtr?>?) {
    if let c, c.heap == h && c.isHome(s) {
      if s.claim(fsCached) {
        c.addReady(s.spanClass, s)
        // Fold what is pending now (a flush may have sent a whole word of slots in one run), so
        // the owner's count of frees (ownerFreeMovesSpan) is exact and an emptied span goes back.
        s.fold(h)
        if s.pointee.allocCount == 0 { c.readySpanEmptied(s) }
      }
      return
    }
    if !s.claim(fsPartial) { return }
    if let batch {
      s.pointee.next = batch.pointee
      batch.pointee = s
    } else {
      h.central(s.spanClass).queuePartial(s)
    }
  }

  /// Exchanges the exhausted span of class spc for one with free slots: from this thread's ready
  /// list (no lock), else its sparse list, else from the mcentral. The exhausted span floats.
  /// Nil: out of memory.
  @inline(never)
  func refill(_ spc: SpanClass) -> SpanPtr? {
    followLimit()
    let h = heap
    let central = h.central(spc)
    let old = alloc[spc.index]
    if old != h.pointee.emptySpan {
      alloc[spc.index] = h.pointee.emptySpan
      central.uncacheSpan(h, old)
    }
    let ready = readyHeads + spc.index
    var skipped = 0
    while let s = ready.pointee {
      if readyCounts[spc.index] > 1 && !header.pointee.lean
          && s.pointee.nelems &- s.pointee.allocCount &+ Int(truncatingIfNeeded: s.pointee.localFreed)
             &+ s.remoteFreeCount < s.pointee.nelems &>> 3 {
        // Few frees yet: let it gather more at the tail. (Refilling from spans with a slot or two
        // free means a fold and a list move every few allocations.)
        ready.pointee = s.pointee.onext
        skipped += 1
        if skipped == MCache.readySkips { break }
        continue
      }
      listRemove(ready, s)
      readyCounts[spc.index] &-= 1
      s.fold(h)
      if s.pointee.allocCount < s.pointee.nelems {
        alloc[spc.index] = s
        return s
      }
      central.release(s)  // only late-detected double frees leave it full
    }
    if sparseHeads[spc.index] != nil, let s = takeSparse(spc) {
      alloc[spc.index] = s
      return s
    }
    guard let s = central.cacheSpan(h) else { return nil }
    take(spc, s)
    alloc[spc.index] = s
    if _slowPath(h.debugFlags & UInt32(GOALLOC_DEBUG_CHECK) != 0) {
      header.pointee.refills &+= 1
      // The check lives in the top tier (Invariants); the process installs it (Process).
      if header.pointee.refills % 256 == 0, let check = h.pointee.periodicCheck { check(raw) }
    }
    return s
  }

  /// The next free slot of span class spc, refilling as needed; 0 when out of memory.
  @inline(never) @usableFromInline
  func nextFree(_ spc: SpanClass) -> UInt {
    var s = alloc[spc.index]
    if let p = s.nextFreeFast() {
      MCache.clearFreeMark(spc, p)
      return p
    }
    while true {
      let i = s.nextFreeIndex()
      if i < s.pointee.nelems {
        s.pointee.allocCount += 1
        let p = s.pointee.startAddr + UInt(i * s.pointee.elemsize)
        s.raiseHighWater(p)
        MCache.clearFreeMark(spc, p)
        return p
      }
      if s != heap.pointee.emptySpan && s.hasUnfoldedFrees && s.fold(heap) > 0 { continue }
      guard let ns = refill(spc) else { return 0 }
      s = ns
    }
  }

  // MARK: tiny allocator

  /// Go's tiny allocator: noscan objects under 16 B packed into one zeroed 16 B block. Each block
  /// counts its live sub-objects (+1 while it is this cache's current block); the block is freed
  /// when the count reaches zero, so explicit free stays exact.
  @inline(never) @usableFromInline
  func mallocTiny(_ size: Int) -> UInt {
    let hd = header
    var off = hd.pointee.tinyoffset
    if size & 7 == 0 { off = roundUp(off, 8) }
    else if size & 3 == 0 { off = roundUp(off, 4) }
    else if size & 1 == 0 { off = roundUp(off, 2) }
    if off + size <= tinySize && hd.pointee.tiny != 0 {
      let s = hd.pointee.tinySpan!
      atomicAdd8(s.pointee.tinyCounts! + s.objIndex(hd.pointee.tiny), 1)
      hd.pointee.tinyoffset = off + size
      counterBump(counters + MCache.tinyAllocsIdx)
      return hd.pointee.tiny + UInt(off)
    }
    let blk = nextFree(.tiny)
    if blk == 0 { return 0 }
    let s = alloc[SpanClass.tiny.index]
    goalloc_memset(UnsafeMutableRawPointer(bitPattern: blk), 0, tinySize)
    let count = s.pointee.tinyCounts! + s.objIndex(blk)
    counterBump(counters + MCache.tinyBlockAllocsIdx)
    counterBump(counters + MCache.tinyAllocsIdx)
    if size < off || hd.pointee.tiny == 0 {
      dropTinyHold()
      atomicStore8(count, 2)  // the object and this cache's hold
      hd.pointee.tiny = blk
      hd.pointee.tinyoffset = size
      hd.pointee.tinySpan = s
    } else {
      atomicStore8(count, 1)
    }
    return blk
  }

  /// Releases this cache's hold on its current tiny block.
  func dropTinyHold() {
    let hd = header
    guard hd.pointee.tiny != 0, let s = hd.pointee.tinySpan else { return }
    let blk = hd.pointee.tiny
    hd.pointee.tiny = 0
    hd.pointee.tinyoffset = 0
    hd.pointee.tinySpan = nil
    let idx = s.objIndex(blk)
    if atomicSub8(s.pointee.tinyCounts! + idx, 1) == 1 {
      counterBump(counters + MCache.tinyBlockFreesIdx)
      MCache.freeRemote(heap, self, s, idx, blk, op: "free")
    }
  }
}
