// MCache: the per-thread cache of spans (Go's per-P mcache). No locks, no atomic
// read-modify-write on the allocation fast path: the thread owns one current span per span class
// and takes slots from its allocCache.
//
// Layout (one block from the mheap's cachealloc, reached in one TLS load):
//   [0, 1152)      alloc[numSpanClasses]: current span per span class (emptySpan when none)
//   [1152, 9952)   per span class one 64-byte group: its FreeList (head, sentinel key, key +
//                  limit), mallocs, frees, requested bytes; then tiny objects/frees, tiny
//                  blocks/frees
//   then           per span class: ready list head, ready count
//   then           MCacheHeader: heap, arena index, tiny block state; then MCacheLink
// `alloc` sits at offset 0 so the fast path indexes the cache pointer directly. A malloc or free
// that the FreeList serves touches one line of the cache (the class's group) and the object.
//
// A span the cache has exhausted floats (owned by nobody, as Go's full spans); the first free
// into it claims it (MSpan) into the freeing thread's *ready* list: a circular list per class
// (owner only, linked through MSpan.onext/oprev), used oldest first, so a span has gathered
// frees from the whole working set by the time it is used again. A thread's frees into spans it
// filled itself are claimed so; another thread's spans go to the mcentral, so a thread that
// mostly frees (a consumer) does not hoard a producer's memory. Nobody holds a full span, so memory freed by other threads
// is never stuck with an idle thread. A ready span whose objects this thread has all freed goes
// back to the mcentral (the mheap can reuse its pages), unless the thread filled it itself and it
// is the class's only ready span.
// Refill order: the ready list (passing over up to `readySkips` spans with under 1/8 of their
// slots free), then the mcentral.
// `releaseAll` hands every span back (thread exit, fork child); `destroy` also flushes the
// counters into the heap.
//
// Invariants: alloc[spc] is emptySpan or a span of class spc with place placeCurrent; every span
// on a ready list has place placeReady; all of them have CACHED set and owner == this cache (0
// for the tiny class); the counters are written only by the owning thread (atomically visible,
// read by MemStats).
import CGoAllocShim

public struct MCacheHeader {
  var heap: UnsafeMutablePointer<MHeap>
  var arenas: UnsafeMutableRawPointer
  var tiny: UInt = 0           // current tiny block, or 0
  var tinyoffset: Int = 0      // bytes used in it
  var tinySpan: SpanPtr? = nil // span of the tiny block
  var tid: Int = 0
  var refills: Int = 0         // for GOALLOC_DEBUG=check=1
  var nextSample: Int = 0      // heap profile: bytes until the next sample
}

public struct MCacheLink {
  var next: UnsafeMutableRawPointer? = nil
  var prev: UnsafeMutableRawPointer? = nil
}

@frozen public struct MCache {
  @usableFromInline let raw: UnsafeMutableRawPointer
  @inline(__always) @usableFromInline init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }

  static let allocBytes = roundUp(numSpanClasses * 8, 64)
  @usableFromInline static let countersOffset = 1152
  /// Per span class one 64-byte group (a malloc or free of the class touches one line of the
  /// cache): the free list's head and sentinel key (FreeList), mallocs, frees, requested bytes
  /// (slot bytes minus these = size-class rounding), the list's key + limit, two spare words;
  /// then the tiny allocator's four.
  @inline(__always) @usableFromInline static func listIdx(_ spc: Int) -> Int { spc &<< 3 }
  @inline(__always) @usableFromInline static func mallocsIdx(_ spc: Int) -> Int { spc &<< 3 &+ 2 }
  @inline(__always) @usableFromInline static func freesIdx(_ spc: Int) -> Int { spc &<< 3 &+ 3 }
  @inline(__always) @usableFromInline static func requestedIdx(_ spc: Int) -> Int { spc &<< 3 &+ 4 }
  static let tinyAllocsIdx = 8 * numSpanClasses
  static let tinyFreesIdx = tinyAllocsIdx + 1
  static let tinyBlockAllocsIdx = tinyAllocsIdx + 2
  static let tinyBlockFreesIdx = tinyAllocsIdx + 3
  static let counterWords = 8 * numSpanClasses + 4
  /// Per span class: the ready list head and length.
  static let readyOffset = roundUp(countersOffset + counterWords * 8, 64)
  static let readyCountOffset = readyOffset + roundUp(numSpanClasses * 8, 64)
  /// Ready spans with under 1/8 of their slots free that a refill passes over (to the tail) before
  /// taking a span from the mcentral: the heap then runs ~88% full instead of 100%, and a refill
  /// yields many slots instead of one or two.
  static let readySkips = 4
  static let headerOffset = roundUp(readyCountOffset + numSpanClasses * 4, 64)
  static let linkOffset = roundUp(headerOffset + MemoryLayout<MCacheHeader>.stride, 64)
  static let bytes = roundUp(linkOffset + MemoryLayout<MCacheLink>.stride, 64)

  @inline(__always) @usableFromInline var alloc: UnsafeMutablePointer<SpanPtr> {
    raw.assumingMemoryBound(to: SpanPtr.self)
  }
  @inline(__always) @usableFromInline var counters: UnsafeMutablePointer<UInt64> {
    (raw + MCache.countersOffset).assumingMemoryBound(to: UInt64.self)
  }
  @inline(__always) @usableFromInline func countMalloc(_ spc: Int, requested: Int) {
    counterBump(counters + MCache.mallocsIdx(spc))
    counterBump(counters + MCache.requestedIdx(spc), UInt64(truncatingIfNeeded: requested))
  }
  @inline(__always) @usableFromInline func countFree(_ spc: Int) { counterBump(counters + MCache.freesIdx(spc)) }
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
    lockRelease(&h.pointee.lock)
    guard let raw = m else { return nil }
    let c = MCache(raw)
    for i in 0..<numSpanClasses { c.alloc[i] = h.pointee.emptySpan }
    c.header.initialize(to: MCacheHeader(heap: h, arenas: UnsafeMutableRawPointer(h.pointee.arenas)))
    c.link.initialize(to: MCacheLink())
    c.header.pointee.tid = goalloc_gettid()
    c.initLists()
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
    for i in 0..<MCache.counterWords where i >= MCache.tinyAllocsIdx || (i & 7 >= 2 && i & 7 <= 4) {
      h.pointee.flushed[i] &+= atomicLoadRelaxed64(counters + i)
    }
    list.pointee.count -= 1
    lockRelease(&list.pointee.lock)
  }

  /// Returns every span this cache owns to its mcentral and drops the tiny block.
  public func releaseAll() {
    flushLists()
    dropTinyHold()
    let h = heap
    let empty = h.pointee.emptySpan
    for spc in 0..<numSpanClasses {
      let s = alloc[spc]
      if s != empty {
        alloc[spc] = empty
        (h.pointee.centrals + spc).uncacheSpan(h, s)
      }
      releaseList(readyHeads + spc)
      readyCounts[spc] = 0
    }
  }

  func releaseList(_ head: UnsafeMutablePointer<SpanPtr?>) {
    let h = heap
    while let s = head.pointee {
      listRemove(head, s)
      (h.pointee.centrals + Int(s.pointee.spanclass)).uncacheSpan(h, s)
    }
  }

  /// The value of MSpan.owner for a span of class spc this cache owns: the cache, except for
  /// tiny blocks (0): frees of tiny objects always take the full path, and the free fast path
  /// then needs no class check (owner == cache implies a small, non-tiny span).
  @inline(__always) func ownerTag(_ spc: Int) -> UInt { spc == tinySpanClass ? 0 : UInt(bitPattern: raw) }

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

  /// Did this cache fill span s (its last owner)? Its frees then claim s into the ready list.
  func filled(_ s: SpanPtr) -> Bool {
    atomicLoadRelaxedUInt(&s.pointee.lastOwner) == UInt(bitPattern: raw)
  }
  /// s was claimed from floating (CACHED set) by this thread's free.
  func addReady(_ spc: Int, _ s: SpanPtr) {
    atomicStoreRelaxedUInt(&s.pointee.owner, ownerTag(spc))
    listAppend(readyHeads + spc, s)
    s.pointee.place = placeReady
    readyCounts[spc] &+= 1
  }

  /// This thread freed the last object of s, one of its ready spans: it goes back to the
  /// mcentral, unless it is a span this thread filled and the class's only ready span (this
  /// thread allocates there: its next refill would fetch it straight back). Another thread's
  /// span always goes back: a thread that only frees (a consumer) keeps none of its producer's.
  @inline(never)
  func readySpanEmptied(_ s: SpanPtr) {
    let spc = Int(s.pointee.spanclass)
    if readyCounts[spc] > 1 || atomicLoadRelaxedUInt(&s.pointee.lastOwner) != UInt(bitPattern: raw) {
      listRemove(readyHeads + spc, s)
      readyCounts[spc] &-= 1
      (heap.pointee.centrals + spc).uncacheSpan(heap, s)
    }
  }

  /// Exchanges the exhausted span of class spc for one with free slots: from this thread's ready
  /// list (no lock), else from the mcentral. The exhausted span floats. Nil: out of memory.
  @inline(never)
  func refill(_ spc: Int) -> SpanPtr? {
    let h = heap
    let central = h.pointee.centrals + spc
    let old = alloc[spc]
    if old != h.pointee.emptySpan {
      alloc[spc] = h.pointee.emptySpan
      central.uncacheSpan(h, old)
    }
    let ready = readyHeads + spc
    var skipped = 0
    while let s = ready.pointee {
      if readyCounts[spc] > 1
          && Int(truncatingIfNeeded: s.pointee.localFreed) &+ s.remoteFreeCount < s.pointee.nelems &>> 3 {
        // Few frees yet: let it gather more at the tail. (Refilling from spans with a slot or two
        // free means a fold and a list move every few allocations.)
        ready.pointee = s.pointee.onext
        skipped += 1
        if skipped == MCache.readySkips { break }
        continue
      }
      listRemove(ready, s)
      readyCounts[spc] &-= 1
      s.fold(h)
      if s.pointee.allocCount < s.pointee.nelems {
        alloc[spc] = s
        return s
      }
      central.release(s)  // only late-detected double frees leave it full
    }
    guard let s = central.cacheSpan(h) else { return nil }
    atomicStoreRelaxedUInt(&s.pointee.owner, ownerTag(spc))
    alloc[spc] = s
    if _slowPath(h.debugFlags & UInt32(GOALLOC_DEBUG_CHECK) != 0) {
      header.pointee.refills &+= 1
      if header.pointee.refills % 256 == 0 && !h.checkHeapAndReport() { goalloc_abort() }
    }
    return s
  }

  /// The next free slot of span class spc, refilling as needed; 0 when out of memory.
  @inline(never) @usableFromInline
  func nextFree(_ spc: Int) -> UInt {
    var s = alloc[spc]
    if let p = s.nextFreeFast() {
      MCache.clearFreeMark(spc, p)
      return p
    }
    while true {
      let i = s.nextFreeIndex()
      if i < s.pointee.nelems {
        s.pointee.allocCount += 1
        s.raiseHighWater(i)
        let p = s.pointee.startAddr + UInt(i * s.pointee.elemsize)
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
    let blk = nextFree(tinySpanClass)
    if blk == 0 { return 0 }
    let s = alloc[tinySpanClass]
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
      freeSlot(heap, raw, s, idx, blk, op: "free")
    }
  }
}
